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
from ._condensed import CondensedHolder
from ._geometry import channel_compactness, channel_condensed_length
from ._projection import project_condensed
from .functional import sample_channels


class _ChannelSampled(CondensedHolder):
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

    def _sample(self, condensed: torch.Tensor) -> torch.Tensor:
        return sample_channels(condensed, self.out_channels, self.sample_stride, self.channel_repeat)

    @property
    def weight(self) -> torch.Tensor:
        """The sampled weight, computed on access."""
        return self._sample(self.condensed)

    def _fit(self, plain: nn.Module):
        """Fits the condensed tensor to `plain`'s weight (least squares) and copies its bias."""
        project_condensed(self.condensed, self._sample, plain.weight, self.bias, plain.bias)
        return self

    @property
    def compactness(self) -> float:
        """Plain-layer parameters over condensed parameters, biases not counted."""
        return channel_compactness(self.in_channels, self.out_channels, self.sample_stride, self.channel_repeat)

    def _sampling_repr(self) -> str:
        return f"sample_stride={self.sample_stride}, channel_repeat={self.channel_repeat}"


class WSConv2d(_ChannelSampled):
    """Drop-in for nn.Conv2d whose filters are windows of one condensed filter along the input
    channel axis (docs/design.md §3): weight[n, m] = condensed[n*S + m % (M / C)].

    ``WSConv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True, padding_mode='zeros', device=None, dtype=None, *, sample_stride=1, channel_repeat=1)``:
    nn.Conv2d's positional arguments in its order, WSNet's keyword-only; options stored as
    nn.Conv2d stores them (pairs; padding may be 'same' or 'valid'). Not supported: ``groups``
    other than 1, ``padding_mode`` other than 'zeros' (ValueError naming the argument). Build one
    from a trained nn.Conv2d with :meth:`from_conv`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, *, sample_stride: int = 1, channel_repeat: int = 1):
        super().__init__()
        bias = _checks.plain_conv_extras(
            "WSConv2d", groups, bias, padding_mode, "sample_stride and channel_repeat",
            "WSConv2d(64, 128, 3, padding=1, sample_stride=2, channel_repeat=4)")
        self.kernel_size, self.stride, self.padding, self.dilation = _checks.conv_options(
            kernel_size, stride, padding, dilation, _pair)
        self.groups, self.padding_mode = 1, "zeros"
        self._init_condensed(in_channels, out_channels, sample_stride, channel_repeat,
                             self.kernel_size, bias, {"device": device, "dtype": dtype})

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, *, sample_stride: int, channel_repeat: int = 1) -> "WSConv2d":
        """A WSConv2d with `conv`'s options, device and dtype, its condensed filter the
        least-squares fit of `conv`'s weight, its bias `conv`'s."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv expects an nn.Conv2d, got {type(conv).__name__}")
        return cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                   conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
                   device=conv.weight.device, dtype=conv.weight.dtype, sample_stride=sample_stride,
                   channel_repeat=channel_repeat)._fit(conv)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text + f", {self._sampling_repr()}, compactness={self.compactness:.2f}"


class WSLinear(_ChannelSampled):
    """Drop-in for nn.Linear whose rows are windows of one condensed vector (docs/design.md §3):
    weight[n, m] = condensed[n*S + m % (M / C)].

    ``WSLinear(in_features, out_features, bias=True, device=None, dtype=None, *, sample_stride=1,
    channel_repeat=1)``: nn.Linear's positional arguments, WSNet's keyword-only. Build one from a
    trained nn.Linear with :meth:`from_linear`."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None, *, sample_stride: int = 1, channel_repeat: int = 1):
        super().__init__()
        bias = _checks.bool_arg("bias", bias, _checks._KEYWORD_HINT.format(
            extras="sample_stride and channel_repeat",
            example="WSLinear(784, 1000, sample_stride=1, channel_repeat=8)"))
        self._init_condensed(in_features, out_features, sample_stride, channel_repeat, (), bias,
                             {"device": device, "dtype": dtype})

    @classmethod
    def from_linear(cls, linear: nn.Linear, *, sample_stride: int, channel_repeat: int = 1) -> "WSLinear":
        """A WSLinear with `linear`'s sizes, device and dtype, its condensed vector the
        least-squares fit of `linear`'s weight, its bias `linear`'s."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear expects an nn.Linear, got {type(linear).__name__}")
        return cls(linear.in_features, linear.out_features, linear.bias is not None,
                   device=linear.weight.device, dtype=linear.weight.dtype, sample_stride=sample_stride,
                   channel_repeat=channel_repeat)._fit(linear)

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
                f"bias={self.bias is not None}, {self._sampling_repr()}, compactness={self.compactness:.2f}")
