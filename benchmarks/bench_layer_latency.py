"""Batch-1 latency of SoundNet's layers and of the whole model, as a latency-bound user sees it:
one clip (5 s at 22.05 kHz), single calls under inference_mode, on 1 thread and on all, p50 and p99.
Per layer (SoundNet's, with the training protocol's WSNet sampling): wsnet_ext.ws_conv1d against
conv1d on the same (materialized) weight, the plain layer a user would otherwise run; whole model: SoundNet plain against WSNet at 10x. It also shows whether a
layer gains from more threads at batch 1 or pays for them.

    python benchmarks/bench_layer_latency.py            # every layer and the model
    python benchmarks/bench_layer_latency.py --quick --shapes conv5,conv7

Writes benchmarks/results/cpu_kernels/layer_latency_cpu_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.outputs import results_tag, write_json_and_markdown  # noqa: E402
from benchmarks.shapes import make_inputs  # noqa: E402
from benchmarks.timing import latency_keys, single_call_latency, threads_label  # noqa: E402
from benchmarks.training_protocol import TRAINING_SHAPES, with_batch  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cpu_kernels")
SHAPES = {s.name: with_batch(s, 1) for s in TRAINING_SHAPES}
OURS, PLAIN = "WSConv1d (ours)", "conv1d, same weight"


def layer_contenders(shape) -> tuple[dict, torch.Tensor]:
    """{label: fn(x)} for one layer at batch 1, and its input; both compute the same output."""
    x, cond, bias, _ = make_inputs(shape, torch.device("cpu"))
    options = dict(kernel_size=shape.kernel_size, sample_stride=shape.sample_stride,
                   channel_repeat=shape.channel_repeat, stride=shape.stride, padding=shape.padding)
    weight = wsnet_ext.sample_conv1d_weight(cond, shape.out_channels, shape.kernel_size, shape.sample_stride,
                                            shape.channel_repeat).contiguous()
    contenders = {OURS: lambda x: wsnet_ext.ws_conv1d(x, cond, bias, **options),
                  PLAIN: lambda x: F.conv1d(x, weight, bias, stride=shape.stride, padding=shape.padding)}
    with torch.inference_mode():
        ours, plain = (fn(x) for fn in contenders.values())
        error = ((ours - plain).abs().max() / plain.abs().max()).item()
    assert error < 1e-4, f"{shape.name}: ours and conv1d differ by {error:.2e} (relative)"
    return contenders, x


def model_contenders() -> tuple[dict, torch.Tensor]:
    torch.manual_seed(0)
    models = {"SoundNet plain": wsnet_ext.models.soundnet(10, "plain").eval(),
              "SoundNet WSNet 10x": wsnet_ext.models.soundnet(10, "ws", 10, allocate="uniform").eval()}
    return models, torch.randn(1, 1, 110250)


def measure(contenders: dict, x, rounds: int, calls: int) -> dict:
    """{label: {latency_<threads>t: {p50_s, p99_s, samples}}} on 1 thread and on all."""
    everything = torch.get_num_threads()
    out = {label: {} for label in contenders}
    try:
        for threads in sorted({1, everything}):
            torch.set_num_threads(threads)
            for label, result in single_call_latency(contenders, x, torch.device("cpu"), rounds, calls).items():
                out[label][f"latency_{threads}t"] = result
    finally:
        torch.set_num_threads(everything)
    return out


def markdown(rows: list[dict], meta: dict) -> str:
    threads = latency_keys(rows)
    head = " | ".join(f"{threads_label(k)}: p50 ms (p99)" for k in threads)
    most = threads[-1]
    lines = [f"# Batch-1 latency on the CPU: SoundNet's layers and model ({meta['when']})", "",
             f"{meta['machine']}; torch {meta['torch']}; float32; one 5 s clip at 22.05 kHz (batch 1). Single calls "
             "under inference_mode, contenders interleaved round by round after warm-up. Layers: SoundNet's, with the "
             "WSNet sampling of the training protocol (benchmarks/training_protocol.py; the 10x model samples conv1-3 "
             "more finely), timed against conv1d on the same materialized weight. 'threads gain': p50 on 1 thread / p50 on all (below 1: more threads cost time).", "",
             f"| item | FLOP ratio | contender | {head} | speed-up vs plain ({most[8:-1]} t) | threads gain |",
             "|---|---|---|" + "---|" * len(threads) + "---|---|"]
    for r in rows:
        cells = " | ".join(f"{r[k]['p50_s'] * 1e3:.3f} ({r[k]['p99_s'] * 1e3:.3f})" for k in threads)
        ratio = f"{r['flop_ratio']:.2f}" if r.get("flop_ratio") else "-"
        gain = r["latency_1t"]["p50_s"] / r[most]["p50_s"]
        lines.append(f"| {r['item']} | {ratio} | {r['contender']} | {cells} | {r['speedup_vs_plain']:.2f}x | {gain:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="layers (of " + ",".join(SHAPES) + ")")
    parser.add_argument("--no-model", action="store_true", help="layers only")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tag", default=None)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    names = [n for n in args.shapes.split(",") if n]
    if not names or any(n not in SHAPES for n in names):
        raise SystemExit(f"--shapes expects some of {sorted(SHAPES)}, got {args.shapes!r}")
    rounds, calls = (2, 3) if args.quick else (8, 25)
    items = [(n, SHAPES[n].flop_ratio(), *layer_contenders(SHAPES[n])) for n in names]
    if not args.no_model:
        items.append(("SoundNet 10x", None, *model_contenders()))
    rows = []
    for item, flop_ratio, contenders, x in items:
        timed = measure(contenders, x, 1 if args.quick else rounds, calls)
        plain_label = PLAIN if PLAIN in timed else "SoundNet plain"
        most = max((k for k in timed[plain_label]), key=lambda k: int(k[8:-1]))
        for label, result in timed.items():
            rows.append({"item": item, "flop_ratio": flop_ratio, "contender": label, **result,
                         "speedup_vs_plain": timed[plain_label][most]["p50_s"] / result[most]["p50_s"]})
    meta = {"when": datetime.datetime.now().isoformat(timespec="minutes"), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "quick": args.quick,
            "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads"}
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"layer_latency_cpu_{results_tag(args.tag, args.quick)}")
    write_json_and_markdown(stem, {"meta": meta, "rows": rows}, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
