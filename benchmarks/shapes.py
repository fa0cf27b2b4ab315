"""The WSConv1d layers the microbenchmarks time: SoundNet's conv1-conv5 with WSNet sampling
(batch 8, 5 s of 22.05 kHz audio) and a long-sequence layer, with their FLOP counts."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wsnet_ext._geometry import condensed_length, conv_out_length


@dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    in_channels: int    # M
    out_channels: int   # N
    kernel_size: int    # L
    stride: int         # s
    padding: int        # p
    length: int         # T
    sample_stride: int  # S
    channel_repeat: int  # C

    @property
    def condensed_channels(self) -> int:
        return self.in_channels // self.channel_repeat

    @property
    def condensed_len(self) -> int:
        return condensed_length(self.kernel_size, self.out_channels, self.sample_stride)

    @property
    def padded_len(self) -> int:
        return self.length + 2 * self.padding

    @property
    def out_len(self) -> int:
        return conv_out_length(self.length, 2 * self.padding, 1, self.kernel_size, self.stride)

    # Multiply-adds (docs/design.md §2 "Cost")
    def plain_macs(self) -> int:
        """A plain conv1d: B * T_out * N * M * L."""
        return self.batch * self.out_len * self.out_channels * self.in_channels * self.kernel_size

    def ws_macs(self) -> int:
        """Steps 1-2 of the integral-image method: B * Tp * Lc * Mc."""
        return self.batch * self.padded_len * self.condensed_len * self.condensed_channels

    def ws_other_ops(self) -> int:
        """Channel fold, line prefix sums and the gather's differences."""
        b = self.batch
        return (b * self.in_channels * self.padded_len + b * self.padded_len * self.condensed_len
                + 2 * b * self.out_channels * self.out_len)

    def flop_ratio(self) -> float:
        return self.plain_macs() / self.ws_macs()


SHAPES = [
    Shape("conv1", 8, 1, 16, 64, 2, 32, 110250, 8, 1),
    Shape("conv2", 8, 16, 32, 32, 2, 16, 6890, 4, 2),
    Shape("conv3", 8, 32, 64, 16, 2, 8, 431, 2, 4),
    Shape("conv4", 8, 64, 128, 8, 2, 4, 216, 2, 4),
    Shape("conv5", 8, 128, 256, 4, 2, 2, 108, 1, 4),
    Shape("long", 4, 64, 128, 32, 1, 16, 16000, 4, 4),
    # stride 1 with few condensed channels (Mc 6): the line prefix and the gathers weigh more
    # against the multiply-adds than on `long` (docs/benchmarks.md)
    Shape("mid", 4, 24, 48, 24, 1, 12, 16000, 4, 4),
]
LARGE = ("conv1", "conv2", "long", "mid")  # over 100 MFLOP of WSNet work: the full FLOP-ratio target


def make_inputs(shape: Shape, device, seed: int = 0) -> list:
    """[x, condensed, bias, grad_output] of `shape` on `device`: random, the condensed filter at
    the plain layer's initial scale."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape.batch, shape.in_channels, shape.length, generator=gen)
    cond = torch.rand(shape.condensed_channels, shape.condensed_len, generator=gen) * 2 - 1
    cond /= (shape.in_channels * shape.kernel_size) ** 0.5
    bias = torch.randn(shape.out_channels, generator=gen) * 0.1
    gy = torch.randn(shape.batch, shape.out_channels, shape.out_len, generator=gen)
    return [t.to(device) for t in (x, cond, bias, gy)]
