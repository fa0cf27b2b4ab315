"""Microbenchmarks of WSConv1d: wsnet_ext.ws_conv1d against the materialized conv1d and the
plain-PyTorch inner-product path, forward and forward+backward, on SoundNet-like layers.

    python benchmarks/bench_ws_conv1d.py                 # CPU, and CUDA where present
    python benchmarks/bench_ws_conv1d.py --quick --shapes conv2,conv5
    python benchmarks/bench_ws_conv1d.py --device cuda --protocol training   # batch 64, kernel time

Writes benchmarks/results/<cpu|cuda>_kernels/ws_conv1d_<device>_<tag>.{json,md,png} and prints the table."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.contenders import CONTENDERS, forward_call, train_call  # noqa: E402
from benchmarks.peak_memory import peak_extra_bytes  # noqa: E402
from benchmarks.shapes import LARGE, SHAPES, make_inputs  # noqa: E402
from benchmarks.outputs import devices_for, results_tag, write_json_and_markdown  # noqa: E402
from benchmarks.timing import interleaved_medians  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def results_dir(out: str | None, device: torch.device) -> str:
    """--out, else the device's topic folder of benchmarks/results (created)."""
    folder = out or os.path.join(RESULTS, "cpu_kernels" if device.type == "cpu" else "cuda_kernels")
    os.makedirs(folder, exist_ok=True)
    return folder
OURS, CONV, TORCH_IP = list(CONTENDERS)


# forward speed-up over the materialized conv1d, as a share of the FLOP ratio (docs/benchmarks.md):
# the strided large layers all of it, the stride-1 layers (`long`, `mid`) 0.8, the small layers 0.6
FORWARD_SHARE = {"conv1": 1.0, "conv2": 1.0, "long": 0.8, "mid": 0.8}


def targets(shape) -> dict:
    """The CPU targets: speed-up over the materialized conv1d as a multiple of the FLOP ratio, and
    over the PyTorch inner-product path."""
    large = shape.name in LARGE
    return {"forward_vs_conv": FORWARD_SHARE.get(shape.name, 0.6) * shape.flop_ratio(),
            "train_vs_conv": (0.7 if large else 0.35) * shape.flop_ratio(),
            "vs_inner_product": 10.0}


def bench_shape(shape, device, quick):
    x, cond, bias, gy = make_inputs(shape, device)
    leaves = [t.clone().requires_grad_() for t in (x, cond, bias)]
    rounds = dict(min_rounds=3, max_rounds=5, budget_s=0.5) if quick else dict(min_rounds=7, budget_s=3.0)

    with torch.no_grad():  # every contender computes the same thing
        reference = CONTENDERS[OURS](x, cond, bias, shape)
        errors = {name: ((fn(x, cond, bias, shape) - reference).abs().max() /
                         reference.abs().max()).item() for name, fn in CONTENDERS.items()}

    def forward(fn):
        return forward_call(fn, x, cond, bias, shape)

    def train_step(fn):
        return train_call(fn, leaves, gy, shape)

    fwd = interleaved_medians({n: forward(f) for n, f in CONTENDERS.items()}, device, **rounds)
    train = interleaved_medians({n: train_step(f) for n, f in CONTENDERS.items()}, device, **rounds)

    output_bytes = reference.numel() * reference.element_size()
    del reference
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        forward(CONTENDERS[OURS])()
        peak_extra = torch.cuda.max_memory_allocated() - base
    else:
        peak_extra = peak_extra_bytes(forward(CONTENDERS[OURS]))
    flops = {OURS: 2 * shape.ws_macs() + shape.ws_other_ops(), CONV: 2 * shape.plain_macs(),
             TORCH_IP: 2 * shape.ws_macs() + shape.batch * shape.out_channels * shape.out_len * shape.kernel_size}
    return {
        "shape": shape.__dict__ | {"Mc": shape.condensed_channels, "Lc": shape.condensed_len,
                                   "T_out": shape.out_len},
        "flop_ratio": shape.flop_ratio(),
        "forward_flops": flops,
        "forward": fwd,
        "forward_backward": train,
        "max_rel_error_vs_ours": errors,
        "peak_extra_bytes_forward": peak_extra,
        "output_bytes": output_bytes,
        "targets": targets(shape),
    }


