#!/usr/bin/env bash
# Everything the CUDA path needs checked on a GPU machine, in one run (for a lent device with its own
# python3/torch and no package registry): build for the card in place, the CUDA tests,
# compute-sanitizer (memcheck, racecheck, initcheck) on a subset, then the benchmark suite on CUDA.
#   OUT=results_dir bash scripts/gpu_check.sh        (wheels of missing test packages in .whl/)
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
export PYTHONUNBUFFERED=1 MAX_JOBS=${MAX_JOBS:-16} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=$PWD:/tmp/site
nvcc_bin=$(command -v nvcc)
export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "$nvcc_bin")")")}
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; nproc
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  echo "CUDA_HOME=$CUDA_HOME"; nvcc --version | tail -2; } 2>&1 | tee "$OUT/build.log"

step() { echo "=== $1 ($(date +%T))"; }
step build
start=$(date +%s)
WSNET_FORCE_CUDA=1 python3 setup.py build_ext --inplace >> "$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }
echo "built in $(( $(date +%s) - start )) s"; python3 -c "import wsnet_ext; print(wsnet_ext.build_info())"

step "CUDA tests"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_cuda_hardening.py \
  -rs 2>&1 | tee "$OUT/test_cuda.log" | tail -25

step benchmark
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -cd "A-Za-z0-9")
timeout 150 python3 benchmarks/bench_ws_conv1d.py --device cuda --out "$OUT" --tag "$(date +%F)-$card" 2>&1 \
  | tail -20
if [ -z "${SKIP_PROFILE:-}" ]; then
if [ -z "${SKIP_PROFILE:-}" ]; then
  step profile
  timeout 45 python3 benchmarks/profile_cuda.py --rows 6 > "$OUT/profile_cuda.log" 2>&1; tail -3 "$OUT/profile_cuda.log"
fi
fi
sanitize() {  # tool, then pytest -k filter
  step "compute-sanitizer $1" | tee -a "$OUT/sanitize.log"
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout "$3" compute-sanitizer --tool "$1" --error-exitcode 99 \
    --print-limit 20 python3 -m pytest -q -p no:cacheprovider -x tests/test_cuda.py -k "$2" 2>&1 \
    | tail -30 | tee -a "$OUT/sanitize.log"
  local rc=${PIPESTATUS[0]}
  echo "exit $rc" | tee -a "$OUT/sanitize.log"
}
sanitize memcheck "shapes_cuda and float32 or channel_sampling or agree or current_stream or hashed" 120
sanitize racecheck "shapes_cuda and float32 and not 100003" 60
sanitize initcheck "shapes_cuda and float32 and not 100003" 60

step done
