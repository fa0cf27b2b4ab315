"""Polyphase split of a strided WSConv1d (CPU): half the integral-image work when stride 2 meets
an even sample stride, as in SoundNet's layers.

With dilation 1, y[n, t] = sum_l sum_j f[j, s*t + l] * condensed[j, n*S + l]. When g divides the
stride s, the sample stride S and the kernel size L, write l = g*a + p (phase p < g): row
s*t + g*a + p is row (s/g)*t + a of the input's phase p (rows = p mod g), and column n*S + g*a + p
is column (S/g)*n + a of the condensed filter's phase p. So the layer is a WSConv1d with g*Mc
condensed channels (the phases side by side), stride s/g, sample stride S/g, kernel L/g over an
input of T/g rows per phase: its inner-product map has Tp/g rows and Lc/g columns per phase,
g*Mc channels, so it holds 1/g of the multiply-adds and 1/g^2 of the entries (DESIGN.md §2's
P, prefix and gather all shrink). The GPU kernels skip the unused lines themselves and the
rearranging copy does not pay on small layers, so this applies on the CPU above MIN_WORK."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# B * Tp * Lc * Mc below which the copy of the input costs more than the work it saves (measured
# on SoundNet's conv3/conv4: 0.05 -> 0.08 ms with the split; conv2 0.70 -> 0.61 ms)
MIN_WORK = 1 << 24


def phase_count(x: torch.Tensor, condensed: torch.Tensor, pads: tuple[int, int], kernel_size: int,
                sample_stride: int, stride: int, dilation: int) -> int:
    """g > 1 when the layer splits into g phases and that pays; 1 otherwise."""
    if x.device.type != "cpu" or dilation != 1:
        return 1
    g = math.gcd(math.gcd(stride, sample_stride), kernel_size)
    work = x.shape[0] * (x.shape[2] + pads[0] + pads[1]) * condensed.shape[0] * condensed.shape[1]
    return g if g > 1 and work >= MIN_WORK else 1


def split_phases(x: torch.Tensor, condensed: torch.Tensor, pads: tuple[int, int], kernel_size: int,
                 stride: int, channel_repeat: int, g: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, condensed) of the equivalent WSConv1d with g phases (module docstring): input
    (B, C*g*Mc, rows) with channel c*g*Mc + p*Mc + j = phase p of channel c*Mc + j, and condensed
    (g*Mc, Lc/g) with row p*Mc + j = condensed[j, p::g]. Only the rows that outputs reach are kept,
    so the split layer has exactly the same output length."""
    batch, in_channels, length = x.shape
    mc, lc = condensed.shape
    out_len = (length + pads[0] + pads[1] - kernel_size) // stride + 1
    rows = (out_len - 1) * (stride // g) + kernel_size // g
    padded = F.pad(x, pads)[..., : g * rows]
    phases = padded.reshape(batch, channel_repeat, mc, rows, g).permute(0, 1, 4, 2, 3)
    split_x = phases.reshape(batch, in_channels * g, rows)
    split_condensed = condensed.reshape(mc, lc // g, g).permute(2, 0, 1).reshape(g * mc, lc // g)
    return split_x, split_condensed
