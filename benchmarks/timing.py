"""Honest timing: the contenders run interleaved in one process on the same inputs, after a
warm-up, and each reports the median of its runs; CUDA runs are timed with events."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def _time_once(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def interleaved_medians(contenders: dict[str, Callable[[], object]], device: torch.device,
                        min_rounds: int = 5, max_rounds: int = 50, budget_s: float = 3.0,
                        warmup: int = 2) -> dict[str, dict]:
    """Median seconds (and all samples) per contender; round r runs every contender once, in an
    order rotated by r so that none always runs first or after the same neighbour."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    samples = {name: [] for name in names}
    began = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - began < budget_s):
        order = names[rounds % len(names):] + names[:rounds % len(names)]
        for name in order:
            samples[name].append(_time_once(contenders[name], device))
        rounds += 1
    return {name: {"median_s": statistics.median(s), "runs": len(s),
                   "min_s": min(s), "max_s": max(s)} for name, s in samples.items()}
