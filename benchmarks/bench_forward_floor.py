"""How close the CPU suite's FLOP-ratio targets can come on this machine: a lower bound on the
WSConv1d forward (and forward+backward) time from costs no kernel of ours can avoid, measured in
the same process as the suite's contenders.

- Page faults. A fresh output of a large layer (`long`: 32.8 MB) may be new pages, each 4 KB page
  faulting on its first write (kernel time, not hidden behind arithmetic): whether it is depends on
  glibc's malloc state (its mmap threshold moves with the sizes freed before; measured here: the
  same `long` forward takes 0 or ~8,000 faults by what ran before it). Counted per call of each
  contender (getrusage), and priced by filling new anonymous pages (mmap) against a resident buffer
  of the same size.
- Writing the output at all: the resident fill (stores can overlap arithmetic).
- The multiply-adds of steps 1-2 (docs/design.md §2: B * Tp * Lc * Mc, three times that forward and
  backward) at the rate this machine's BLAS reaches on a large float32 matrix product (at the FMA
  peak here), above what any of our kernels or oneDNN's convolution sustain.

floor = ours' median faults per call x time per fault + max(resident fill, multiply-adds / BLAS rate).
The target time is the suite's: conv1d's time / (share x FLOP ratio), share 0.8 forward for
`long`, 1.0 for the strided large layers, 0.7 forward+backward (benchmarks/bench_ws_conv1d.py).
A floor above the target means no kernel with those faults reaches it on this machine.

    python benchmarks/bench_forward_floor.py                      # long, conv1, conv2
    python benchmarks/bench_forward_floor.py --keep-freed-memory  # freed blocks stay in the heap
    python benchmarks/bench_forward_floor.py --quick --shapes conv5  # a smoke run

Writes benchmarks/results/cpu_kernels/forward_floor_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import os
import mmap
import platform
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.bench_ws_conv1d import results_dir, targets  # noqa: E402
from benchmarks.contenders import CONTENDERS, forward_call, train_call  # noqa: E402
from benchmarks.outputs import results_tag, write_json_and_markdown  # noqa: E402
from benchmarks.shapes import LARGE, SHAPES, make_inputs  # noqa: E402
from benchmarks.timing import interleaved_medians  # noqa: E402

OURS, CONV, _ = list(CONTENDERS)
GEMM_N = 2048  # the BLAS rate's matrix product: (2048 x 2048) @ (2048 x 2048)


def blas_macs_per_s(device, rounds: dict) -> float:
    a, b = torch.randn(GEMM_N, GEMM_N), torch.randn(GEMM_N, GEMM_N)
    return GEMM_N ** 3 / interleaved_medians({"mm": lambda: torch.mm(a, b)}, device, **rounds)["mm"]["median_s"]


def page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def counting(fn, tally: list):
    """fn, appending the minor page faults of each call to tally."""
    def run():
        before = page_faults()
        out = fn()
        tally.append(page_faults() - before)
        return out
    return run


def fresh_fill(nbytes: int):
    """Fills nbytes of new anonymous pages: every 4 KB page faults on its first write, whatever the
    allocator's state (torch.empty may or may not get recycled heap memory)."""
    def run():
        pages = mmap.mmap(-1, nbytes)
        t = torch.frombuffer(pages, dtype=torch.float32)
        t.fill_(1.0)
        del t
        pages.close()
    return run


