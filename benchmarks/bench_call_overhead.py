"""What one ws_conv1d call costs beyond its kernel, on layers small enough for it to matter (SoundNet's
conv3-conv5 at batch 8 and 1, and a tiny layer whose kernel takes ~1 us): wsnet_ext.ws_conv1d under
no_grad and under inference_mode, against the registered op called through torch.ops (its call
passes torch.library's Python autograd wrapper, which only redispatches when no gradient is
wanted), the same op below the Autograd keys (the kernel plus the dispatcher), and conv1d on the
materialized weight, what a user would otherwise call. Interleaved in one process, medians of
blocks (benchmarks/timing.py).

    python benchmarks/bench_call_overhead.py [--threads 1] [--tag NAME]

Writes benchmarks/results/cpu_kernels/call_overhead_<tag>.{json,md} and prints the table."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.shapes import SHAPES, Shape, make_inputs  # noqa: E402
from benchmarks.timing import interleaved_medians, write_timing_results  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cpu_kernels")
TINY = Shape("tiny", 1, 2, 4, 3, 1, 1, 16, 1, 1)
FORWARD_OP = torch.ops.wsnet_ext.ws_conv1d_forward.default


def contenders(shape: Shape) -> dict:
    x, cond, bias, _ = make_inputs(shape, "cpu")
    weight = wsnet_ext.sample_conv1d_weight(cond, shape.out_channels, shape.kernel_size,
                                            shape.sample_stride, shape.channel_repeat)
    options = (shape.kernel_size, shape.sample_stride, shape.channel_repeat, shape.stride,
               [shape.padding, shape.padding], 1)
    keywords = dict(kernel_size=shape.kernel_size, sample_stride=shape.sample_stride,
                    channel_repeat=shape.channel_repeat, stride=shape.stride, padding=shape.padding)

    def ws_no_grad():
        with torch.no_grad():
            return wsnet_ext.ws_conv1d(x, cond, bias, **keywords)

    def ws_inference_mode():
        with torch.inference_mode():
            return wsnet_ext.ws_conv1d(x, cond, bias, **keywords)

    def op_through_wrapper():
        with torch.no_grad():
            return FORWARD_OP(x, cond, bias, *options)

    def op_below_autograd():
        with torch.no_grad(), torch._C._AutoDispatchBelowAutograd():
            return FORWARD_OP(x, cond, bias, *options)

    def conv1d():
        with torch.no_grad():
            return F.conv1d(x, weight, bias, stride=shape.stride, padding=shape.padding)

    return {"ws_conv1d (no_grad)": ws_no_grad, "ws_conv1d (inference_mode)": ws_inference_mode,
            "op via torch.ops (no_grad)": op_through_wrapper, "op below autograd": op_below_autograd,
            "conv1d (materialized weight)": conv1d}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per layer")
    parser.add_argument("--tag", default=datetime.date.today().isoformat())
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads expects an int >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    shapes = [TINY] + [dataclasses.replace(s, batch=b) for b in (1, 8) for s in SHAPES
                       if s.name in ("conv3", "conv4", "conv5")]
    rows = []
    for shape in shapes:
        times = interleaved_medians(contenders(shape), torch.device("cpu"), min_rounds=min(15, 3 + int(args.budget * 10)),
                                    max_rounds=400, budget_s=args.budget)
        rows.append({"shape": shape.name, "batch": shape.batch,
                     "us": {name: 1e6 * t["median_s"] for name, t in times.items()}})
        print(shape.name, shape.batch, {k: round(v, 1) for k, v in rows[-1]["us"].items()}, flush=True)
    names = list(rows[0]["us"])
    lines = [f"torch {torch.__version__}, {args.threads} thread(s), {datetime.datetime.now():%Y-%m-%d %H:%M}. "
             "Median microseconds per call (blocks of back-to-back calls, contenders interleaved).", "",
             "| layer | batch | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    lines += [f"| {r['shape']} | {r['batch']} | " + " | ".join(f"{r['us'][n]:.1f}" for n in names) + " |"
              for r in rows]
    write_timing_results(args.out, f"call_overhead_{args.tag}", rows, "Per-call cost of ws_conv1d", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
