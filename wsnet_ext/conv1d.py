"""WSConv1d: a Conv1d whose filters are windows of one learned condensed filter (docs/design.md §2)."""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _checks
from ._geometry import condensed_length, conv1d_compactness, resolve_padding
from .functional import sample_conv1d_weight, ws_conv1d


class WSConv1d(nn.Module):
    """Drop-in for nn.Conv1d with weight sampling.

    Filter n is the window [n*S, n*S + L) of the condensed filter (spatial sampling, stride
    ``sample_stride``) and input channel m reads condensed channel m % (M / C) (channel sampling,
    repeat ``channel_repeat``). Parameters: ``condensed`` (M / C, L + (N-1) * S) and ``bias`` (N,)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, sample_stride: int = 1,
                 channel_repeat: int = 1, stride: int = 1, padding=0, dilation: int = 1,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_channels = _checks.single_int("in_channels", in_channels)
        self.out_channels = _checks.single_int("out_channels", out_channels)
        self.kernel_size = _checks.single_int("kernel_size", kernel_size)
        self.sample_stride = _checks.single_int("sample_stride", sample_stride)
        self.channel_repeat = _checks.single_int("channel_repeat", channel_repeat)
        self.stride = _checks.single_int("stride", stride)
        self.dilation = _checks.single_int("dilation", dilation)
        self.padding = _checks.padding_arg(padding)
        resolve_padding(self.padding, self.kernel_size, self.dilation, self.stride)  # validates
        _checks.divides("in_channels", self.in_channels, "channel_repeat", self.channel_repeat)
        factory = {"device": device, "dtype": dtype}
        shape = (self.in_channels // self.channel_repeat,
                 condensed_length(self.kernel_size, self.out_channels, self.sample_stride))
        self.condensed = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv1d's scale: uniform in ±1/sqrt(fan_in), fan_in = M * L (docs/design.md §5), so every
        # sampled filter looks like a freshly initialised plain filter.
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size)
        nn.init.uniform_(self.condensed, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def weight(self) -> torch.Tensor:
        """The sampled filter (N, M, L) that the layer convolves with, computed on access."""
        return sample_conv1d_weight(self.condensed, self.out_channels, self.kernel_size,
                                    self.sample_stride, self.channel_repeat)

    @property
    def compactness(self) -> float:
        """Seed eq. 1: parameters of the plain Conv1d over those of the condensed filter."""
        return conv1d_compactness(self.in_channels, self.out_channels, self.kernel_size,
                                  self.sample_stride, self.channel_repeat)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return ws_conv1d(input, self.condensed, self.bias, kernel_size=self.kernel_size,
                         sample_stride=self.sample_stride, channel_repeat=self.channel_repeat,
                         stride=self.stride, padding=self.padding, dilation=self.dilation)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"sample_stride={self.sample_stride}, channel_repeat={self.channel_repeat}, "
                f"stride={self.stride}")
        if self.padding != 0:
            text += f", padding={self.padding!r}"
        if self.dilation != 1:
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text + f", compactness={self.compactness:.2f}"
