"""Honest timing: the contenders run interleaved in one process on the same inputs, after a
warm-up, and each reports the median of its samples; CUDA runs are timed with events.

A sample is the mean of a short block of back-to-back calls (at least ~20 ms, as timeit does),
so a fast call is timed warm rather than right after another contender flushed the caches and
let the worker threads fall asleep; the blocks of the contenders alternate, round by round."""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Callable

import torch


def _time_block(fn: Callable[[], object], device: torch.device, calls: int) -> float:
    """Mean seconds per call over `calls` back-to-back calls."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / calls
    begin = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - begin) / calls


def interleaved_medians(contenders: dict[str, Callable[[], object]], device: torch.device,
                        min_rounds: int = 5, max_rounds: int = 50, budget_s: float = 3.0,
                        warmup: int = 2, block_s: float = 0.02) -> dict[str, dict]:
    """Median seconds per call for each contender; round r times one block of every contender,
    in an order rotated by r so that none always runs first or after the same neighbour."""
    names = list(contenders)
    calls = {}
    for name in names:
        single = min(_time_block(contenders[name], device, 1) for _ in range(warmup))
        calls[name] = max(1, min(50, int(block_s / max(single, 1e-9))))
    samples = {name: [] for name in names}
    began = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - began < budget_s):
        order = names[rounds % len(names):] + names[:rounds % len(names)]
        for name in order:
            samples[name].append(_time_block(contenders[name], device, calls[name]))
        rounds += 1
    return {name: {"median_s": statistics.median(s), "samples": len(s), "calls_per_sample": calls[name],
                   "min_s": min(s), "max_s": max(s)} for name, s in samples.items()}


def single_call_latency(contenders: dict[str, Callable], x, device: torch.device, rounds: int, calls: int) -> dict:
    """p50 and p99 seconds of single calls contender(x) under inference_mode, as a latency-bound
    user sees them (no block of back-to-back calls): three warm-up calls each, then `rounds`
    rounds of `calls` calls per contender, the order rotated round by round."""
    samples = {label: [] for label in contenders}
    with torch.inference_mode():
        for fn in contenders.values():
            for _ in range(3):
                fn(x)
        for r in range(rounds):
            labels = list(contenders)
            labels = labels[r % len(labels):] + labels[:r % len(labels)]
            for label in labels:
                for _ in range(calls):
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    began = time.perf_counter()
                    contenders[label](x)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    samples[label].append(time.perf_counter() - began)
    return {label: {"p50_s": statistics.median(s), "p99_s": statistics.quantiles(s, n=100)[98] if len(s) >= 2 else s[0],
                    "samples": len(s)} for label, s in samples.items()}


def latency_keys(rows: list[dict]) -> list[str]:
    """The rows' 'latency_<threads>t' keys, fewest threads first."""
    return sorted({k for r in rows for k in r if k.startswith("latency_")}, key=lambda k: int(k[8:-1]))


def threads_label(key: str) -> str:
    """'1 thread' / '2 threads' of a 'latency_<threads>t' key."""
    count = key[8:-1]
    return f"{count} thread{'s' if count != '1' else ''}"


def one_thread_latency_ms(models: dict, x, rounds: int = 4, calls: int = 10) -> dict:
    """{label: p50 ms of model(x)} on one CPU thread, the models interleaved (single_call_latency):
    the latency a small board or a single-threaded server sees at batch 1."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        timed = single_call_latency(models, x, torch.device("cpu"), rounds, calls)
    finally:
        torch.set_num_threads(threads)
    return {label: 1e3 * t["p50_s"] for label, t in timed.items()}


def write_timing_results(results_dir: str, stem: str, rows: list, title: str, lines: list[str]) -> None:
    """<results_dir>/<stem>.json (torch version, threads, rows) and <stem>.md (title + table lines)."""
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, f"{stem}.json"), "w") as f:
        json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, f, indent=1)
    with open(os.path.join(results_dir, f"{stem}.md"), "w") as f:
        f.write(f"# {title}\n\n" + "\n".join(lines) + "\n")
