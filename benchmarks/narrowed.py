"""The baseline a reviewer asks for beside any compressed network: the plain network made narrower
(fewer channels) until it holds no more parameters than the compressed one."""

from __future__ import annotations


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def narrowed(build, budget: int, widest: float, narrowest: float):
    """(model, size) of build(size), the size argument (a width multiplier or a channel count)
    bisected between `narrowest` and `widest` so that the parameters are the largest count <=
    budget (the narrowest network where even that is more)."""
    lo, hi = narrowest, widest
    for _ in range(40):
        mid = (lo + hi) / 2
        if params(build(mid)) <= budget:
            lo = mid
        else:
            hi = mid
    return build(lo), lo
