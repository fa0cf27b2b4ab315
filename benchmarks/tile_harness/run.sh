#!/usr/bin/env bash
# Builds benchmarks/tile_harness/forward_rows.cpp with the extension's flags and runs it over Mc.
#   benchmarks/tile_harness/run.sh [HEADER_DIR] [MC...]
# HEADER_DIR (default: the repository's csrc) is searched first, so a variant of
# tiles/cpu/ws_conv1d_tile_kernels.h placed under it is what gets timed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
csrc="$here/../../csrc"
headers="${1:-$csrc}"
shift || true
out="${TMPDIR:-/tmp}/wsnet_forward_rows_$$"
# setup.py's flags for GCC (its -mtune-ctrl keeps GCC from moving values between integer and
# vector registers through memory)
"${CXX:-g++}" -O3 -std=c++20 -fwrapv -Wall -Wno-psabi -mtune-ctrl=^inter_unit_moves_to_vec,^inter_unit_moves_from_vec \
  -I"$headers" -I"$csrc" "$here/forward_rows.cpp" -o "$out"
trap 'rm -f "$out"' EXIT
if [ "$#" -eq 0 ]; then set -- 1 2 4 6 8 12 16 24; fi
for mc in "$@"; do
  "$out" "$mc"
done
"$out" 16 128 32 1 50  # `long`'s filters: 128 of 32 taps
