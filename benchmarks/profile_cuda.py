"""Where the GPU time of ws_conv1d goes: each benchmark shape's forward and backward under
torch.profiler, the kernels ranked by device time (a guide for the next kernel change).

    python benchmarks/profile_cuda.py [--shapes conv1,long] [--rows 8]"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.shapes import make_inputs  # noqa: E402
from benchmarks.contenders import ws_conv1d  # noqa: E402
from benchmarks.shapes import SHAPES  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shapes", default=",".join(s.name for s in SHAPES))
    parser.add_argument("--rows", type=int, default=8)
    args = parser.parse_args(argv)
    for shape in (s for s in SHAPES if s.name in args.shapes.split(",")):
        x, cond, bias, gy = make_inputs(shape, torch.device("cuda"))
        leaves = [t.requires_grad_() for t in (x, cond, bias)]
        for _ in range(3):  # warm-up: module load, cuBLAS handles
            ws_conv1d(*leaves, shape).backward(gy)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                ws_conv1d(*leaves, shape).backward(gy)
            torch.cuda.synchronize()
        print(f"== {shape.name}: 5 x forward+backward")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
