"""The launches Nsight Compute profiles (scripts/gpu_profile.sh): for each training layer named in
argv (benchmarks/training_protocol.TRAINING_SHAPES, batch 64), one forward+backward on our kernels
with the strip forward and the fused backward forced (cuda_path=kernels), float32, TF32 allowed.

    ncu -k regex:"forward_strip|adjoint_strip|forward_window" ... python3 benchmarks/ncu_driver.py long conv1"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.contenders import ws_conv1d  # noqa: E402
from benchmarks.training_protocol import TRAINING_SHAPES  # noqa: E402

SWITCHES = {"cuda_path": "kernels", "cuda_forward": "prefer_strips", "cuda_adjoint": "prefer_fused", "cuda_tf32": "1"}


def main(names: list[str]) -> None:
    device = torch.device("cuda")
    known = {s.name: s for s in TRAINING_SHAPES}
    for name in names:
        if name not in known:
            raise SystemExit(f"layer expects one of {sorted(known)}, got {name!r}")
        shape = known[name]
        x = torch.randn(shape.batch, shape.in_channels, shape.length, device=device)
        cond = torch.randn(shape.condensed_channels, shape.condensed_len, device=device) * 0.05
        bias = torch.randn(shape.out_channels, device=device)
        gy = torch.randn(shape.batch, shape.out_channels, shape.out_len, device=device)
        with wsnet_ext.switches.override(**SWITCHES):
            leaves = [t.detach().requires_grad_() for t in (x, cond, bias)]
            ws_conv1d(*leaves, shape).backward(gy)
        torch.cuda.synchronize()
    print("ncu driver done:", names)


if __name__ == "__main__":
    main(sys.argv[1:] or ["long", "conv1", "conv2"])
