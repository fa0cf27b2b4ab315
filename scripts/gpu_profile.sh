#!/usr/bin/env bash
# The kernel-tuning loop's one prepared GPU run (issue 24), from the abi3 wheel built on the CPU
# machine (pip wheel --no-build-isolation --no-deps -w dist .; carry dist): no build on the card.
# In about 4 minutes it writes under $OUT one tar file holding
#   (a) the float64 check of every CUDA path at the training shapes (tests/test_cuda_paths.py),
#   (b) the training-size protocol for LAYERS (float32; auto, each forced path, cuDNN),
#   (c) Nsight Compute on the strip forward, window walk and fused backward for LAYERS: SpeedOfLight,
#       Occupancy, LaunchStats, WarpStateStats, SchedulerStats, MemoryWorkloadAnalysis, SourceCounters
#       with source-level hot spots (--import-source yes; the kernels are built with -lineinfo).
#   LAYERS="long conv1" OUT=dir bash scripts/gpu_profile.sh        (SKIP_CHECK=1: skip (a) on a rerun)
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
LAYERS=${LAYERS:-long conv1 conv2}
R=$(mktemp -d)
export PYTHONUNBUFFERED=1
wheel=$(ls dist/wsnet_ext-*-abi3-*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || { echo "needs dist/*-abi3-*.whl carried over" | tee "$OUT/summary.log"; exit 1; }
rm -rf /tmp/wheel_site && python3 -m pip install -q --no-index --no-deps --target /tmp/wheel_site "$wheel"
rm -rf /tmp/wheel_tests && mkdir -p /tmp/wheel_tests && cp -r tests benchmarks csrc /tmp/wheel_tests/
cd /tmp/wheel_tests && export PYTHONPATH=/tmp/wheel_site
job() {  # job NAME TIMEOUT LOG COMMAND...
  local name=$1 limit=$2 log=$3
  shift 3
  echo "=== $name ($(date +%T))"
  timeout "$limit" "$@" > "$R/$log" 2>&1
  echo "--- $name: exit $?" | tee -a "$R/summary.log"
  tail -8 "$R/$log"
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$R/env.log" 2>&1
[ -n "${SKIP_CHECK:-}" ] || job "(a) every path vs float64" 120 check.log \
  python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_paths.py -k "not graphs"
shapes=$(echo "$LAYERS" | tr ' ' ',')
job "(b) training protocol: $LAYERS" 90 protocol.log python3 benchmarks/bench_ws_conv1d.py --device cuda \
  --protocol training --dtypes float32 --shapes "$shapes" --out "$R" --tag profile
if command -v ncu > /dev/null; then
  # shellcheck disable=SC2086
  job "(c) ncu: $LAYERS" 150 ncu.log ncu -k regex:"forward_strip|adjoint_strip|forward_window" --launch-count 8 \
    --import-source yes --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section SchedulerStats --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
    --section SourceCounters --print-details all python3 benchmarks/ncu_driver.py $LAYERS
else
  echo "no ncu on this machine" | tee -a "$R/summary.log"
fi
tar -czf "$OUT/gpu_profile.tar.gz" -C "$R" .
cp "$R/summary.log" "$OUT/"
