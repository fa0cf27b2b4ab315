"""What the stride-1 CPU forward costs per block of condensed columns, as a line in the number of
condensed channels Mc (issue 25: stride-1 layers reach a smaller share of their FLOP ratio the
fewer condensed channels they have).

One layer, 24 -> 48 filters, kernel 24, sample stride 4, stride 1, with every channel repeat C
that divides 24 (Mc = 24 / C condensed channels, the same 212 condensed columns). The forward
tile sweeps blocks of 4 columns x 64 rows (docs/how-it-computes.md): the multiply-adds grow with
Mc, while the line prefix, the carry between row blocks and the gathers do not. The least-squares
line  ns per block = a + b * Mc  splits the two: b is the multiply-adds (16 FMAs of 16 floats per
channel and block), a what each block costs whatever Mc. conv1d on the materialized filter (the
same plain work for every C) is timed beside them, interleaved, so each C also has its share of
the FLOP ratio.

    python benchmarks/bench_column_cost.py                   # 1 thread, T = 4000, 9 rounds
    python benchmarks/bench_column_cost.py --threads 2 --length 16000

Writes benchmarks/results/cpu_kernels/column_cost_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_ws_conv1d import results_dir  # noqa: E402
from benchmarks.contenders import forward_call, materialized_conv1d, ws_conv1d  # noqa: E402
from benchmarks.outputs import results_tag, write_json_and_markdown  # noqa: E402
from benchmarks.shapes import Shape, make_inputs  # noqa: E402
from benchmarks.timing import interleaved_medians  # noqa: E402

IN_CHANNELS = 24
REPEATS = (24, 12, 8, 6, 4, 3, 2, 1)  # channel repeats C: Mc = 24 / C
BLOCK_COLUMNS, BLOCK_ROWS = 4, 64     # the AVX-512 forward's register block (ws_conv1d_isa.h)


def layer(repeat: int, length: int, batch: int) -> Shape:
    return Shape(f"C{repeat}", batch, IN_CHANNELS, 48, 24, 1, 12, length, 4, repeat)


def blocks(shape: Shape) -> float:
    """Blocks of 4 condensed columns x 64 padded rows in one forward (tiles' halos left out)."""
    return shape.batch * shape.padded_len / BLOCK_ROWS * shape.condensed_len / BLOCK_COLUMNS


def measure(length: int, batch: int, rounds: int) -> dict:
    shapes = [layer(c, length, batch) for c in REPEATS]
    calls = {}
    for shape in shapes:
        x, cond, bias, _ = make_inputs(shape, torch.device("cpu"))
        calls[shape.name] = forward_call(ws_conv1d, x, cond, bias, shape)
    # conv1d's work does not depend on C: one of them, on the C = 1 layer's sampled filter
    x, cond, bias, _ = make_inputs(shapes[-1], torch.device("cpu"))
    calls["conv1d"] = forward_call(materialized_conv1d, x, cond, bias, shapes[-1])
    times = interleaved_medians(calls, torch.device("cpu"), min_rounds=rounds, max_rounds=rounds, budget_s=0.0)
    conv_s = times["conv1d"]["median_s"]
    rows = []
    for shape in shapes:
        s = times[shape.name]["median_s"]
        rows.append({"repeat": shape.channel_repeat, "mc": shape.condensed_channels, "flop_ratio": shape.flop_ratio(),
                     "ours_ms": s * 1e3, "conv1d_ms": conv_s * 1e3, "speedup": conv_s / s,
                     "share": conv_s / s / shape.flop_ratio(), "ns_per_block": s / blocks(shape) * 1e9})
    b, a = np.polyfit([r["mc"] for r in rows], [r["ns_per_block"] for r in rows], 1)
    for r in rows:
        r["model_ns_per_block"] = a + b * r["mc"]
    return {"rows": rows, "fit": {"a_ns": float(a), "b_ns_per_channel": float(b)}}


def markdown(result: dict, meta: dict) -> str:
    fit = result["fit"]
    lines = [f"# Stride-1 forward: cost per block of 4 condensed columns x 64 rows ({meta['when']})", "",
             f"{meta['machine']}; torch {meta['torch']}, {meta['threads']} thread(s); 24 -> 48, k 24, S 4, "
             f"stride 1, batch {meta['batch']}, T {meta['length']}; medians of {meta['rounds']} interleaved rounds.",
             "", f"Least-squares line: **{fit['a_ns']:.1f} ns + {fit['b_ns_per_channel']:.2f} ns x Mc** per block "
             "(b: the multiply-adds, 16 FMAs per channel and block; a: what a block costs whatever Mc).", "",
             "| C | Mc | FLOP ratio | ours ms | conv1d ms | speed-up | share of FLOP ratio | ns per block | line |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['repeat']} | {r['mc']} | {r['flop_ratio']:.2f} | {r['ours_ms']:.3f} | {r['conv1d_ms']:.2f} | "
                     f"{r['speedup']:.2f} | {r['share']:.2f} | {r['ns_per_block']:.1f} | {r['model_ns_per_block']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--length", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="T = 600, batch 1, 1 round (a smoke run)")
    parser.add_argument("--tag")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    for name in ("threads", "length", "batch", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} expects an integer >= 1, got {getattr(args, name)}")
    length, batch, rounds = (600, 1, 1) if args.quick else (args.length, args.batch, args.rounds)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        result = measure(length, batch, rounds)
    finally:
        torch.set_num_threads(threads_before)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": args.threads, "length": length, "batch": batch,
            "rounds": rounds}
    stem = os.path.join(results_dir(args.out, torch.device("cpu")), f"column_cost_{results_tag(args.tag, args.quick)}")
    write_json_and_markdown(stem, {"meta": meta, **result}, markdown(result, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
