"""wsnet_ext.summary: per-layer and total parameters of a model next to the plain layers they
stand for, compactness, and with an example input each layer's multiply-adds next to the plain
layer's (WSConv1d: the integral image's, docs/design.md §2 "Cost"; the other layers run a plain
op on their sampled or hashed weight, so as many as plain)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ._geometry import conv_out_length
from .channel_sampled import WSConv2d, WSLinear
from .conv1d import WSConv1d
from .hashed import HashedConv1d, HashedConv2d, HashedLinear

_LAYERS = (WSConv1d, WSConv2d, WSLinear, HashedConv1d, HashedConv2d, HashedLinear, nn.Conv1d, nn.Conv2d, nn.Linear)


@dataclass
class LayerSummary:
    name: str
    type: str
    params: int              # parameters the layer holds
    plain_params: int        # parameters of the plain layer it stands for (weight + bias)
    compactness: float       # plain weight / held weight parameters (biases not counted)
    length: int | None = None        # WSConv1d: input length seen
    macs: int | None = None          # multiply-adds per sample (WSConv1d: integral image, steps 1-2)
    plain_macs: int | None = None    # multiply-adds per sample of the plain layer
    speedup: float | None = None     # plain_macs / macs


@dataclass
class ModelSummary:
    layers: list[LayerSummary]
    total_params: int        # every parameter of the model
    total_plain_params: int  # ... had each summarized layer been plain
    other_params: int = field(default=0)  # parameters outside the summarized layers

    @property
    def compactness(self) -> float:
        return self.total_plain_params / max(1, self.total_params)

    @property
    def macs(self) -> int | None:
        """Multiply-adds per sample of the summarized layers (None without an example input)."""
        return sum(r.macs for r in self.layers) if self.layers and all(r.macs is not None for r in self.layers) else None

    @property
    def plain_macs(self) -> int | None:
        """... had each been plain."""
        return (sum(r.plain_macs for r in self.layers)
                if self.layers and all(r.plain_macs is not None for r in self.layers) else None)

    def __str__(self) -> str:
        head = f"{'layer':<28} {'type':<13} {'params':>10} {'plain':>10} {'compact':>8} {'T':>7} {'MACs':>10} {'plain MACs':>11} {'speed-up':>8}"
        lines = [head, "-" * len(head)]
        for r in self.layers:
            extra = (f"{r.length or '':>7} {r.macs:>10} {r.plain_macs:>11} {r.speedup:>8.2f}" if r.macs is not None
                     else f"{'':>7} {'':>10} {'':>11} {'':>8}")
            lines.append(f"{r.name:<28} {r.type:<13} {r.params:>10} {r.plain_params:>10} {r.compactness:>8.2f} {extra}")
        lines.append("-" * len(head))
        macs = (f" {'':>7} {self.macs:>10} {self.plain_macs:>11} {self.plain_macs / max(1, self.macs):>8.2f}"
                if self.macs is not None else "")
        lines.append(f"{'total':<28} {'':<13} {self.total_params:>10} {self.total_plain_params:>10} {self.compactness:>8.2f}"
                     f"{macs}   (other parameters: {self.other_params})")
        return "\n".join(lines)


def _plain_out_channels(layer: nn.Module) -> int:
    """The output channels (features) of the plain layer `layer` stands for."""
    if isinstance(layer, (HashedConv1d, HashedConv2d, HashedLinear)):
        return layer.virtual_shape[0]
    return layer.out_features if isinstance(layer, (nn.Linear, WSLinear)) else layer.out_channels


def _plain_counts(layer: nn.Module) -> tuple[int, int]:
    """(plain weight numel, held weight numel)."""
    if isinstance(layer, (WSConv1d, WSConv2d, WSLinear)):
        return layer.weight.numel(), layer.condensed.numel()
    if isinstance(layer, (HashedConv1d, HashedConv2d, HashedLinear)):
        return math.prod(layer.virtual_shape), layer.real_weight.numel()
    return layer.weight.numel(), layer.weight.numel()


@torch.no_grad()
def forward_with_hooks(model: nn.Module, example_input, layers: list, record) -> None:
    """One forward of `example_input` in eval mode (running statistics stay), calling
    record(key, module, inputs, output) after each of `layers` ((key, module) pairs); the
    modules' training flags are restored afterwards."""
    hooks = [layer.register_forward_hook(lambda mod, inputs, out, key=key: record(key, mod, inputs, out))
             for key, layer in layers]
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()(example_input)
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes:
            module.training = training


@torch.no_grad()
def summary(model: nn.Module, example_input: torch.Tensor | None = None) -> ModelSummary:
    """Summarize the WSNet, HashedNets and plain Conv/Linear layers of `model`. With
    `example_input`, one forward pass (in eval mode: running statistics stay) records each layer's
    output size and each WSConv1d's input length, for the multiply-adds per sample of the batch.
    print(summary(...)) gives a table."""
    lengths: dict[str, int] = {}
    positions: dict[str, int] = {}  # outputs per sample of each layer
    if example_input is not None:
        batch = max(1, example_input.shape[0])
        named = [(name, layer) for name, layer in model.named_modules() if isinstance(layer, _LAYERS)]

        def record(key, mod, inputs, out):
            positions[key] = out.numel() // batch
            if isinstance(mod, WSConv1d):
                lengths[key] = inputs[0].shape[-1]
        forward_with_hooks(model, example_input, named, record)
    rows = []
    counted = set()
    for name, layer in model.named_modules():
        if not isinstance(layer, _LAYERS):
            continue
        plain_weight, held_weight = _plain_counts(layer)
        bias = layer.bias.numel() if getattr(layer, "bias", None) is not None else 0
        params = sum(p.numel() for p in layer.parameters(recurse=False))
        if "condensed_int8" in layer._buffers:  # quantize_condensed: the condensed filter's codes
            params += layer._buffers["condensed_int8"].numel()
        counted.update(id(p) for p in layer.parameters(recurse=False))
        row = LayerSummary(name, type(layer).__name__, params, plain_weight + bias, plain_weight / held_weight)
        if name in positions:  # output positions x one output's weights
            row.plain_macs = row.macs = positions[name] * plain_weight // _plain_out_channels(layer)
            row.speedup = 1.0
        if isinstance(layer, WSConv1d) and name in lengths:
            t = lengths[name]
            (k,), (d,), (s,) = layer.kernel_size, layer.dilation, layer.stride
            pads = (d * (k - 1) if layer.padding == "same"
                    else 0 if layer.padding == "valid" else 2 * layer.padding[0])
            out_len = conv_out_length(t, pads, d, k, s)
            row.length = t
            # the CPU kernels' polyphase split (g = gcd(s, S, L), dilation 1) runs 1/g of them
            phases = math.gcd(math.gcd(s, layer.sample_stride), k) if d == 1 else 1
            row.macs = (t + pads) * layer.condensed.shape[1] * layer.condensed.shape[0] // phases
            row.plain_macs = out_len * layer.out_channels * layer.in_channels * k
            row.speedup = row.plain_macs / row.macs
        rows.append(row)
    total = sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.named_buffers() if name.endswith("condensed_int8"))
    other = sum(p.numel() for p in model.parameters() if id(p) not in counted)
    return ModelSummary(rows, total, sum(r.plain_params for r in rows) + other, other)
