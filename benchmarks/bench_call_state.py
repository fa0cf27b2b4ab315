"""What the state of the process before a call costs a WSConv1d forward: the same call timed right
after other work (issue 25: in the CPU suite `long`'s forward runs ~0.5 ms slower than in a tight
loop of its own, and the suite interleaves it with conv1d and the inner-product path).

Each state runs, then three calls of ours are timed one by one (calls 1-3; page faults counted per
call, a call with over 1,000 faults, i.e. a fresh output, left out of its median); states
interleaved over the rounds:
- ours: nothing in between (a tight loop);
- the suite's contenders: conv1d on the materialized filter, the PyTorch inner-product path;
- cache: a 256 MB write, a 256 MB read (evicts x, y and every scratch from the caches);
- work: 0.5 s of matrix products on all threads; allocating, filling and freeing 1 GB;
- idle: a 0.5 s sleep (the main thread idle, the OpenMP workers asleep or, with
  OMP_WAIT_POLICY=ACTIVE, spinning).

    python benchmarks/bench_call_state.py                 # long, 5 rounds
    python benchmarks/bench_call_state.py --quick --shape conv5

Writes benchmarks/results/cpu_kernels/call_state_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_forward_floor import page_faults  # noqa: E402
from benchmarks.bench_ws_conv1d import results_dir  # noqa: E402
from benchmarks.contenders import CONTENDERS, forward_call  # noqa: E402
from benchmarks.outputs import results_tag, write_json_and_markdown  # noqa: E402
from benchmarks.shapes import SHAPES, make_inputs  # noqa: E402

OURS, CONV, TORCH_IP = list(CONTENDERS)
CALLS = 3
FRESH_OUTPUT_FAULTS = 1000


def states(x, cond, bias, shape, quick: bool) -> dict:
    """{name: a zero-argument callable that puts the process in that state}."""
    size = (16 if quick else 64) * 2**20  # floats: 64 MB / 256 MB
    big, square = torch.empty(size), torch.randn(1024, 1024)
    seconds = 0.05 if quick else 0.5

    def matmuls():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            square @ square
    return {  # (measure runs them under no_grad)
        "ours (tight loop)": lambda: None,
        "conv1d (materialized)": forward_call(CONTENDERS[CONV], x, cond, bias, shape),
        "PyTorch inner-product path": forward_call(CONTENDERS[TORCH_IP], x, cond, bias, shape),
        f"write {4 * size >> 20} MB": lambda: big.fill_(1.0),
        f"read {4 * size >> 20} MB": lambda: big.sum(),
        f"{seconds} s of matrix products": matmuls,
        f"allocate, fill, free {16 * size >> 20} MB": lambda: torch.ones(4 * size).sum(),
        f"sleep {seconds} s": lambda: time.sleep(seconds),
    }


def measure(shape, rounds: int, quick: bool) -> dict:
    """{state: {'calls_ms': [median of call 1, 2, 3], 'faults': [...], 'kept': [...]}}."""
    x, cond, bias, _ = make_inputs(shape, torch.device("cpu"))
    ours = forward_call(CONTENDERS[OURS], x, cond, bias, shape)
    before = states(x, cond, bias, shape, quick)
    times = {name: [[] for _ in range(CALLS)] for name in before}
    faults = {name: [[] for _ in range(CALLS)] for name in before}
    with torch.no_grad():
        for _ in range(3):
            ours()
        for _ in range(rounds):
            for name, put in before.items():
                put()
                for k in range(CALLS):
                    f0, t0 = page_faults(), time.perf_counter()
                    ours()
                    dt, df = time.perf_counter() - t0, page_faults() - f0
                    faults[name][k].append(df)
                    if df <= FRESH_OUTPUT_FAULTS:
                        times[name][k].append(dt)
    return {name: {"calls_ms": [1e3 * statistics.median(t) if t else None for t in times[name]],
                   "faults": faults[name], "kept": [len(t) for t in times[name]]} for name in before}


def markdown(shape_name: str, result: dict, meta: dict) -> str:
    tight = result["ours (tight loop)"]["calls_ms"][0]
    lines = [f"# A WSConv1d forward after other work: `{shape_name}` ({meta['when']})", "",
             f"{meta['machine']}; torch {meta['torch']}, {meta['threads']} threads, OMP_WAIT_POLICY="
             f"{meta['omp_wait_policy']}; {meta['rounds']} rounds, the states interleaved; medians of the calls "
             f"without a fresh output (over {FRESH_OUTPUT_FAULTS} page faults: left out, counted in 'kept').", "",
             "| before the calls | call 1 ms | call 2 ms | call 3 ms | call 1 over the tight loop | kept (of rounds) |",
             "|---|---|---|---|---|---|"]
    for name, r in result.items():
        ms = " | ".join(f"{v:.2f}" if v is not None else "-" for v in r["calls_ms"])
        over = f"{r['calls_ms'][0] / tight:.2f}x" if r["calls_ms"][0] and tight else "-"
        lines.append(f"| {name} | {ms} | {over} | {', '.join(map(str, r['kept']))} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="long", choices=[s.name for s in SHAPES])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 round, small states (a smoke run)")
    parser.add_argument("--tag")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds expects an integer >= 1, got {args.rounds}")
    shape = next(s for s in SHAPES if s.name == args.shape)
    rounds = 1 if args.quick else args.rounds
    result = measure(shape, rounds, args.quick)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
            "rounds": rounds, "shape": shape.name}
    stem = os.path.join(results_dir(args.out, torch.device("cpu")),
                        f"call_state_{results_tag(args.tag, args.quick)}")
    write_json_and_markdown(stem, {"meta": meta, "rows": result}, markdown(shape.name, result, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
