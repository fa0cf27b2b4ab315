"""The compile checks of the CUDA kernels (scripts/cuda_resources.sh): for sm_90 no kernel has a
stack frame (per-thread arrays in local memory), no strip kernel spills, and the strip kernels'
tensor-core variants hold HMMA instructions (read with cuobjdump; its absence is a failure, not a
pass). Needs the CUDA toolkit and a CUDA build of torch (CI has both); no GPU."""

import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "cuda_resources.sh")
CUDA_HOME = os.environ.get("CUDA_HOME", "/usr/local/cuda")

needs = []
if not os.path.isfile(SCRIPT):
    needs.append("the checkout's scripts/ (this run is outside it)")
if torch.version.cuda is None:
    needs.append("a CUDA build of torch")
if not os.path.isfile(os.path.join(CUDA_HOME, "include", "cuda_runtime.h")):
    needs.append(f"the CUDA toolkit at {CUDA_HOME}")


@pytest.mark.skipif(bool(needs), reason="needs " + ", ".join(needs))
def test_strip_kernels_fit_sm90(tmp_path):
    report = tmp_path / "resources.txt"
    done = subprocess.run(["bash", SCRIPT, "90", sys.executable, str(report)], capture_output=True, text=True,
                          env=dict(os.environ, CUDA_HOME=CUDA_HOME), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = report.read_text().splitlines()
    strips = [line for line in lines if "forward_strip_kernel<" in line]
    assert len(strips) == 27, lines  # 3 dtypes x 3 ring sizes x 3 precisions
    assert len([line for line in lines if "adjoint_strip_kernel<" in line]) == 18, lines  # 3 x 2 rings x 3
    assert len([line for line in lines if "forward_window_kernel<" in line]) == 6, lines  # 3 dtypes x 2 line steps
    assert lines[-1] == "problems: none"
