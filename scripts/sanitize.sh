#!/usr/bin/env bash
# The CPU kernels' tests under AddressSanitizer and UndefinedBehaviorSanitizer.
# Builds a sanitized CPU-only copy of the package in a scratch folder (the checkout is left
# alone) and runs the kernel tests against it with the ASan runtime preloaded into Python.
#   bash scripts/sanitize.sh            (needs the environment of the README's install command)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/csrc" "$here/wsnet_ext" "$here/setup.py" "$here/pyproject.toml" "$here/tests" "$work/"
rm -f "$work"/wsnet_ext/_C*.so
cd "$work"
WSNET_FORCE_CUDA=0 WSNET_SANITIZE=1 MAX_JOBS=${MAX_JOBS:-2} python setup.py build_ext --inplace > build.log 2>&1 || { tail -30 build.log; exit 1; }
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
# Python and torch leak on purpose at exit and torch is not built with ASan: report only errors
# in what we run, and stop at the first one.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:verify_asan_link_order=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# the tests' host-model library (tests/helpers.py) is built sanitized too
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
WSNET_HOST_MODEL_FLAGS="$sanitize" LD_PRELOAD="$asan $ubsan" PYTHONPATH="$work" python -m pytest -q -p no:cacheprovider \
  tests/test_ws_conv1d_grid.py tests/test_extreme_inputs.py tests/test_channel_sampled.py \
  tests/test_gradcheck_opcheck.py tests/test_polyphase.py tests/test_strip_schedule_model.py tests/test_strip_adjoint_model.py tests/test_hashed.py -k "not compile and not past_2_31" "$@"
