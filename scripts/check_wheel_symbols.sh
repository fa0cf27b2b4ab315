#!/usr/bin/env bash
# Checks a built wsnet_ext wheel: its libraries are abi3 files that import no C++ symbol of torch
# (c10::, at::, torch::: those tie a library to the torch it was built against; the stable ABI's
# C shims are all they may use), no Python symbol (a C++ program with libtorch alone loads them),
# need no libtorch_python, and the CUDA library is there or not.
#   bash scripts/check_wheel_symbols.sh WHEEL cuda|cpu
set -euo pipefail
wheel=$1
want=$2
unpack=$(mktemp -d)
trap 'rm -rf "$unpack"' EXIT
python3 -m zipfile -e "$wheel" "$unpack"
libraries=$(ls "$unpack"/wsnet_ext/_C*.so)
for lib in $libraries; do
  case "$(basename "$lib")" in *.abi3.so) ;; *) echo "$lib is not an abi3 library" >&2; exit 1 ;; esac
  if nm -DC --undefined-only "$lib" | grep -E "c10::|at::|torch::|caffe2::"; then
    echo "$(basename "$lib") imports torch C++ symbols (above): it would load only on one torch" >&2
    exit 1
  fi
  if nm -D --undefined-only "$lib" | grep -E " (_?Py|_Py)"; then
    echo "$(basename "$lib") needs Python symbols (above): a C++ program with libtorch alone could not load it" >&2
    exit 1
  fi
  if readelf -d "$lib" | grep -q libtorch_python; then
    echo "$(basename "$lib") needs libtorch_python" >&2
    exit 1
  fi
  echo "$(basename "$lib"): abi3, $(nm -D --undefined-only "$lib" | grep -c -E ' (aoti_torch|torch)_') stable C shim functions, no torch C++ symbols"
done
has_cuda=no
[ -f "$unpack/wsnet_ext/_C_cuda.abi3.so" ] && has_cuda=yes
if [ "$want" = cuda ] && [ "$has_cuda" = no ]; then echo "the wheel lacks _C_cuda.abi3.so" >&2; exit 1; fi
if [ "$want" = cpu ] && [ "$has_cuda" = yes ]; then echo "a CPU-only wheel holds _C_cuda.abi3.so" >&2; exit 1; fi
