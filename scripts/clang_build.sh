#!/usr/bin/env bash
# The CPU kernels built with clang (the CI builds with GCC otherwise) and their tests run on that
# build: keeps GCC-only builtins out of the code, or guarded. Builds a CPU-only copy in a scratch
# folder (the checkout is left alone). Installs Debian's clang if it is missing.
#   bash scripts/clang_build.sh          (needs the environment of the README's install command)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v clang++ > /dev/null; then
  apt-get install -y -q clang > /dev/null
fi
clang++ --version | head -1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/csrc" "$here/wsnet_ext" "$here/setup.py" "$here/pyproject.toml" "$here/tests" "$work/"
rm -f "$work"/wsnet_ext/_C*.so
cd "$work"
CC=clang CXX=clang++ LDSHARED="clang++ -shared" WSNET_FORCE_CUDA=0 WSNET_CPU_ONLY=1 MAX_JOBS=${MAX_JOBS:-2} \
  python setup.py build_ext --inplace > build.log 2>&1 || { tail -30 build.log; exit 1; }
if grep -E "(warning|error):" build.log; then echo "clang warned (above)" >&2; exit 1; fi
WORK="$work" PYTHONPATH="$work" python - <<'PY'
import os
import wsnet_ext
assert wsnet_ext.__file__.startswith(os.environ["WORK"]), wsnet_ext.__file__  # the clang build, not another
print("clang build:", wsnet_ext.__file__, wsnet_ext.cpu_kernel_isa())
PY
PYTHONPATH="$work" python -m pytest -q -p no:cacheprovider tests/test_ws_conv1d_grid.py tests/test_polyphase.py \
  tests/test_extreme_inputs.py tests/test_channel_sampled.py tests/test_gradcheck_opcheck.py \
  tests/test_cpu_isa_builds.py tests/test_double_backward.py tests/test_hashed.py
