"""WSConv2d and WSLinear: weights sampled along the input-channel axis (docs/design.md §3).

Filter n reads the condensed rows [n*S, n*S + Mc), tiled C times over the M input channels; the
convolution / matmul on the sampled weight is PyTorch's own."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from . import _checks
from ._geometry import channel_compactness, channel_condensed_length
from .functional import sample_channels


class _ChannelSampled(nn.Module):
    """Holds `condensed` (M / C + (N-1) * S, *kernel) and samples `weight` from it."""

    def _init_condensed(self, in_channels, out_channels, sample_stride, channel_repeat, kernel,
                        bias, factory):
        self.in_channels = _checks.single_int("in_channels", in_channels)
        self.out_channels = _checks.single_int("out_channels", out_channels)
        self.sample_stride = _checks.single_int("sample_stride", sample_stride)
        self.channel_repeat = _checks.single_int("channel_repeat", channel_repeat)
        _checks.divides("in_channels", self.in_channels, "channel_repeat", self.channel_repeat)
        rows = channel_condensed_length(self.in_channels, self.out_channels, self.sample_stride,
                                        self.channel_repeat)
        self.condensed = nn.Parameter(torch.empty((rows, *kernel), **factory))
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the plain layer's scale: uniform in ±1/sqrt(fan_in), fan_in = M * prod(kernel)
        fan_in = self.in_channels * math.prod(self.condensed.shape[1:])
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.condensed, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def weight(self) -> torch.Tensor:
        """The sampled weight, computed on access."""
        return sample_channels(self.condensed, self.out_channels, self.sample_stride, self.channel_repeat)

    @property
    def compactness(self) -> float:
        """Plain-layer parameters over condensed parameters, biases not counted."""
        return channel_compactness(self.in_channels, self.out_channels, self.sample_stride, self.channel_repeat)

    def _sampling_repr(self) -> str:
        return f"sample_stride={self.sample_stride}, channel_repeat={self.channel_repeat}"


class WSConv2d(_ChannelSampled):
    """Drop-in for nn.Conv2d whose filters are windows of one condensed filter along the input
    channel axis. `padding` takes an int, a pair, 'same' or 'valid'."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, sample_stride: int = 1,
                 channel_repeat: int = 1, stride=1, padding=0, dilation=1, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = _checks.conv_options(
            kernel_size, stride, padding, dilation, _pair)
        self._init_condensed(in_channels, out_channels, sample_stride, channel_repeat,
                             self.kernel_size, bias, {"device": device, "dtype": dtype})

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"{self._sampling_repr()}, stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text + f", compactness={self.compactness:.2f}"


class WSLinear(_ChannelSampled):
    """Drop-in for nn.Linear whose rows are windows of one condensed vector:
    weight[n, m] = condensed[n*S + m % (M / C)]."""

    def __init__(self, in_features: int, out_features: int, sample_stride: int = 1,
                 channel_repeat: int = 1, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self._init_condensed(in_features, out_features, sample_stride, channel_repeat, (), bias,
                             {"device": device, "dtype": dtype})

    @property
    def in_features(self) -> int:
        return self.in_channels

    @property
    def out_features(self) -> int:
        return self.out_channels

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_channels}, out_features={self.out_channels}, "
                f"{self._sampling_repr()}, bias={self.bias is not None}, compactness={self.compactness:.2f}")
