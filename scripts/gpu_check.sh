#!/usr/bin/env bash
# Everything the CUDA path needs checked on a GPU machine, in one run (for a lent device with its own
# python3/torch and no package registry):
#   1. the abi3 wheel built on the CPU machine (dist/*.whl, carried over), installed as it is: does
#      it load beside the device's torch, and do the CUDA tests pass from it?
#   2. a build for the card in place, the CUDA tests, compute-sanitizer (memcheck, racecheck,
#      initcheck) on a subset, the benchmark suite and a profile.
#   3. the opt-in strip forward (WSNET_CUDA_FORWARD=strips) and fused backward (WSNET_CUDA_ADJOINT=fused):
#      their tests against the definition and the host models, compute-sanitizer on them, their
#      compile resources, the training-size protocol (batch 64, CUDA-graph kernel time) beside cuDNN,
#      and SoundNet's training step.
#   OUT=results_dir bash scripts/gpu_check.sh        (wheels of missing test packages in .whl/)
#   SKIP_WHEEL=1 SKIP_PROFILE=1 SKIP_BATCH8=1 ...    (skip steps to fit the device time)
#   FAST=1 OUT=... bash scripts/gpu_check.sh         (the new kernels only, from the carried wheel)
# Logs go to $OUT (commit them with the results). Exits non-zero if any step failed or timed out.
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MAX_JOBS=${MAX_JOBS:-16} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
fi
nvcc_bin=$(command -v nvcc)
export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "$nvcc_bin")")")}
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; nproc
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  echo "CUDA_HOME=$CUDA_HOME"; nvcc --version | tail -2; } 2>&1 | tee "$OUT/build.log"

SUMMARY="$OUT/summary.log"
# shellcheck source=scripts/device_steps.sh
. "$(dirname "$0")/device_steps.sh"

CUDA_TESTS=(tests/test_cuda.py tests/test_cuda_hardening.py tests/test_cuda_strips.py tests/test_cuda_paths.py)

# 1. The wheel as built elsewhere (stable ABI: it must load here without a rebuild).
wheel=$(ls dist/wsnet_ext-*-abi3-*.whl 2>/dev/null | head -1)
if [ -n "$wheel" ] && [ -z "${SKIP_WHEEL:-}" ] && [ -z "${FAST:-}" ]; then
  rm -rf /tmp/wheel_site && python3 -m pip install -q --no-index --no-deps --target /tmp/wheel_site "$wheel"
  mkdir -p /tmp/wheel_tests && cp -r tests benchmarks /tmp/wheel_tests/
  run "wheel from the CPU machine: CUDA tests" 150 "$OUT/test_cuda_wheel.log" \
    env PYTHONPATH=/tmp/wheel_site:/tmp/site bash -c \
    "cd /tmp/wheel_tests && python3 -c 'import wsnet_ext; print(wsnet_ext.__file__, wsnet_ext.build_info()); assert wsnet_ext.build_info()[\"cuda_loaded\"]' && python3 -m pytest -q -p no:cacheprovider -x ${CUDA_TESTS[*]} -k 'float32 or hardening'"
else
  echo "no dist/*-abi3-*.whl carried over: skipping the wheel check" | tee -a "$OUT/summary.log"
fi

# FAST=1: the new kernels only, from the carried wheel (no build): their tests, compute-sanitizer
# on them, the training-size protocol and SoundNet's step; about 10 minutes of commands, to fit a
# 15-minute device budget with the machine's start-up.
if [ -n "${FAST:-}" ]; then
  [ -n "$wheel" ] || { echo "FAST=1 needs dist/*-abi3-*.whl carried over" | tee -a "$OUT/summary.log"; exit 1; }
  rm -rf /tmp/wheel_site && python3 -m pip install -q --no-index --no-deps --target /tmp/wheel_site "$wheel"
  rm -rf /tmp/wheel_tests && mkdir -p /tmp/wheel_tests && cp -r tests benchmarks scripts csrc /tmp/wheel_tests/
  cd /tmp/wheel_tests && export PYTHONPATH=/tmp/wheel_site:/tmp/site
  card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -cd "A-Za-z0-9")
  run "strip forward and fused backward tests" 240 "$OUT/test_cuda_strips.log" \
    python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_strips.py
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 run "compute-sanitizer memcheck strips" 120 "$OUT/sanitize_memcheck_strips.log" \
    compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 \
    python3 -m pytest -q -p no:cacheprovider -x tests/test_cuda_strips.py -k "C1-s1 or C4-s2 or half or nan or deterministic"
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 run "compute-sanitizer racecheck strips" 90 "$OUT/sanitize_racecheck_strips.log" \
    compute-sanitizer --tool racecheck --error-exitcode 99 --print-limit 20 \
    python3 -m pytest -q -p no:cacheprovider -x tests/test_cuda_strips.py -k "C1-s1-d1 or half"
  run "training-size protocol" 180 "$OUT/benchmark_training.log" python3 benchmarks/bench_ws_conv1d.py \
    --device cuda --protocol training --dtypes float32,bfloat16 --out "$OUT" --tag "$(date +%F)-$card"
  run "SoundNet training step" 120 "$OUT/soundnet_step.log" python3 benchmarks/bench_soundnet_step.py \
    --device cuda --modes eager,graph --out "$OUT" --tag "$(date +%F)-$card"
  step done
  if [ "${#failed[@]}" -gt 0 ]; then printf 'FAILED: %s\n' "${failed[@]}" | tee -a "$OUT/summary.log"; exit 1; fi
  echo "all steps passed" | tee -a "$OUT/summary.log"
  exit 0
