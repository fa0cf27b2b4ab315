"""WSConv1d: a Conv1d whose filters are windows of one learned condensed filter (docs/design.md §2)."""

from __future__ import annotations

import math

import torch
from torch import nn

from torch.nn.modules.utils import _single

from . import _checks
from ._condensed import CondensedHolder
from ._geometry import condensed_length, conv1d_compactness
from ._projection import project_condensed
from .functional import sample_conv1d_weight, ws_conv1d


class WSConv1d(CondensedHolder):
    """Drop-in for nn.Conv1d with weight sampling (docs/design.md §2).

    ``WSConv1d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True, padding_mode='zeros', device=None, dtype=None, *, sample_stride=1, channel_repeat=1)``

    The positional arguments are nn.Conv1d's, in nn.Conv1d's order; what WSNet adds is keyword-only.
    Filter n is the window [n*S, n*S + L) of the condensed filter (spatial sampling, S =
    ``sample_stride``) and input channel m reads condensed channel m % (M / C) (channel sampling,
    C = ``channel_repeat``). Parameters: ``condensed`` (M / C, L + (N-1) * S) and ``bias`` (N,).
    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are stored as nn.Conv1d stores them
    (1-tuples; ``padding`` may be 'same' or 'valid').

    Not supported: ``groups`` other than 1 and ``padding_mode`` other than 'zeros' (a ValueError
    naming the argument). Build one from a trained nn.Conv1d with :meth:`from_conv`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, *, sample_stride: int = 1, channel_repeat: int = 1):
        super().__init__()
        bias = _checks.plain_conv_extras(
            "WSConv1d", groups, bias, padding_mode, "sample_stride and channel_repeat",
            "WSConv1d(16, 32, 3, stride=2, padding=1, sample_stride=2, channel_repeat=2)")
        self.in_channels = _checks.single_int("in_channels", in_channels)
        self.out_channels = _checks.single_int("out_channels", out_channels)
        self.kernel_size, self.stride, self.padding, self.dilation = _checks.conv_options(
            kernel_size, stride, padding, dilation, _single)
        self.groups, self.padding_mode = 1, "zeros"
        self.sample_stride = _checks.single_int("sample_stride", sample_stride)
        self.channel_repeat = _checks.single_int("channel_repeat", channel_repeat)
        _checks.divides("in_channels", self.in_channels, "channel_repeat", self.channel_repeat)
        factory = {"device": device, "dtype": dtype}
        shape = (self.in_channels // self.channel_repeat,
                 condensed_length(self.kernel_size[0], self.out_channels, self.sample_stride))
        self.condensed = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory)) if bias else None
        self.reset_parameters()

    @classmethod
    def from_conv(cls, conv: nn.Conv1d, *, sample_stride: int, channel_repeat: int = 1) -> "WSConv1d":
        """A WSConv1d with `conv`'s options, device and dtype whose condensed filter is the
        least-squares fit of `conv`'s weight (each condensed entry the mean of the plain entries
        sampled from it) and whose bias is `conv`'s. For bringing in a trained layer."""
        if not isinstance(conv, nn.Conv1d):
            raise TypeError(f"conv expects an nn.Conv1d, got {type(conv).__name__}")
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
                    device=conv.weight.device, dtype=conv.weight.dtype, sample_stride=sample_stride,
                    channel_repeat=channel_repeat)
        project_condensed(layer.condensed, layer._sample, conv.weight, layer.bias, conv.bias)
        return layer

    def _sample(self, condensed: torch.Tensor) -> torch.Tensor:
        return sample_conv1d_weight(condensed, self.out_channels, self.kernel_size[0],
                                    self.sample_stride, self.channel_repeat)

    def reset_parameters(self) -> None:
        # nn.Conv1d's scale: uniform in ±1/sqrt(fan_in), fan_in = M * L (docs/design.md §5), so every
        # sampled filter looks like a freshly initialised plain filter.
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0])
        nn.init.uniform_(self.condensed, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def weight(self) -> torch.Tensor:
        """The sampled filter (N, M, L) that the layer convolves with, computed on access."""
        return self._sample(self.condensed)

    @property
    def compactness(self) -> float:
        """Seed eq. 1: parameters of the plain Conv1d over those of the condensed filter."""
        return conv1d_compactness(self.in_channels, self.out_channels, self.kernel_size[0],
                                  self.sample_stride, self.channel_repeat)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return ws_conv1d(input, self.condensed, self.bias, kernel_size=self.kernel_size[0],
                         sample_stride=self.sample_stride, channel_repeat=self.channel_repeat,
                         stride=self.stride[0], padding=self.padding if isinstance(self.padding, str)
                         else self.padding[0], dilation=self.dilation[0])

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,):
            text += f", padding={self.padding!r}"
        if self.dilation != (1,):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return (text + f", sample_stride={self.sample_stride}, channel_repeat={self.channel_repeat}"
                f", compactness={self.compactness:.2f}")
