"""What autograd adds to a WSConv1d training step: per layer of the suite (benchmarks/shapes.py),
one forward+backward through autograd (wsnet_ext.ws_conv1d, then .backward) against the same two
registered ops called directly (forward op, backward op with every gradient), interleaved in one
process on the same inputs. The difference is the cost of the autograd glue (and of
ws_conv1d's argument checks, which both builds share).

    python benchmarks/bench_autograd_overhead.py [--tag NAME] [--shapes conv3,conv5]

Run it on two builds (e.g. C++ autograd before, Python autograd after) to compare their glue.
Writes benchmarks/results/stable_abi/autograd_overhead_<tag>.json and prints a table."""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.shapes import SHAPES, make_inputs  # noqa: E402
from benchmarks.timing import interleaved_medians  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "stable_abi")


def bench(shape, budget_s: float) -> dict:
    x, cond, bias, gy = make_inputs(shape, "cpu")
    leaves = [t.clone().requires_grad_() for t in (x, cond, bias)]
    pads = [shape.padding, shape.padding]
    options = (shape.kernel_size, shape.sample_stride, shape.channel_repeat, shape.stride, pads, 1)
    forward_op = torch.ops.wsnet_ext.ws_conv1d_forward.default
    backward_op = torch.ops.wsnet_ext.ws_conv1d_backward.default

    def through_autograd():
        for leaf in leaves:
            leaf.grad = None
        wsnet_ext.ws_conv1d(*leaves, kernel_size=shape.kernel_size, sample_stride=shape.sample_stride,
                            channel_repeat=shape.channel_repeat, stride=shape.stride,
                            padding=shape.padding).backward(gy)

    def ops_directly():
        with torch.no_grad():
            forward_op(x, cond, bias, *options)
            backward_op(gy, x, cond, *options, [True, True, True])

    times = interleaved_medians({"autograd": through_autograd, "ops": ops_directly},
                                torch.device("cpu"), min_rounds=15, max_rounds=400, budget_s=budget_s)
    step, ops = times["autograd"]["median_s"], times["ops"]["median_s"]
    return {"shape": shape.name, "autograd_s": step, "ops_s": ops, "overhead_s": step - ops,
            "samples": times["autograd"]["samples"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="run")
    parser.add_argument("--shapes", default="", help="comma-separated names (default: all)")
    parser.add_argument("--budget", type=float, default=4.0, help="seconds per layer")
    args = parser.parse_args()
    wanted = set(filter(None, args.shapes.split(",")))
    rows = [bench(shape, args.budget) for shape in SHAPES if not wanted or shape.name in wanted]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, wsnet_ext {wsnet_ext.__file__}")
    print("| layer | fwd+bwd through autograd ms | the two ops directly ms | autograd glue us |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['autograd_s'] * 1e3:.3f} | {r['ops_s'] * 1e3:.3f} | {r['overhead_s'] * 1e6:.1f} |")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"autograd_overhead_{args.tag}.json"), "w") as f:
        json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(),
                   "build": wsnet_ext.build_info(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