fi

# 2. Built here, for this card.
export PYTHONPATH=$PWD:/tmp/site
step build
start=$(date +%s)
if ! WSNET_FORCE_CUDA=1 python3 setup.py build_ext --inplace >> "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; echo "build failed" | tee -a "$OUT/summary.log"; exit 1
fi
echo "built in $(( $(date +%s) - start )) s"; python3 -c "import wsnet_ext; print(wsnet_ext.build_info())"

run "CUDA tests" 200 "$OUT/test_cuda.log" python3 -m pytest -q -p no:cacheprovider -rs "${CUDA_TESTS[@]}"

card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -cd "A-Za-z0-9")
run "training-size protocol" 240 "$OUT/benchmark_training.log" python3 benchmarks/bench_ws_conv1d.py \
  --device cuda --protocol training --out "$OUT" --tag "$(date +%F)-$card"
if [ -z "${SKIP_BATCH8:-}" ]; then
  run benchmark 150 "$OUT/benchmark.log" python3 benchmarks/bench_ws_conv1d.py --device cuda --out "$OUT" \
    --tag "$(date +%F)-$card"
fi
run "SoundNet training step" 150 "$OUT/soundnet_step.log" python3 benchmarks/bench_soundnet_step.py \
  --device cuda --out "$OUT" --tag "$(date +%F)-$card"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
run "compile resources sm_$arch" 120 "$OUT/cuda_resources.log" bash scripts/cuda_resources.sh "$arch" python3 "$OUT/cuda_resources_sm$arch.txt"
if [ -z "${SKIP_PROFILE:-}" ]; then
  run profile 45 "$OUT/profile_cuda.log" python3 benchmarks/profile_cuda.py --rows 6
fi
sanitize() {  # tool, pytest -k filter, seconds
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 run "compute-sanitizer $1" "$3" "$OUT/sanitize_$1.log" \
    compute-sanitizer --tool "$1" --error-exitcode 99 --print-limit 20 \
    python3 -m pytest -q -p no:cacheprovider -x tests/test_cuda.py -k "$2"
}
sanitize memcheck "shapes_cuda and float32 and not 100003 or channel_sampling or agree or current_stream" 120
PYTORCH_NO_CUDA_MEMORY_CACHING=1 run "compute-sanitizer memcheck strips" 120 "$OUT/sanitize_memcheck_strips.log" \
  compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 \
  python3 -m pytest -q -p no:cacheprovider -x tests/test_cuda_strips.py -k "C1-s1 or C4-s2 or half or nan or gradients or deterministic"
PYTORCH_NO_CUDA_MEMORY_CACHING=1 run "compute-sanitizer racecheck strips" 90 "$OUT/sanitize_racecheck_strips.log" \
  compute-sanitizer --tool racecheck --error-exitcode 99 --print-limit 20 \
  python3 -m pytest -q -p no:cacheprovider -x tests/test_cuda_strips.py -k "C1-s1-d1 or half"
sanitize racecheck "shapes_cuda and float32 and not 100003" 60
sanitize initcheck "shapes_cuda and float32 and not 100003" 60

step done
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" | tee -a "$OUT/summary.log"
  exit 1
fi
echo "all steps passed" | tee -a "$OUT/summary.log"