def summarize(row) -> dict:
    f, t = row["forward"], row["forward_backward"]
    ours_f, ours_t = f[OURS]["median_s"], t[OURS]["median_s"]
    return {
        "fwd_speedup_vs_conv": f[CONV]["median_s"] / ours_f,
        "fwd_speedup_vs_ip": f[TORCH_IP]["median_s"] / ours_f,
        "train_speedup_vs_conv": t[CONV]["median_s"] / ours_t,
        "train_speedup_vs_ip": t[TORCH_IP]["median_s"] / ours_t,
        "ours_gflops": row["forward_flops"][OURS] / ours_f / 1e9,
        "conv_gflops": row["forward_flops"][CONV] / f[CONV]["median_s"] / 1e9,
    }


def verdicts(row, s) -> dict:
    tg = row["targets"]
    mem = row["peak_extra_bytes_forward"]
    return {
        "forward": s["fwd_speedup_vs_conv"] >= tg["forward_vs_conv"],
        "forward_backward": s["train_speedup_vs_conv"] >= tg["train_vs_conv"],
        "vs_inner_product": min(s["fwd_speedup_vs_ip"], s["train_speedup_vs_ip"]) >= tg["vs_inner_product"],
        "memory": None if mem is None else mem < 2 * row["output_bytes"],
    }


def markdown(rows, device, meta) -> str:
    ok = {True: "yes", False: "**no**", None: "n/a"}
    lines = [f"# WSConv1d microbenchmarks on {device} ({meta['when']})", "",
             f"{meta['machine']}; torch {meta['torch']}, {meta['threads']} threads; float32; "
             "times are medians of interleaved runs after warm-up"
             + ("; freed memory kept in the heap (wsnet_ext.keep_freed_cpu_memory: no page faults on fresh "
                "outputs)." if meta.get("keep_freed_memory") else "; glibc's default malloc (fresh outputs over "
                "32 MB are new pages, faulted in by their first writes)."), "",
             "| layer | FLOP ratio | fwd ours ms | fwd conv1d ms | fwd PyTorch-IP ms | fwd speed-up vs conv1d (target) "
             "| fwd+bwd ours ms | fwd+bwd conv1d ms | fwd+bwd speed-up (target) | speed-up vs PyTorch-IP fwd / fwd+bwd "
             "| ours GFLOP/s | conv1d GFLOP/s | peak extra mem / output | targets met (fwd, fwd+bwd, IP, mem) |",
             "|" + "---|" * 14]
    for row in rows:
        s, v, tg = row["summary"], row["verdicts"], row["targets"]
        f, t = row["forward"], row["forward_backward"]
        mem = row["peak_extra_bytes_forward"]
        mem_text = "n/a" if mem is None else f"{mem / row['output_bytes']:.2f}"
        lines.append(
            f"| {row['shape']['name']} | {row['flop_ratio']:.2f} | {f[OURS]['median_s'] * 1e3:.2f} | "
            f"{f[CONV]['median_s'] * 1e3:.2f} | {f[TORCH_IP]['median_s'] * 1e3:.1f} | "
            f"{s['fwd_speedup_vs_conv']:.2f} ({tg['forward_vs_conv']:.2f}) | {t[OURS]['median_s'] * 1e3:.2f} | "
            f"{t[CONV]['median_s'] * 1e3:.2f} | {s['train_speedup_vs_conv']:.2f} ({tg['train_vs_conv']:.2f}) | "
            f"{s['fwd_speedup_vs_ip']:.0f} / {s['train_speedup_vs_ip']:.0f} | {s['ours_gflops']:.1f} | "
            f"{s['conv_gflops']:.1f} | {mem_text} | "
            f"{ok[v['forward']]}, {ok[v['forward_backward']]}, {ok[v['vs_inner_product']]}, {ok[v['memory']]} |")
    lines += ["", "FLOP ratio = plain conv multiply-adds / WSNet steps 1-2 multiply-adds (docs/design.md §2). "
              "GFLOP/s count 2 FLOPs per multiply-add of each method's own work (ours adds fold, prefix "
              "sums and gather). PyTorch-IP = fold + matmul for P + gather by indexing, in plain PyTorch. "
              "Peak extra memory: resident-set high-water mark during one forward (CPU) or the CUDA "
              "allocator's peak, output included, over the output's size."]
    return "\n".join(lines) + "\n"


