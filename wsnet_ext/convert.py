"""Model tools: turn the plain layers of a model into WSNet (wsnetify) or HashedNets (hashify)
layers, and back into plain layers for deployment (materialize)."""

from __future__ import annotations

import fnmatch
import math

import torch
from torch import nn

from . import _allocate
from ._geometry import channel_compactness, condensed_length, conv1d_compactness
from .channel_sampled import WSConv2d, WSLinear
from .conv1d import WSConv1d
from .hashed import HashedConv1d, HashedConv2d, HashedLinear
from .summary import forward_with_hooks

WS_TYPES = (WSConv1d, WSConv2d, WSLinear)
HASHED_TYPES = (HashedConv1d, HashedConv2d, HashedLinear)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


POLICIES = ("spatial", "balanced", "channel")
# wsnetify's min_channel_sums=None under an allocation: the first of these floors whose allocation
# reaches the model ratio and compresses no layer more than FLOOR_PUSH_LIMIT times what the
# allocation without a floor gives it (docs/design.md §7, "Channel sums")
CHANNEL_SUMS_FLOORS = (16, 8, 4, 2, 1)
FLOOR_PUSH_LIMIT = 3.0


def channel_repeats(in_channels: int, min_channel_sums: int = 1) -> list[int]:
    """The channel repeats C a layer with `in_channels` inputs may take: the divisors of M that
    leave it at least min(min_channel_sums, M) channel sums. A WSNet layer with repeat C sees only
    M / C sums of its input channels (docs/design.md §2 step 1, the fold), so C caps what it can
    tell its inputs apart by."""
    floor = min(min_channel_sums, in_channels)
    return [c for c in _divisors(in_channels) if in_channels // c >= floor]


def choose_sampling(layer: nn.Module, target: float, close: float = 0.1,
                    policy: str = "spatial", min_channel_sums: int = 1) -> tuple[int, int, float] | None:
    """(sample_stride, channel_repeat, compactness) for a plain Conv1d / Conv2d / Linear.

    Compactness is the product of a spatial factor (how much neighbouring filters overlap in the
    condensed filter: large for a small S) and the channel repeat C (seed eq. 1 with M* = M / C).
    Among the (S, C) within `close` (relative) of `target`, `policy` picks:
      'spatial'  the smallest C, then the S closest to the target: compactness from overlap;
      'channel'  the largest S (least overlap between filters), then the smaller C;
      'balanced' spatial factor and C closest to equal (in log scale), then the smaller C.
    C = M gives every input channel the same weight (the layer only sees their sum), so every
    policy takes C < M where it can. If no (S, C) gets within `close`, the one closest to the
    target in log scale, ties to the smaller C, then S.
    min_channel_sums: only C with M / C >= min(min_channel_sums, M) (see `channel_repeats`)."""
    if policy not in POLICIES:
        raise ValueError(f"policy expects one of {POLICIES}, got {policy!r}")
    if isinstance(layer, nn.Conv1d):
        m, n, length = layer.in_channels, layer.out_channels, layer.kernel_size[0]
        options = {c: [(s, c, conv1d_compactness(m, n, length, s, c)) for s in range(1, length + 1)]
                   for c in channel_repeats(m, min_channel_sums)}
    else:
        m = layer.in_channels if isinstance(layer, nn.Conv2d) else layer.in_features
        n = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        options = {c: [(s, c, channel_compactness(m, n, s, c)) for s in range(1, max(m // c, n) + 1)]
                   for c in channel_repeats(m, min_channel_sums)}
    distance = lambda sck: abs(math.log(sck[2] / target))  # noqa: E731
    if policy == "spatial":
        for c in sorted(options):
            best = min(options[c], key=lambda sck: (distance(sck), sck[0]))
            if abs(best[2] / target - 1) <= close:
                return best
    else:
        near = [sck for group in options.values() for sck in group if abs(sck[2] / target - 1) <= close]
        if m > 1 and any(sck[1] < m for sck in near):
            near = [sck for sck in near if sck[1] < m]
        if near:
            if policy == "channel":
                return min(near, key=lambda sck: (-sck[0], sck[1], distance(sck)))
            imbalance = lambda sck: abs(math.log(sck[2] / sck[1]) - math.log(sck[1]))  # noqa: E731
            return min(near, key=lambda sck: (round(imbalance(sck), 6), sck[1], distance(sck)))
    everything = [sck for group in options.values() for sck in group]
    return min(everything, key=lambda sck: (distance(sck), sck[1], sck[0])) if everything else None


def _unsupported(layer: nn.Module) -> str | None:
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        if layer.groups != 1:
            return f"groups={layer.groups} (only groups=1 is sampled)"
        if layer.padding_mode != "zeros":
            return f"padding_mode={layer.padding_mode!r} (only 'zeros')"
        if isinstance(layer, nn.Conv1d) and isinstance(layer.padding, str) and layer.padding == "same" \
                and layer.stride[0] != 1:
            return "padding='same' with stride > 1"
    return None


def _ws_replacement(layer: nn.Module, s: int, c: int, init: str) -> nn.Module:
    """The WSNet layer for a plain one: fitted to its weight (init='project') or fresh."""
    sampling = {"sample_stride": s, "channel_repeat": c}
    if init == "project":
        if isinstance(layer, nn.Linear):
            return WSLinear.from_linear(layer, **sampling)
        return (WSConv1d if isinstance(layer, nn.Conv1d) else WSConv2d).from_conv(layer, **sampling)
    factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        return WSLinear(layer.in_features, layer.out_features, bias, **factory, **sampling)
    cls = WSConv1d if isinstance(layer, nn.Conv1d) else WSConv2d
    return cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
               layer.dilation, bias=bias, **factory, **sampling)


def _hashed_replacement(layer: nn.Module, compression: float, seed: int) -> nn.Module:
    factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        return HashedLinear(layer.in_features, layer.out_features, bias, **factory,
                            compression=compression, seed=seed)
    cls = HashedConv1d if isinstance(layer, nn.Conv1d) else HashedConv2d
    return cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
               layer.dilation, bias=bias, **factory, compression=compression, seed=seed)


def _replace(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Puts `new` where `name` is; returns the model (`new` itself when name is the root)."""
    if not name:
        return new
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return model


def _excluded(name: str, layer: nn.Module, exclude) -> bool:
    """exclude: module names (exact, or fnmatch patterns such as 'classifier.*'), module types,
    or module objects; a single one of these is taken as a list of one."""
    if isinstance(exclude, (str, type, nn.Module)):
        exclude = (exclude,)
    for item in exclude:
        if isinstance(item, str) and (name == item or fnmatch.fnmatchcase(name, item)):
            return True
        if isinstance(item, type) and isinstance(layer, item):
            return True
        if isinstance(item, nn.Module) and item is layer:
            return True
    return False


def _targets(model: nn.Module, types, exclude, keep_head: bool):
    """(name, layer, reason it is kept or '') for every layer of `types`, in module order; with
    keep_head, the last of them (the classifier head) is kept."""
    found = [(name, layer) for name, layer in model.named_modules() if type(layer) in tuple(types)]
    rows = []
    for k, (name, layer) in enumerate(found):
        reason = ""
        if _excluded(name, layer, exclude):
            reason = "excluded"
        elif keep_head and k == len(found) - 1:
            reason = "classifier head (keep_head=True)"
        rows.append((name, layer, reason))
    return rows


def _row(name: str, layer: nn.Module) -> dict:
    params = sum(p.numel() for p in layer.parameters())
    return {"name": name, "type": type(layer).__name__, "new_type": None, "compression": 1.0,
            "sample_stride": None, "channel_repeat": None, "seed": None,
            "params_before": params, "params_after": params, "reason": ""}


def _finish(model: nn.Module, rows: list, params_before: int, tool: str, allocate: str, verbose: bool,
            report, **whole) -> None:
    params_after = sum(p.numel() for p in model.parameters())
    rows.append({"name": "(whole model)", "type": type(model).__name__, "new_type": None,
                 "compression": params_before / max(params_after, 1), "sample_stride": None,
                 "channel_repeat": None, "seed": None, "params_before": params_before,
                 "params_after": params_after, "reason": "", "allocate": allocate, **whole})
    if verbose:
        print(format_report(rows, tool))
    if report is not None:
        report.extend(rows)


def format_report(rows: list, tool: str = "") -> str:
    """The rows of wsnetify / hashify as a text table, one line per layer and the whole model."""
    lines = []
    for row in rows:
        if row["name"] == "(whole model)":
            lines.append(f"{tool}: whole model {row['params_before']:,} -> {row['params_after']:,} "
                         f"parameters ({row['compression']:.2f}x smaller, allocate={row.get('allocate')!r}"
                         + (f", min_channel_sums={row['min_channel_sums']}" if row.get("min_channel_sums") else "") + ")")
        elif row["new_type"] is None:
            lines.append(f"{tool}: {row['name']} {row['type']} kept: {row['reason']}")
        else:
            how = (f"S={row['sample_stride']}, C={row['channel_repeat']}" if row["seed"] is None
                   else f"seed={row['seed']}")
            lines.append(f"{tool}: {row['name']} {row['type']} -> {row['new_type']} ({how}), "
                         f"{row['params_before']:,} -> {row['params_after']:,} parameters, "
                         f"compression {row['compression']:.2f}")
    return "\n".join(lines)


def _resolve_allocate(allocate: str | None, example_input) -> str:
    """The allocation wsnetify / hashify use: `allocate`, or by default 'by_params_fast' when
    `example_input` is given (it needs one; docs/design.md §7 has the evidence) and 'uniform' when
    not."""
    if allocate is None:
        return "by_params_fast" if example_input is not None else "uniform"
    if allocate not in _allocate.ALLOCATIONS:
        raise ValueError(f"allocate expects one of {_allocate.ALLOCATIONS} or None, got {allocate!r}")
    return allocate


def _ws_candidates(layer: nn.Module, policy: str, min_channel_sums: int = 1) -> list:
    """The layer kept plain, and each (S, C) that choose_sampling picks for ratios 1.1, 1.21, ...
    up to the layer's largest (so the policy's preferences hold: spatial sampling before channel
    repeats under 'spatial')."""
    weight = layer.weight.numel()
    largest = choose_sampling(layer, 1e12, policy=policy, min_channel_sums=min_channel_sums)[2]
    found = {}
    for target in _allocate.geometric_targets(largest):
        s, c, achieved = choose_sampling(layer, target, policy=policy, min_channel_sums=min_channel_sums)
        found.setdefault((s, c), _allocate.Candidate(round(weight / achieved), achieved, (s, c)))
    return [_allocate.plain(weight)] + list(found.values())


def _hashed_candidates(layer: nn.Module) -> list:
    weight = layer.weight.numel()
    return [_allocate.plain(weight)] + [
        _allocate.Candidate(math.ceil(weight / c), weight / math.ceil(weight / c), c)
        for c in _allocate.geometric_targets(min(float(weight), 4096.0), 1.15)]


@torch.no_grad()
def multiply_adds(model: nn.Module, layers: list, example_input) -> list[int]:
    """The plain multiply-adds of each of `layers` (modules of `model`) on one forward of
    `example_input` in eval mode (no running statistics change): its weight's size times the
    output positions each output channel has."""
    counts = {}
    forward_with_hooks(model, example_input, [(id(layer), layer) for layer in layers],
                       lambda key, module, inputs, out: counts.__setitem__(key, out.numel() // module.weight.shape[0]))
    return [layer.weight.numel() * counts.get(id(layer), 0) for layer in layers]


def ws_conv1d_work(layer: nn.Conv1d, s: int, c: int) -> float:
    """Relative CPU time of a Conv1d layer as WSConv1d(S=s, C=c), per input row: Lc * Mc
    multiply-adds (docs/design.md §2 "Cost"), 1/g of them where the polyphase split applies
    (g = gcd(stride, S, L), dilation 1), times the stride left after it, s/g: measured at batch 1,
    SoundNet's conv1 at S = 3 (9.4x, no split) took 2.9-5.0 ms and at S = 18 (3.1x, split in 2)
    2.4-2.6 ms, at S = 17 7.7 ms (docs/audio.md)."""
    (length,), (stride,), (dilation,) = layer.kernel_size, layer.stride, layer.dilation
    g = math.gcd(math.gcd(stride, s), length) if dilation == 1 else 1
    return condensed_length(length, layer.out_channels, s) * (layer.in_channels // c) * stride / (g * g)


def _heavy(model: nn.Module, eligible: list, allocate: str, example_input) -> set:
    """by_params_fast's heavy layers (indices into `eligible`) on one forward of `example_input`;
    none for the other allocations."""
    if allocate != "by_params_fast":
        return set()
    return _allocate.heavy_layers(multiply_adds(model, [layer for _, layer in eligible], example_input))


def _allocated(model: nn.Module, eligible: list, ratio: float, candidates_of, heavy: set,
               floor_of, work_of=None) -> tuple[dict, bool]:
    """{layer name: Candidate} reaching `ratio` = the whole model's parameters before / after
    (allocate='by_params' or 'by_params_fast', wsnet_ext/_allocate.py); eligible: (name, layer)
    pairs; heavy: indices of the layers floored by floor_of(layer, candidates) (`_heavy`); work_of(layer):
    a candidate's CPU work, or None where it is not modelled (then the heavy layer may take any
    candidate above the floor; else none that needs more work than the floor). Also returns whether
    the choice fits the budget (else every layer took its smallest candidate)."""
    total = sum(p.numel() for p in model.parameters())
    fixed = total - sum(layer.weight.numel() for _, layer in eligible)
    candidates = [candidates_of(layer) for _, layer in eligible]
    candidates = [_allocate.at_least(c, floor_of(layer, c), work_of(layer) if work_of else None) if k in heavy else c
                  for k, ((_, layer), c) in enumerate(zip(eligible, candidates))]
    chosen = _allocate.allocate(candidates, fixed, total / ratio)
    reached = fixed + sum(c.params for c in chosen) <= total / ratio
    return {name: candidate for (name, _), candidate in zip(eligible, chosen)}, reached


def _pushes_within(allocated: dict, unfloored: dict, limit: float) -> bool:
    """Whether no layer of `allocated` is compressed more than `limit` times its ratio in
    `unfloored` (both {name: Candidate}): a floor on the channel sums that the ratio can reach only
    by squeezing the layers it spares (MNIST-1D's classifier at 10x: 4.2x -> 17.1x) is not taken."""
    return all(allocated[name].ratio <= limit * unfloored[name].ratio for name in allocated)


def _heavy_ratio(allocate: str, heavy_compactness, compactness: float) -> float:
    """The compression by_params_fast's heavy layers keep at least: `heavy_compactness`, by default
    sqrt(compactness) (docs/design.md §7: on SoundNet at 10x, conv1-conv2 at 3x lost none of
    plain's accuracy and little speed; at 10x they lost 7 points)."""
    if heavy_compactness is None:
        return math.sqrt(compactness)
    if allocate != "by_params_fast":
        raise ValueError(f"heavy_compactness applies to allocate='by_params_fast' (the default when example_input "
                         f"is given), got allocate={allocate!r}")
    if isinstance(heavy_compactness, bool) or not (isinstance(heavy_compactness, (int, float)) and heavy_compactness >= 1):
        raise ValueError(f"heavy_compactness expects a number >= 1, got {heavy_compactness!r}")
    return heavy_compactness


def _check_example_input(allocate: str, example_input) -> None:
    if allocate == "by_params_fast" and not isinstance(example_input, torch.Tensor):
        raise ValueError("example_input expects a tensor the model runs on (allocate='by_params_fast' counts "
                         f"each layer's multiply-adds on it), got {type(example_input).__name__}")


def wsnetify(model: nn.Module, compactness: float, *, init: str | None = None,
             types=(nn.Conv1d, nn.Conv2d, nn.Linear), exclude=(), keep_head: bool = True,
             tolerance: float = 0.5, policy: str = "spatial", allocate: str | None = None,
             example_input=None, heavy_compactness: float | None = None, min_channel_sums: int | None = None,
             verbose: bool = False, report: list | None = None) -> nn.Module:
    """Replaces the plain layers of `model` by WSNet layers whose compactness is as close as S and C
    allow to `compactness`, in place, and returns the model (the same object; a model that is
    itself one plain layer comes back as its replacement).

    init (required): 'project' for a trained model (each condensed filter is the least-squares fit
    of the layer's weight, the bias is copied), 'random' for a fresh one (initialised like the
    plain layers; projecting random weights would average them and shrink the sampled weights).
    keep_head (default True): the last Conv/Linear layer of the model (in module order), usually
    the classifier, stays plain. exclude: names (exact or fnmatch patterns), types or module
    objects to keep plain. A layer is also kept when its closest compactness is off by more than
    `tolerance` (relative) or it has options WSNet layers don't sample (groups, padding modes).
    policy: how each layer's compactness is split between filter overlap (sample_stride) and
    channel repeats ('spatial', 'balanced', 'channel'; see `choose_sampling`).
    allocate: 'uniform' gives every layer `compactness`. 'by_params' makes `compactness` the whole
    model's ratio (all its parameters before / after, heads, biases and norms included). Each
    layer's ratio then grows with its size: small layers stay plain, big ones take more
    (wsnet_ext/_allocate.py; `tolerance` is not used). 'by_params_fast' does the same, but the
    layers doing most of the multiply-adds on `example_input` (required then) keep at least the
    compression the uniform rule gives for `heavy_compactness` (default sqrt(compactness)), so the
    model stays fast; a higher floor is faster and, on SoundNet, less accurate. The default (None)
    is 'by_params_fast' when `example_input` is given, else 'uniform': at equal model size it was
    as accurate or more on every model measured (docs/design.md §7), and it reaches the ratio asked
    for. min_channel_sums: no layer takes a channel repeat C that leaves it fewer than
    min(min_channel_sums, M) sums of its M input channels (with repeat C a layer sees only M / C
    sums of its inputs); under an allocation the budget then goes to the other layers. By default
    (None) 1 under 'uniform', and under an allocation the largest of 16, 8, 4, 2, 1 with which the
    model ratio is still reached and no layer is compressed more than 3x what it gets without a
    floor: at equal size as accurate or more on SoundNet and MNIST-1D (docs/design.md §7).
    verbose prints what happened; `report`, if a list, receives one dict per layer (name, type,
    new_type, compression, sample_stride, channel_repeat, seed, params_before, params_after,
    reason) and a last one for the whole model; hashify reports the same way."""
    if isinstance(compactness, bool) or not (isinstance(compactness, (int, float)) and compactness >= 1):
        raise ValueError(f"compactness expects a number >= 1, got {compactness!r}")
    if init not in ("project", "random"):
        raise ValueError(f"init expects 'project' (a trained model: fit the condensed filters to its "
                         f"weights) or 'random' (a fresh model: initialise like the plain layers), got {init!r}")
    if policy not in POLICIES:
        raise ValueError(f"policy expects one of {POLICIES}, got {policy!r}")
    if min_channel_sums is not None and (isinstance(min_channel_sums, bool) or not isinstance(min_channel_sums, int)
                                         or min_channel_sums < 1):
        raise ValueError(f"min_channel_sums expects an int >= 1 or None, got {min_channel_sums!r}")
    allocate = _resolve_allocate(allocate, example_input)
    _check_example_input(allocate, example_input)
    heavy = _heavy_ratio(allocate, heavy_compactness, compactness)
    rows, params_before = [], sum(p.numel() for p in model.parameters())
    targets = [(name, layer, reason or _unsupported(layer)) for name, layer, reason in
               _targets(model, types, exclude, keep_head)]
    allocated = None
    sums = min_channel_sums if min_channel_sums is not None else 1  # the floor used ('uniform': as given)
    if allocate != "uniform":
        def work_of(layer):  # modelled for Conv1d only (the CPU kernels' polyphase split)
            return (lambda cand: ws_conv1d_work(layer, *cand.choice)) if isinstance(layer, nn.Conv1d) else None

        def floor_of(sums):
            def floor(layer, candidates):  # the least work near `heavy`, else the uniform rule's choice
                work = work_of(layer)
                cheap = _allocate.cheapest_near(candidates, heavy, work) if work else None
                if cheap is not None:
                    return cheap
                s, c, achieved = choose_sampling(layer, heavy, policy=policy, min_channel_sums=sums)
                return _allocate.Candidate(round(layer.weight.numel() / achieved), achieved, (s, c))
            return floor
        eligible = [(n, layer) for n, layer, reason in targets if not reason]
        heavy_layers = _heavy(model, eligible, allocate, example_input)  # one forward, whatever the floor
        def allocation(sums):
            return _allocated(model, eligible, compactness, lambda layer: _ws_candidates(layer, policy, sums),
                              heavy_layers, floor_of(sums), work_of)
        if min_channel_sums is not None:
            allocated, _ = allocation(min_channel_sums)
        else:
            unfloored, _ = allocation(1)
            for sums in CHANNEL_SUMS_FLOORS:  # the largest floor that reaches the ratio without pushing
                allocated, reached = allocation(sums) if sums > 1 else (unfloored, True)
                if sums == 1 or (reached and _pushes_within(allocated, unfloored, FLOOR_PUSH_LIMIT)):
                    break
    for name, layer, reason in targets:
        row = _row(name, layer)
        if allocated is not None and not reason:
            picked = allocated[name]
            choice = (*picked.choice, picked.ratio) if picked.choice is not None else None
            reason = "" if choice else "kept plain by the allocation (the budget is spent on larger layers)"
        else:
            choice = None if reason else choose_sampling(layer, compactness, policy=policy, min_channel_sums=sums)
        if choice is None or (allocated is None and abs(choice[2] / compactness - 1) > tolerance):
            row["reason"] = reason or (f"closest compactness {choice[2]:.2f} is off target" if choice else "no choice")
            rows.append(row)
            continue
        s, c, achieved = choice
        new = _ws_replacement(layer, s, c, init)
        model = _replace(model, name, new)
        row.update(new_type=type(new).__name__, sample_stride=s, channel_repeat=c, compression=achieved,
                   params_after=sum(p.numel() for p in new.parameters()))
        rows.append(row)
    _finish(model, rows, params_before, "wsnetify", allocate, verbose, report, min_channel_sums=sums)
    return model


def hashify(model: nn.Module, compression: float, *, types=(nn.Conv1d, nn.Conv2d, nn.Linear),
            exclude=(), keep_head: bool = True, seed: int = 0, allocate: str | None = None,
            example_input=None, heavy_compactness: float | None = None, verbose: bool = False,
            report: list | None = None) -> nn.Module:
    """Replaces the plain layers of `model` by HashedNets layers of `compression` (freshly
    initialised; the k-th layer of `types` hashes with seed + k), in place, and returns the model.
    keep_head, exclude, allocate, example_input, heavy_compactness, verbose and report work as in wsnetify (allocate='by_params':
    `compression` is the whole model's ratio, spent by layer size as for WSNet, so the two compare
    at equal budgets)."""
    if isinstance(compression, bool) or not (isinstance(compression, (int, float)) and compression >= 1):
        raise ValueError(f"compression expects a number >= 1, got {compression!r}")
    allocate = _resolve_allocate(allocate, example_input)
    _check_example_input(allocate, example_input)
    heavy = _heavy_ratio(allocate, heavy_compactness, compression)
    rows, params_before = [], sum(p.numel() for p in model.parameters())
    targets = [(name, layer, reason or _unsupported(layer)) for name, layer, reason in
               _targets(model, types, exclude, keep_head)]
    allocated = None
    if allocate != "uniform":
        def floor_of(layer, candidates):
            held = math.ceil(layer.weight.numel() / heavy)
            return _allocate.Candidate(held, layer.weight.numel() / held, heavy)
        eligible = [(n, layer) for n, layer, reason in targets if not reason]
        allocated, _ = _allocated(model, eligible, compression, _hashed_candidates,
                                  _heavy(model, eligible, allocate, example_input), floor_of)
    for k, (name, layer, reason) in enumerate(targets):
        row = _row(name, layer)
        layer_compression = compression
        if allocated is not None and not reason:
            layer_compression = allocated[name].choice
            reason = "" if layer_compression else "kept plain by the allocation (the budget is spent on larger layers)"
        if reason:
            row["reason"] = reason
            rows.append(row)
            continue
        new = _hashed_replacement(layer, layer_compression, seed + k)
        model = _replace(model, name, new)
        row.update(new_type=type(new).__name__, compression=new.compression, seed=seed + k,
                   params_after=sum(p.numel() for p in new.parameters()))
        rows.append(row)
    _finish(model, rows, params_before, "hashify", allocate, verbose, report, min_channel_sums=None)
    return model


@torch.no_grad()
def materialize(model: nn.Module) -> nn.Module:
    """Replaces every WSNet and HashedNets layer of `model` by the plain layer with its sampled
    (virtual) weight, in place, and returns the model (the same object; a model that is itself one
    such layer comes back as its plain layer). For deployment: outputs are unchanged, and the model
    exports with torch.export / torch.onnx.export without wsnet_ext. Copy first
    (copy.deepcopy(model)) to keep the compact model."""
    for name, layer in list(model.named_modules()):
        if isinstance(layer, WS_TYPES + HASHED_TYPES):
            model = _replace(model, name, _plain_of(layer))
    return model


def _plain_of(layer: nn.Module) -> nn.Module:
    weight = layer.weight.detach().clone()
    factory = {"device": weight.device, "dtype": weight.dtype}
    bias = layer.bias is not None
    if isinstance(layer, (WSLinear, HashedLinear)):
        plain = nn.Linear(weight.shape[1], weight.shape[0], bias, **factory)
    else:
        conv = nn.Conv1d if weight.dim() == 3 else nn.Conv2d
        plain = conv(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), layer.stride, layer.padding,
                     layer.dilation, bias=bias, **factory)
    plain.weight.copy_(weight)
    if bias:
        plain.bias.copy_(layer.bias)
    return plain
