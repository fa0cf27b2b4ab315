"""Every build of the CPU tile functions (AVX-512, AVX2, baseline) against the definition: the
processor runs the best one, so the others run in subprocesses capped by WSNET_CPU_ISA."""

import os
import re
import subprocess
import sys

import pytest

import wsnet_ext
from helpers import GRID

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["baseline", "avx2", "avx512"]


def test_best_build_runs_by_default():
    assert wsnet_ext.cpu_kernel_isa() in ORDER


@pytest.mark.parametrize("isa", ["avx2", "baseline"])
def test_capped_build_matches_definition(isa):
    best = wsnet_ext.cpu_kernel_isa()
    expected = ORDER[min(ORDER.index(isa), ORDER.index(best))]
    # glibc fills every block it hands out with 0x5a bytes (MALLOC_PERTURB_) and serves them all from
    # its heap: a scratch element a narrower build leaves unwritten (the lane slots past its vector
    # width) then reads as garbage instead of a fresh page's zero
    env = {**os.environ, "WSNET_CPU_ISA": isa, "MALLOC_PERTURB_": "165", "MALLOC_MMAP_THRESHOLD_": str(1 << 30)}
    probe = subprocess.run([sys.executable, "-c", "import wsnet_ext; print(wsnet_ext.cpu_kernel_isa())"],
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == expected
    # the whole float32 grid (every stride, dilation, padding, S and C) and the multi-tile cases
    selection = "grid_matches_definition and float32 or multiple_tiles or long_input or batch_sizes or half_precision"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", os.path.join(HERE, "test_ws_conv1d_grid.py"),
         "-k", selection], env=env, capture_output=True, text=True, cwd=HERE)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    passed = re.search(r"(\d+) passed", run.stdout)
    grid = sum(1 for case in GRID)  # the float32 half of the grid must have run, not a selection of nothing
    assert passed and int(passed.group(1)) >= grid, run.stdout[-2000:]
