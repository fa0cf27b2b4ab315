"""Inference as users ship it: whole models (SoundNet on 5 s of audio, the 5-layer CNN on 32x32
images, HashNet's MLP) plain, as WSNet (and with 8-bit condensed filters), as HashNet, and as the
plain network narrowed to WSNet's parameter count (the baseline a reviewer asks for). On the CPU
(and CUDA where present): latency of one input (batch 1) on 1 thread and on all, p50 and p99;
throughput at batch 64; parameters; bytes on disk (torch.save of the state_dict); peak extra
memory of a batch-1 call. Same process, same inputs, warm-up, variants interleaved round by round.

    python benchmarks/bench_inference.py                                  # every model, 4/10/45x
    python benchmarks/bench_inference.py --models soundnet --compressions 10 --quick

Writes benchmarks/results/inference/inference_<device>_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.allocations import allocation_kwargs, parse_allocations  # noqa: E402
from benchmarks.narrowed import narrowed, params  # noqa: E402
from benchmarks.outputs import devices_for, results_tag, write_json_and_markdown  # noqa: E402
from benchmarks.peak_memory import peak_extra_bytes  # noqa: E402
from benchmarks.timing import interleaved_medians, latency_keys, single_call_latency, threads_label  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "inference")
models = wsnet_ext.models
# name: (builder(variant, compression, size, **allocation keywords), one input's shape, the builder's
# size argument for the plain network and its smallest: the narrowed baseline is searched between them)
MODELS = {
    "soundnet": (lambda v, k, w, **how: models.soundnet(10, v, k, width=w, **how), (1, 110250), (1.0, 0.02)),
    "cnn5": (lambda v, k, w, **how: models.cnn5(10, v, k, width=max(1, round(w)), **how), (3, 32, 32), (64, 1)),
    "mlp": (lambda v, k, w, **how: models.mlp(784, 10, v, k, hidden=max(1, round(w)), **how), (784,), (1000, 1)),
}


def disk_bytes(model) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def variants(name: str, compressions, allocations) -> dict:
    """label -> model (eval mode), for one of MODELS: WSNet (float and 8-bit condensed filters) and
    HashNet under each allocation (labels name it when there are several), and the plain network
    narrowed to the first allocation's WSNet size."""
    build, _, (widest, narrowest) = MODELS[name]
    out = {"plain": build("plain", None, widest)}
    for k in compressions:
        for i, allocation in enumerate(allocations):
            how = allocation_kwargs(allocation)
            named = f" ({allocation})" if len(allocations) > 1 else ""
            ws = build("ws", k, widest, **how)
            out[f"WSNet {k}x{named}"] = ws
            out[f"WSNet {k}x 8-bit{named}"] = wsnet_ext.quantize_condensed(build("ws", k, widest, **how), bits=8)
            out[f"HashNet {k}x{named}"] = build("hashed", k, widest, **how)
            if i == 0:
                out[f"narrowed to WSNet {k}x{named}"], _ = narrowed(lambda w: build("plain", None, w), params(ws),
                                                                    widest, narrowest)
    return {label: model.eval() for label, model in out.items()}


def run_model(name: str, compressions, allocations, device, quick: bool) -> list[dict]:
    models_ = {label: m.to(device) for label, m in variants(name, compressions, allocations).items()}
    shape = MODELS[name][1]
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(1, *shape, generator=gen).to(device)
    x64 = torch.randn(64 if not quick else 4, *shape, generator=gen).to(device)
    everything = torch.get_num_threads()
    thread_counts = [1, everything] if device.type == "cpu" and everything > 1 else [everything]
    rows = {label: {"model": name, "variant": label, "params": params(m), "disk_bytes": disk_bytes(m),
                    "saved_bytes": wsnet_ext.model_bytes(m)} for label, m in models_.items()}
    rounds, calls = (2, 5) if quick else (6, 25)
    try:
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for label, result in single_call_latency(models_, x1, device, rounds, calls).items():
                rows[label][f"latency_{threads}t"] = result
        torch.set_num_threads(everything)
        with torch.inference_mode():
            timed = interleaved_medians({label: (lambda m=m: m(x64)) for label, m in models_.items()}, device,
                                        min_rounds=2 if quick else 5, max_rounds=3 if quick else 20,
                                        budget_s=0.5 if quick else 10.0)
        for label, t in timed.items():
            rows[label]["throughput_per_s"] = x64.shape[0] / t["median_s"]
            rows[label]["batch"] = x64.shape[0]
            if device.type == "cpu":
                with torch.inference_mode():
                    rows[label]["peak_extra_bytes"] = peak_extra_bytes(lambda m=models_[label]: m(x1))
    finally:
        torch.set_num_threads(everything)
    plain = rows["plain"]
    for row in rows.values():
        row["params_ratio"] = plain["params"] / row["params"]
        row["bytes_ratio"] = plain["saved_bytes"] / row["saved_bytes"]
        for key in [k for k in row if k.startswith("latency_")]:
            row[key]["speedup_vs_plain"] = plain[key]["p50_s"] / row[key]["p50_s"]
    return list(rows.values())


