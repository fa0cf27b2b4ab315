#!/usr/bin/env bash
# The GPU checks of the CUDA correctness + dispatch work (issue 22), from the abi3 wheel built on
# the CPU machine (pip wheel --no-build-isolation --no-deps -w dist .; carry dist), in about 9
# minutes of an H200, without building on the card:
#   1. every CUDA path at the eight training shapes, batch 64, against float64 with a random bias,
#      and several models' training steps captured as CUDA graphs replayed interleaved
#      (tests/test_cuda_paths.py); the CUDA tests of our kernels (float32 subset);
#   2. compute-sanitizer memcheck, racecheck, synccheck and initcheck on the strip tests' subset
#      (small filters) and on the graph test;
#   3. the training-size protocol (auto beside each forced path and cuDNN, with the error column)
#      and SoundNet's training step (plain, auto, each forced path; eager and graph).
#   OUT=dir bash scripts/gpu_paths_check.sh     -> $OUT/gpu_paths_check.tar.gz (and summary.log)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d)}
LOGS=$(mktemp -d)
export PYTHONUNBUFFERED=1
wheel=$(ls dist/wsnet_ext-*-abi3-*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || { echo "needs dist/*-abi3-*.whl carried over" | tee "$OUT/summary.log"; exit 1; }
rm -rf /tmp/wheel_site && python3 -m pip install -q --no-index --no-deps --target /tmp/wheel_site "$wheel"
rm -rf /tmp/wheel_tests && mkdir -p /tmp/wheel_tests && cp -r tests benchmarks /tmp/wheel_tests/
cd /tmp/wheel_tests && export PYTHONPATH=/tmp/wheel_site
{ nvidia-smi --query-gpu=name,driver_version --format=csv
  python3 -c "import torch, wsnet_ext; print('torch', torch.__version__, wsnet_ext.build_info())"; } > "$LOGS/env.log" 2>&1
SUMMARY="$LOGS/summary.log"
# shellcheck source=scripts/device_steps.sh
. "$here/scripts/device_steps.sh"
run "paths at training shapes + graphs" 200 "$LOGS/test_cuda_paths.log" \
  python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_paths.py
run "CUDA tests of our kernels (float32)" 120 "$LOGS/test_cuda.log" \
  python3 -m pytest -q -p no:cacheprovider -x tests/test_cuda.py tests/test_cuda_hardening.py tests/test_cuda_strips.py \
  -k "float32 or hardening or training or groups"
for tool in memcheck racecheck synccheck initcheck; do
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 run "compute-sanitizer $tool" 60 "$LOGS/sanitize_$tool.log" \
    compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 20 \
    python3 -m pytest -q -p no:cacheprovider -x tests/test_cuda_strips.py -k "S1-C1 or S2-C2 or tf32_follows or tf32_rounding_is_the_cards"
done
run "training-size protocol" 150 "$LOGS/protocol.log" python3 benchmarks/bench_ws_conv1d.py --device cuda \
  --protocol training --dtypes float32 --out "$LOGS"
run "SoundNet step (eager, graph)" 120 "$LOGS/soundnet_step.log" python3 benchmarks/bench_soundnet_step.py \
  --device cuda --modes eager,graph --out "$LOGS"
printf '%s\n' "${failed[@]:-none failed}" >> "$LOGS/summary.log"
tar -czf "$OUT/gpu_paths_check.tar.gz" -C "$LOGS" .
cp "$LOGS/summary.log" "$OUT/"
[ ${#failed[@]} -eq 0 ]
