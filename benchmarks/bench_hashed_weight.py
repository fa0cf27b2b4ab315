"""HashedNets' virtual weight, forward + backward, on the CPU: the ways to build V = xi * w[h]
timed side by side (same process, same inputs, interleaved medians), for HashNet's 784x1000 layer.

    python benchmarks/bench_hashed_weight.py [--shape 1000,784] [--compressions 8,64]

Contenders:
  indexing + bincount   w[h] * xi forward (advanced indexing), grad by bincount (until 2026-11-29)
  index_select          [w; -w].index_select(index) with torch's autograd (the path off the CPU)
  wsnet_ext op          ws_hashed_weight: parallel gather from [w; -w], deterministic scatter-add backward

Bytes per call (float32 weight, int64 index, n virtual weights; the 2B-slot tables stay in cache):
the forward reads the index (8n) and writes V (4n), the backward reads the index and grad_V (12n):
24n bytes, 19 MB for the 784x1000 layer, ~2 ms at the ~10 GB/s one core streams here. Writes
benchmarks/results/hashed/hashed_weight_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402,F401
from benchmarks.timing import interleaved_medians, write_timing_results  # noqa: E402
from wsnet_ext.hashed import hash_buckets, signed_gather, signed_index  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "hashed")
_OP = torch.ops.wsnet_ext.ws_hashed_weight.default


def contenders(shape, compression):
    """name -> one forward + backward of the virtual weight, on shared inputs."""
    numel = math.prod(shape)
    buckets = math.ceil(numel / compression)
    bucket, sign = hash_buckets(numel, buckets, seed=0)
    bucket, sign = bucket.view(shape), sign.view(shape)
    index = signed_index(numel, buckets, seed=0).view(shape)
    w = torch.randn(buckets, requires_grad=True)
    grad_v = torch.randn(shape)

    def indexing_bincount():
        v = w.detach()[bucket] * sign
        g = torch.bincount(bucket.reshape(-1), weights=(grad_v * sign).reshape(-1), minlength=buckets)
        return v, g

    def index_select():
        (g,) = torch.autograd.grad(signed_gather(w, index), w, grad_v)
        return g

    def op():
        (g,) = torch.autograd.grad(_OP(w, index), w, grad_v)
        return g

    return {"indexing + bincount": indexing_bincount, "index_select": index_select, "wsnet_ext op": op}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="1000,784", help="virtual weight shape, comma-separated")
    parser.add_argument("--compressions", default="8,64")
    parser.add_argument("--tag", default=datetime.date.today().isoformat())
    args = parser.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, virtual weight {shape}; "
             "forward + backward of the virtual weight, interleaved medians (benchmarks/timing.py)", "",
             "| compression | indexing + bincount ms | index_select ms | wsnet_ext op ms | op speed-up vs indexing |",
             "|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    rows = []
    for compression in (float(c) for c in args.compressions.split(",")):
        times = interleaved_medians(contenders(shape, compression), torch.device("cpu"), min_rounds=9,
                                    budget_s=3.0)
        ms = {k: v["median_s"] * 1e3 for k, v in times.items()}
        rows.append({"shape": shape, "compression": compression, "ms": ms})
        lines.append(f"| {compression:g} | {ms['indexing + bincount']:.2f} | {ms['index_select']:.2f} | "
                     f"{ms['wsnet_ext op']:.2f} | {ms['indexing + bincount'] / ms['wsnet_ext op']:.1f}x |")
        print(lines[-1], flush=True)
    write_timing_results(RESULTS, f"hashed_weight_{args.tag}", rows, "HashedNets' virtual weight on the CPU: forward + backward", lines)

if __name__ == "__main__":
    main()