def markdown(rows: list[dict], meta: dict) -> str:
    threads = latency_keys(rows)
    head = " | ".join(f"batch 1, {threads_label(k)}: p50 ms (p99) | vs plain" for k in threads)
    lines = [f"# Inference: plain vs WSNet vs HashNet vs a narrower plain network ({meta['when']})", "",
             f"{meta['machine']}; torch {meta['torch']}; float32; allocation {', '.join(meta['allocate'])}. Latency: single "
             "calls, variants interleaved; throughput: interleaved medians at the batch shown; bytes: what the "
             "model saves (int8 codes count 1 byte); bytes on disk: torch.save of the state_dict; peak: extra "
             "resident memory of one batch-1 call (CPU).", "",
             f"| model | variant | params | bytes | x fewer bytes | disk bytes | {head} | throughput /s (batch) | peak MB |",
             "|---|---|---|---|---|---|" + "---|---|" * len(threads) + "---|---|"]
    for r in rows:
        cells = " | ".join(f"{r[k]['p50_s'] * 1e3:.2f} ({r[k]['p99_s'] * 1e3:.2f}) | {r[k]['speedup_vs_plain']:.2f}x"
                           for k in threads)
        peak = f"{r['peak_extra_bytes'] / 2**20:.1f}" if r.get("peak_extra_bytes") is not None else "-"
        lines.append(f"| {r['model']} | {r['variant']} | {r['params']:,} | {r['saved_bytes']:,} | {r['bytes_ratio']:.1f} | "
                     f"{r['disk_bytes']:,} | {cells} | {r['throughput_per_s']:.1f} ({r['batch']}) | {peak} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--compressions", default="4,10,45")
    parser.add_argument("--allocate", default="by_params_fast",
                        help="comma-separated: how WSNet and HashNet spend the budget (wsnetify's allocate, or "
                             "by_params_fast:H; default by_params_fast, the library's default with an example input; "
                             "several: each timed beside the others, the narrowed network sized by the first)")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tag", default=None)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    names = args.models.split(",")
    if not names or any(n not in MODELS for n in names):
        raise SystemExit(f"--models expects some of {sorted(MODELS)}, got {args.models!r}")
    try:
        compressions = [float(c) if "." in c else int(c) for c in args.compressions.split(",")]
    except ValueError:
        raise SystemExit(f"--compressions expects comma-separated numbers, got {args.compressions!r}") from None
    if any(c < 1 for c in compressions):
        raise SystemExit(f"--compressions expects numbers >= 1, got {compressions}")
    try:
        allocations = parse_allocations(args.allocate)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    devices = devices_for(args.device)
    tag = results_tag(args.tag, args.quick)
    os.makedirs(args.out, exist_ok=True)
    for device in devices:
        torch.manual_seed(0)
        rows = [row for name in names for row in run_model(name, compressions, allocations, device, args.quick)]
        meta = {"when": datetime.datetime.now().isoformat(timespec="minutes"), "torch": torch.__version__,
                "threads": torch.get_num_threads(), "allocate": allocations, "quick": args.quick,
                "machine": torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"}
        stem = os.path.join(args.out, f"inference_{device.type}_{tag}")
        write_json_and_markdown(stem, {"meta": meta, "rows": rows}, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
