"""Transparent huge pages for large CPU outputs (the cpu_huge_pages switch), on and off, with the
tail: many single calls of each layer's forward (and forward+backward), alternating on/off in
blocks, reporting the median, p90, p99 and max per call.

    python benchmarks/bench_huge_pages.py [--calls 300] [--shapes long,conv1]

Writes benchmarks/results/cpu_kernels/huge_pages_<tag>.json and prints a table."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.shapes import SHAPES  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cpu_kernels")


def measure(shape, calls: int, train: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape.batch, shape.in_channels, shape.length, generator=g)
    cond = torch.randn(shape.condensed_channels, shape.condensed_len, generator=g) * 0.1
    leaves = [x.clone().requires_grad_(), cond.clone().requires_grad_()]
    kw = dict(kernel_size=shape.kernel_size, sample_stride=shape.sample_stride,
              channel_repeat=shape.channel_repeat, stride=shape.stride, padding=shape.padding)

    def call():
        if train:
            for leaf in leaves:
                leaf.grad = None
            wsnet_ext.ws_conv1d(*leaves, **kw).sum().backward()
        else:
            with torch.no_grad():
                wsnet_ext.ws_conv1d(x, cond, **kw)

    samples = {"on": [], "off": []}
    for _ in range(3):
        call()
    block = 10
    for r in range(calls // block):
        for setting in (("on", "off") if r % 2 == 0 else ("off", "on")):
            with wsnet_ext.switches.override(cpu_huge_pages=setting == "on"):
                for _ in range(block):
                    begin = time.perf_counter()
                    call()
                    samples[setting].append(time.perf_counter() - begin)
    return {k: {"median_ms": float(np.median(v) * 1e3), "p90_ms": float(np.percentile(v, 90) * 1e3),
                "p99_ms": float(np.percentile(v, 99) * 1e3), "max_ms": float(np.max(v) * 1e3),
                "calls": len(v)} for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="per setting and layer")
    parser.add_argument("--shapes", default="long,conv1,conv2")
    parser.add_argument("--tag", default=datetime.date.today().isoformat())
    args = parser.parse_args()
    rows = []
    for shape in SHAPES:
        if shape.name not in args.shapes.split(","):
            continue
        for train in (False, True):
            result = measure(shape, args.calls if not train else max(args.calls // 3, 20), train)
            rows.append({"shape": shape.name, "what": "forward+backward" if train else "forward", **result})
            on, off = result["on"], result["off"]
            print(f"| {shape.name} | {rows[-1]['what']} | " + " | ".join(
                f"{on[k]:.2f} / {off[k]:.2f}" for k in ("median_ms", "p90_ms", "p99_ms", "max_ms")) + " |", flush=True)
    thp = {name: open(f"/sys/kernel/mm/transparent_hugepage/{name}").read().strip()
           for name in ("enabled", "defrag") if os.path.exists(f"/sys/kernel/mm/transparent_hugepage/{name}")}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"huge_pages_{args.tag}.json"), "w") as f:
        json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "thp": thp, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