def bench_shape(shape, device, macs_per_s, rounds: dict) -> dict:
    x, cond, bias, gy = make_inputs(shape, device)
    leaves = [t.clone().requires_grad_() for t in (x, cond, bias)]
    out_bytes = 4 * shape.batch * shape.out_channels * shape.out_len
    in_bytes = x.numel() * 4
    resident_y, resident_x = torch.empty(out_bytes // 4), torch.empty(in_bytes // 4)

    def forward(fn):
        return forward_call(fn, x, cond, bias, shape)

    def train_step(fn):
        return train_call(fn, leaves, gy, shape)

    row = {"shape": shape.name, "flop_ratio": shape.flop_ratio(), "ws_macs": shape.ws_macs(), "output_bytes": out_bytes}
    t = targets(shape)
    passes = (("forward", forward, (out_bytes,), (resident_y,), shape.ws_macs(), t["forward_vs_conv"]),
              ("forward_backward", train_step, (out_bytes, in_bytes), (resident_y, resident_x), 3 * shape.ws_macs(),
               t["train_vs_conv"]))
    for name, wrap, sizes, resident, macs, target_ratio in passes:
        tallies = {"ours": [], "conv1d": []}
        fns = {"ours": counting(wrap(CONTENDERS[OURS]), tallies["ours"]),
               "conv1d": counting(wrap(CONTENDERS[CONV]), tallies["conv1d"]),
               "fresh fill": lambda: [fresh_fill(n)() for n in sizes],
               "resident fill": lambda: [r.fill_(1.0) for r in resident]}
        timed = interleaved_medians(fns, device, **rounds)
        pages = sum(sizes) // 4096
        per_fault = max(0.0, timed["fresh fill"]["median_s"] - timed["resident fill"]["median_s"]) / pages
        # per call: the median (the times are medians; calls are often all or nothing) and the mean
        faults = {k: statistics.median(v) for k, v in tallies.items()}
        mean_faults = {k: statistics.fmean(v) for k, v in tallies.items()}
        conv_s, ours_s = timed["conv1d"]["median_s"], timed["ours"]["median_s"]
        entry = {"timed": timed, "faults_per_call": faults, "mean_faults_per_call": mean_faults, "seconds_per_fault": per_fault,
                 "macs_at_blas_s": macs / macs_per_s, "target_s": conv_s / target_ratio,
                 "target_share": target_ratio / shape.flop_ratio(), "share_now": conv_s / ours_s / shape.flop_ratio()}
        # the floor with ours' own faults per call, and with none (every output resident)
        for label, n_faults in (("floor_s", faults["ours"]), ("floor_fault_free_s", 0.0)):
            entry[label] = n_faults * per_fault + max(timed["resident fill"]["median_s"], macs / macs_per_s)
        entry["share_at_floor"] = conv_s / entry["floor_s"] / shape.flop_ratio()
        row[name] = entry
    return row


def markdown(rows, meta) -> str:
    ms = lambda s: f"{s * 1e3:.2f}"  # noqa: E731
    lines = [f"# The forward's floor on this CPU ({meta['when']})", "",
             f"{meta['machine']}; torch {meta['torch']}, {meta['threads']} threads; float32; "
             f"{meta['allocator']}; BLAS rate {meta['blas_gmacs']:.1f} G multiply-adds/s "
             f"({GEMM_N}^3 float32 matmul). Medians of interleaved runs after warm-up.", "",
             "| layer | pass | ours ms | conv1d ms | page faults per call (median; mean): ours, conv1d | us per fault | "
             "resident fill ms | multiply-adds at BLAS rate ms | floor ms (ours' faults) | floor ms (no faults) | "
             "target ms | share of FLOP ratio now | at the floor | target share |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name in ("forward", "forward_backward"):
            p = r[name]
            f, m = p["faults_per_call"], p["mean_faults_per_call"]
            lines.append(f"| {r['shape']} | {name.replace('_', '+')} | {ms(p['timed']['ours']['median_s'])} | "
                         f"{ms(p['timed']['conv1d']['median_s'])} | {f['ours']:.0f} ({m['ours']:.0f}), {f['conv1d']:.0f} "
                         f"({m['conv1d']:.0f}) | "
                         f"{p['seconds_per_fault'] * 1e6:.2f} | {ms(p['timed']['resident fill']['median_s'])} | "
                         f"{ms(p['macs_at_blas_s'])} | {ms(p['floor_s'])} | {ms(p['floor_fault_free_s'])} | "
                         f"{ms(p['target_s'])} | {p['share_now']:.2f} | {p['share_at_floor']:.2f} | "
                         f"{p['target_share']:.2f} |")
    lines += ["", "floor = ours' median page faults per call x the time of one (new anonymous pages filled, less a "
              "resident fill of the same size, per 4 KB page, unmapping included) + max(resident fill, multiply-adds of steps 1-2 at "
              "the BLAS rate; x3 forward+backward); forward+backward fills the output and grad_input. 'at the "
              "floor': conv1d's time / floor / FLOP ratio, the most a kernel with ours' faults could reach here; a "
              "target share above it cannot be met on this machine with those faults.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=",".join(LARGE), help=f"comma-separated (default {','.join(LARGE)})")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="call wsnet_ext.keep_freed_cpu_memory() first (no page faults on fresh outputs)")
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke test")
    parser.add_argument("--tag", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    by_name = {s.name: s for s in SHAPES}
    names = [n for n in args.shapes.split(",") if n]
    if not names or set(names) - set(by_name):
        raise SystemExit(f"--shapes: expected names from {sorted(by_name)}, got {args.shapes!r}")
    if args.keep_freed_memory and not wsnet_ext.keep_freed_cpu_memory():
        raise SystemExit("--keep-freed-memory: glibc's mallopt is not available here")
    device = torch.device("cpu")
    rounds = dict(min_rounds=3, max_rounds=3, budget_s=0.1) if args.quick else dict(min_rounds=7, budget_s=4.0)
    macs_per_s = blas_macs_per_s(device, rounds)
    rows = [bench_shape(by_name[n], device, macs_per_s, rounds) for n in names]
    tag = results_tag(args.tag, args.quick)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.machine(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "blas_gmacs": macs_per_s / 1e9,
            "allocator": "freed memory kept in the heap (keep_freed_cpu_memory)" if args.keep_freed_memory
            else "glibc's default malloc"}
    text = markdown(rows, meta)
    write_json_and_markdown(os.path.join(results_dir(args.out, device), f"forward_floor_{tag}"),
                            {"meta": meta, "rows": rows}, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
