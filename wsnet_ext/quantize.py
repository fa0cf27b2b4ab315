"""8-bit (or fewer) condensed filters: the paper's route to ~180x smaller models, weight sampling
combined with weight quantization. After `quantize_condensed`, each WSNet layer stores its condensed
filter as int8 codes with one float32 scale per condensed channel (WSConv1d: per row of (Mc, Lc);
WSConv2d: per condensed row of (Lc, kh, kw); WSLinear: one scale for its vector) and dequantizes it
before the kernel, so the quantized model still runs through wsnet_ext's ops. For deployment and
size: the codes are buffers, not parameters (the condensed filters are frozen from then on)."""

from __future__ import annotations

import torch
from torch import nn

from .channel_sampled import WSConv2d, WSLinear
from .conv1d import WSConv1d

_QUANTIZABLE = (WSConv1d, WSConv2d, WSLinear)


@torch.no_grad()
def quantize_tensor(condensed: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row quantization: (int8 codes, float32 scales) with
    condensed ~= codes * scales, |codes| <= 2^(bits-1) - 1. Rows are the first axis (one scale in
    all for a vector)."""
    levels = 2 ** (bits - 1) - 1
    values = condensed.detach().float()
    rows = values.reshape(values.shape[0], -1) if values.dim() > 1 else values.reshape(1, -1)
    scale = rows.abs().amax(dim=1, keepdim=True) / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale
    codes = torch.round(rows / scale).clamp(-levels, levels).to(torch.int8)
    shape = (values.shape[0],) + (1,) * (values.dim() - 1) if values.dim() > 1 else (1,)
    return codes.reshape(values.shape), scale.reshape(shape)


def quantize_condensed(model: nn.Module, bits: int = 8) -> nn.Module:
    """Stores the condensed filter of every WSConv1d / WSConv2d / WSLinear in `model` as `bits`-bit
    codes (int8 storage) with per-channel float32 scales, in place, and returns the model (the same
    object). `layer.condensed` then reads the dequantized filter; state_dict holds
    `condensed_int8` and `condensed_scale` instead of `condensed` (quantize a fresh model of the
    same architecture before loading such a state_dict into it)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits expects an int in [2, 8], got {bits!r}")
    for layer in model.modules():
        if not isinstance(layer, _QUANTIZABLE) or "condensed_int8" in layer._buffers:
            continue
        condensed = layer._parameters.pop("condensed")
        codes, scale = quantize_tensor(condensed, bits)
        layer.register_buffer("condensed_int8", codes.to(condensed.device))
        layer.register_buffer("condensed_scale", scale.to(condensed.device))
        layer.condensed_dtype = condensed.dtype
        layer.quantized_bits = bits
    return model


def model_bytes(model: nn.Module) -> int:
    """Bytes of everything the model saves (its state_dict): parameters and persistent buffers at
    their storage size (int8 codes count 1 byte each)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())
