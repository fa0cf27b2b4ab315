"""Model tools: turn the plain layers of a model into WSNet (wsnetify) or HashedNets (hashify)
layers, and back into plain layers for deployment (materialize)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._geometry import channel_compactness, conv1d_compactness
from .channel_sampled import WSConv2d, WSLinear
from .conv1d import WSConv1d
from .functional import sample_channels, sample_conv1d_weight
from .hashed import HashedConv1d, HashedConv2d, HashedLinear

WS_TYPES = (WSConv1d, WSConv2d, WSLinear)
HASHED_TYPES = (HashedConv1d, HashedConv2d, HashedLinear)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def choose_sampling(layer: nn.Module, target: float, close: float = 0.1) -> tuple[int, int, float] | None:
    """(sample_stride, channel_repeat, compactness) for a plain Conv1d / Conv2d / Linear.

    Channel repeats make input channels share identical weights (C = M gives every input the
    same weight: the layer only sees their sum), so the smallest C that gets within `close`
    (relative) of `target` wins, with the S closest to the target; if no C gets that close, the
    (S, C) closest to the target in log scale, ties to the smaller C, then S."""
    if isinstance(layer, nn.Conv1d):
        m, n, length = layer.in_channels, layer.out_channels, layer.kernel_size[0]
        options = {c: [(s, c, conv1d_compactness(m, n, length, s, c)) for s in range(1, length + 1)]
                   for c in _divisors(m)}
    else:
        m = layer.in_channels if isinstance(layer, nn.Conv2d) else layer.in_features
        n = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        options = {c: [(s, c, channel_compactness(m, n, s, c)) for s in range(1, max(m // c, n) + 1)]
                   for c in _divisors(m)}
    distance = lambda sck: abs(math.log(sck[2] / target))  # noqa: E731
    for c in sorted(options):
        best = min(options[c], key=lambda sck: (distance(sck), sck[0]))
        if abs(best[2] / target - 1) <= close:
            return best
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


@torch.no_grad()
def _project(condensed: torch.Tensor, sample, weight: torch.Tensor) -> None:
    """Least-squares fit of the condensed filter to a plain weight: each condensed entry becomes
    the mean of the plain-weight entries sampled from it (every sampled entry reads one)."""
    with torch.enable_grad():
        probe = torch.zeros_like(condensed, requires_grad=True)
        sums, = torch.autograd.grad(sample(probe), probe, weight)
        counts, = torch.autograd.grad(sample(probe), probe, torch.ones_like(weight))
    condensed.copy_(torch.where(counts > 0, sums / counts.clamp(min=1), torch.zeros_like(sums)))


def _ws_replacement(layer: nn.Module, s: int, c: int) -> nn.Module:
    factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    bias = layer.bias is not None
    if isinstance(layer, nn.Conv1d):
        new = WSConv1d(layer.in_channels, layer.out_channels, layer.kernel_size[0], s, c, layer.stride[0],
                       layer.padding if isinstance(layer.padding, str) else layer.padding[0],
                       layer.dilation[0], bias, **factory)
        sample = lambda cond: sample_conv1d_weight(cond, new.out_channels, new.kernel_size, s, c)  # noqa: E731
    elif isinstance(layer, nn.Conv2d):
        new = WSConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, s, c, layer.stride,
                       layer.padding, layer.dilation, bias, **factory)
        sample = lambda cond: sample_channels(cond, new.out_channels, s, c)  # noqa: E731
    else:
        new = WSLinear(layer.in_features, layer.out_features, s, c, bias, **factory)
        sample = lambda cond: sample_channels(cond, new.out_channels, s, c)  # noqa: E731
    return new, sample


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def wsnetify(model: nn.Module, compactness: float, *, types=(nn.Conv1d, nn.Conv2d, nn.Linear),
             exclude=(), tolerance: float = 0.5, init: str = "project", verbose: bool = False) -> list[dict]:
    """Replace, in place, the plain layers of `model` by WSNet layers whose compactness is as close
    as S and C allow to `compactness`. A layer is skipped (and reported) when its closest choice
    is off by more than `tolerance` (relative), or it has options WSNet layers don't sample.
    init='project' fits each condensed filter to the layer's current weight (least squares) and
    copies the bias; init='random' keeps the fresh initialisation. Returns one row per layer
    considered: name, old type, new type or None, S, C, achieved compactness, reason."""
    if not (isinstance(compactness, (int, float)) and compactness >= 1):
        raise ValueError(f"compactness expects a number >= 1, got {compactness!r}")
    if init not in ("project", "random"):
        raise ValueError(f"init expects 'project' or 'random', got {init!r}")
    report = []
    targets = [(name, mod) for name, mod in model.named_modules()
               if type(mod) in types and name not in exclude]
    for name, layer in targets:
        row = {"name": name, "type": type(layer).__name__, "new_type": None, "sample_stride": None,
               "channel_repeat": None, "compactness": 1.0, "reason": ""}
        reason = _unsupported(layer)
        choice = None if reason else choose_sampling(layer, compactness)
        if choice is None or abs(choice[2] / compactness - 1) > tolerance:
            row["reason"] = reason or (f"closest compactness {choice[2]:.2f} is off target" if choice else "no choice")
            report.append(row)
            continue
        s, c, achieved = choice
        new, sample = _ws_replacement(layer, s, c)
        if init == "project":
            _project(new.condensed, sample, layer.weight.detach())
            if layer.bias is not None:
                with torch.no_grad():
                    new.bias.copy_(layer.bias)
        _replace(model, name, new)
        row.update(new_type=type(new).__name__, sample_stride=s, channel_repeat=c, compactness=achieved)
        report.append(row)
    if verbose:
        for row in report:
            what = (f"-> {row['new_type']} (S={row['sample_stride']}, C={row['channel_repeat']}, "
                    f"compactness {row['compactness']:.2f})" if row["new_type"] else f"kept: {row['reason']}")
            print(f"wsnetify: {row['name']} {row['type']} {what}")
    return report


def hashify(model: nn.Module, compression: float, *, types=(nn.Conv1d, nn.Conv2d, nn.Linear),
            exclude=(), seed: int = 0) -> list[dict]:
    """Replace, in place, the plain layers of `model` by HashedNets layers of `compression`
    (freshly initialised; layer k hashes with seed + k). Returns one row per layer."""
    report = []
    targets = [(name, mod) for name, mod in model.named_modules() if type(mod) in types and name not in exclude]
    for k, (name, layer) in enumerate(targets):
        factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
        bias = layer.bias is not None
        reason = _unsupported(layer)
        if reason:
            report.append({"name": name, "type": type(layer).__name__, "new_type": None, "reason": reason})
            continue
        if isinstance(layer, nn.Linear):
            new = HashedLinear(layer.in_features, layer.out_features, compression, bias, seed + k, **factory)
        else:
            cls = HashedConv1d if isinstance(layer, nn.Conv1d) else HashedConv2d
            new = cls(layer.in_channels, layer.out_channels, layer.kernel_size, compression, layer.stride,
                      layer.padding, bias, seed + k, dilation=layer.dilation, **factory)
        _replace(model, name, new)
        report.append({"name": name, "type": type(layer).__name__, "new_type": type(new).__name__,
                       "compression": new.compression, "reason": ""})
    return report


@torch.no_grad()
def materialize(model: nn.Module) -> nn.Module:
    """Replace, in place, every WSNet and HashedNets layer by the plain layer with its sampled
    (virtual) weight, for deployment: outputs are unchanged, and the model exports with
    torch.export / torch.onnx.export without wsnet_ext. Returns the model."""
    if isinstance(model, WS_TYPES + HASHED_TYPES):
        return _plain_of(model)
    for name, layer in list(model.named_modules()):
        if name and isinstance(layer, WS_TYPES + HASHED_TYPES):
            _replace(model, name, _plain_of(layer))
    return model


def _plain_of(layer: nn.Module) -> nn.Module:
    weight = layer.weight.detach().clone()
    factory = {"device": weight.device, "dtype": weight.dtype}
    bias = layer.bias is not None
    if isinstance(layer, (WSLinear, HashedLinear)):
        plain = nn.Linear(weight.shape[1], weight.shape[0], bias, **factory)
    else:
        conv = nn.Conv1d if weight.dim() == 3 else nn.Conv2d
        padding = layer.padding
        if isinstance(layer, WSConv1d) and not isinstance(padding, str):
            padding = (padding,)
        plain = conv(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), layer.stride, padding,
                     layer.dilation, bias=bias, **factory)
    plain.weight.copy_(weight)
    if bias:
        plain.bias.copy_(layer.bias)
    return plain