def plot(rows, device, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["shape"]["name"] for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.25
    ax.bar([i - width for i in xs], [r["summary"]["fwd_speedup_vs_conv"] for r in rows], width, label="forward")
    ax.bar(list(xs), [r["summary"]["train_speedup_vs_conv"] for r in rows], width, label="forward+backward")
    ax.bar([i + width for i in xs], [r["flop_ratio"] for r in rows], width, label="FLOP ratio", color="grey")
    ax.set_xticks(list(xs), names)
    ax.set_yscale("log")
    ax.set_ylabel("speed-up over materialized conv1d")
    ax.set_title(f"wsnet_ext.ws_conv1d on {device}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--shapes", default=",".join(s.name for s in SHAPES))
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke test")
    parser.add_argument("--tag", default=None, help="results file suffix (default: date, or 'quick')")
    parser.add_argument("--out", default=None,
                        help="results folder (default: benchmarks/results/cpu_kernels or cuda_kernels by device)")
    parser.add_argument("--protocol", choices=["batch8", "training"], default="batch8",
                        help="batch8: the table kept for continuity; training: SoundNet conv1-7 and long "
                             "at batch 64, CUDA-graph kernel time, cuDNN with and without TF32, 3 dtypes "
                             "(benchmarks/training_protocol.py)")
    parser.add_argument("--dtypes", default="float32,bfloat16,float16", help="training protocol only")
    parser.add_argument("--batch", type=int, default=None, help="training protocol only (default 64)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="call wsnet_ext.keep_freed_cpu_memory() first: freed blocks stay in glibc's heap, "
                             "so outputs are not first-touched page by page (both contenders benefit)")
    args = parser.parse_args(argv)
    if args.keep_freed_memory and not wsnet_ext.keep_freed_cpu_memory():
        raise SystemExit("--keep-freed-memory: this C library is not glibc")
    if args.protocol == "training":
        return training_main(args)
    wanted = args.shapes.split(",")
    shapes = [s for s in SHAPES if s.name in wanted]
    devices = devices_for(args.device)
    tag = results_tag(args.tag, args.quick)
    all_met = True
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
        meta = {"when": datetime.datetime.now().isoformat(timespec="minutes"), "torch": torch.__version__,
                "threads": torch.get_num_threads(), "machine": name, "build": wsnet_ext.build_info(),
                "keep_freed_memory": args.keep_freed_memory}
        rows = []
        for shape in tqdm(shapes, desc=f"ws_conv1d on {device.type}", unit="layer"):
            row = bench_shape(shape, device, args.quick)
            row["summary"] = summarize(row)
            row["verdicts"] = verdicts(row, row["summary"])
            rows.append(row)
        stem = os.path.join(results_dir(args.out, device), f"ws_conv1d_{device.type}_{tag}")
        write_json_and_markdown(stem, {"meta": meta, "rows": rows}, markdown(rows, device.type, meta))
        plot(rows, device.type, stem + ".png")
        print(f"wrote {stem}.png")
        all_met &= all(v is not False for r in rows for v in r["verdicts"].values())
    return 0 if all_met else 1


def training_main(args) -> int:
    """The training-size protocol: writes ws_conv1d_training_<device>_<tag>.{json,md}."""
    from benchmarks import training_protocol as tp

    wanted = args.shapes.split(",") if args.shapes != ",".join(s.name for s in SHAPES) else None
    shapes = [tp.with_batch(s, args.batch or s.batch) for s in tp.TRAINING_SHAPES if wanted is None or s.name in wanted]
    dtypes = args.dtypes.split(",")
    unknown = [d for d in dtypes if d not in tp.DTYPES]
    if unknown or not shapes:
        raise SystemExit(f"--dtypes expects some of {sorted(tp.DTYPES)} and --shapes some of "
                         f"{[s.name for s in tp.TRAINING_SHAPES]}, got {args.dtypes!r} and {args.shapes!r}")
    if args.device == "cuda" and not (torch.cuda.is_available() and wsnet_ext.cuda_built()):
        raise SystemExit("no CUDA device, or wsnet_ext was built without CUDA kernels")
    device = torch.device("cuda" if args.device in ("cuda", "all") and torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    tag = results_tag(args.tag, args.quick)
    meta = {"when": datetime.datetime.now().isoformat(timespec="minutes"), "torch": torch.__version__,
            "machine": name, "build": wsnet_ext.build_info(), "protocol": "training",
            "copy_gbps": tp.copy_bandwidth_gbps(device), "l2_bytes": tp.l2_bytes(device)}
    rows = [tp.bench_row(shape, device, dtype, meta["copy_gbps"], args.quick)
            for shape in tqdm(shapes, desc=f"training protocol on {device.type}", unit="layer") for dtype in dtypes]
    stem = os.path.join(results_dir(args.out, device), f"ws_conv1d_training_{device.type}_{tag}")
    write_json_and_markdown(stem, {"meta": meta, "rows": rows}, tp.markdown(rows, meta))
    return 0


if __name__ == "__main__":
    main()
