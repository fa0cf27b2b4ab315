"""Spending a model's parameter budget across its layers (wsnetify / hashify, allocate=...;
docs/design.md §7).

'uniform' gives every layer the same ratio. 'by_params' reaches a model-level ratio and spends the
budget where the parameters are. It chooses one candidate per layer (kept plain, or one way to
compress it) to minimise sum_i log(ratio_i) subject to the model's total parameters <= budget.
Every layer counts the same, and a layer's loss grows with the log of its ratio.

The continuous optimum is ratio_i = lam * params_i (d/dr [log r + lam * p / r] = 0): a layer's
ratio is proportional to its size. Small layers come out below 1 and stay plain; the big ones
carry the compression. The discrete problem is solved by Lagrangian relaxation. For a multiplier
lam each layer takes its candidate minimising log(ratio) + lam * params, and lam is bisected to
the smallest value whose total fits the budget. The result is Pareto-optimal: no other choice of
candidates has fewer (or equal) parameters and a smaller sum of log-ratios."""

from __future__ import annotations

import dataclasses
import math

ALLOCATIONS = ("uniform", "by_params", "by_params_fast")
HEAVY_SHARE = 0.75  # by_params_fast: the share of multiply-adds whose layers keep the uniform ratio


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One way to store a layer's weight: `params` parameters, `ratio` = plain params / params;
    `choice` is what builds it ((S, C) for WSNet, a compression for HashNet; None: kept plain)."""
    params: int
    ratio: float
    choice: object = None


def plain(weight_params: int) -> Candidate:
    return Candidate(weight_params, 1.0, None)


def _pick(candidates: list[Candidate], lam: float) -> Candidate:
    return min(candidates, key=lambda c: (math.log(c.ratio) + lam * c.params, c.params))


def allocate(layers: list[list[Candidate]], fixed_params: int, budget: float) -> list[Candidate]:
    """One candidate per layer (each list holds the layer's plain candidate) with
    fixed_params + sum(params) <= budget where any choice reaches it, minimising the sum of
    log-ratios (see the module's docstring); where no choice reaches the budget, each layer's
    smallest candidate."""
    def total(lam):
        return fixed_params + sum(_pick(c, lam).params for c in layers)
    smallest = [min(c, key=lambda k: (k.params, -k.ratio)) for c in layers]
    if not layers or fixed_params + sum(c.params for c in smallest) > budget:
        return smallest
    if total(0.0) <= budget:
        return [_pick(c, 0.0) for c in layers]
    lo, hi = 0.0, 1.0
    while total(hi) > budget:  # grows until the smallest candidates are taken
        hi *= 4.0
        if hi > 1e12:
            return smallest
    for _ in range(200):  # total(lo) > budget >= total(hi)
        mid = (lo + hi) / 2 if lo == 0.0 else math.sqrt(lo * hi)
        if mid in (lo, hi):
            break
        if total(mid) > budget:
            lo = mid
        else:
            hi = mid
    return [_pick(c, hi) for c in layers]


def heavy_layers(multiply_adds: list[int], share: float = HEAVY_SHARE) -> set[int]:
    """Indices of the fewest layers, largest first, whose multiply-adds reach `share` of the total
    (ties to the earlier layer)."""
    order = sorted(range(len(multiply_adds)), key=lambda i: (-multiply_adds[i], i))
    total, held, picked = sum(multiply_adds), 0, set()
    for i in order:
        if total == 0 or held >= share * total:
            break
        picked.add(i)
        held += multiply_adds[i]
    return picked


def at_least(candidates: list[Candidate], floor: Candidate, work=None) -> list[Candidate]:
    """`floor` and the candidates that compress at least as much (and, given `work`, a function of
    a candidate, need no more work than the floor)."""
    return [floor] + [c for c in candidates if c.ratio >= floor.ratio and c != floor
                      and (work is None or work(c) <= work(floor))]


def cheapest_near(candidates: list[Candidate], ratio: float, work, within: float = 1.15) -> Candidate | None:
    """The candidate needing the least `work` among those within a factor `within` of `ratio`
    (ties: the closest ratio); None if there is none."""
    near = [c for c in candidates if c.choice is not None and abs(math.log(c.ratio / ratio)) <= math.log(within)]
    return min(near, key=lambda c: (work(c), abs(math.log(c.ratio / ratio)))) if near else None


def geometric_targets(largest: float, step: float = 1.1) -> list[float]:
    """Ratios 1, step, step^2, ... up to `largest`: the targets whose nearest choices make a layer's
    candidates."""
    out, value = [], step
    while value <= largest * step:
        out.append(value)
        value *= step
    return out
