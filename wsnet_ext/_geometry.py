"""Shape formulas of WSNet layers (docs/design.md §1-§3), in one place for modules, wrappers and
benchmarks. The kernels' copy of the 1D formulas is csrc/common/ws_conv1d_geometry.h; the tests check
that both agree."""

from __future__ import annotations


def conv_out_length(length: int, pad_total: int, dilation: int, kernel_size: int, stride: int) -> int:
    """T_out = floor((T + pad_total - d*(L-1) - 1) / s) + 1, or 0 if the input is too short."""
    span = length + pad_total - dilation * (kernel_size - 1) - 1
    return span // stride + 1 if span >= 0 else 0


def condensed_length(kernel_size: int, out_channels: int, sample_stride: int) -> int:
    """L* = L + (N - 1) * S (seed eq. 2): the length a condensed filter needs for N windows."""
    return kernel_size + (out_channels - 1) * sample_stride


def out_channels_of(condensed_len: int, kernel_size: int, sample_stride: int) -> int | None:
    """The N with condensed_len = L + (N - 1) * S, or None when no whole N fits."""
    extra = condensed_len - kernel_size
    if extra < 0 or extra % sample_stride:
        return None
    return extra // sample_stride + 1


def conv1d_compactness(in_channels: int, out_channels: int, kernel_size: int, sample_stride: int,
                       channel_repeat: int) -> float:
    """K = (L * M * N) / (L* * M*) (seed eq. 1): plain-layer over WSNet parameters, no biases."""
    plain = kernel_size * in_channels * out_channels
    condensed = condensed_length(kernel_size, out_channels, sample_stride) * (in_channels // channel_repeat)
    return plain / condensed


def resolve_padding(padding, kernel_size: int, dilation: int, stride: int) -> tuple[int, int]:
    """(left, right) zero padding for an int or nn.Conv1d's 'valid' / 'same'. Like PyTorch,
    'same' puts the odd extra element on the right and needs stride 1."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            if stride != 1:
                raise ValueError(f"padding='same' expects stride=1, got stride={stride}")
            total = dilation * (kernel_size - 1)
            return (total // 2, total - total // 2)
        raise ValueError(f"padding expects an int >= 0, 'same' or 'valid', got {padding!r}")
    return (padding, padding)


def channel_condensed_length(in_channels: int, out_channels: int, sample_stride: int,
                             channel_repeat: int) -> int:
    """Rows of a channel-sampled condensed tensor (docs/design.md §3): M / C + (N - 1) * S."""
    return in_channels // channel_repeat + (out_channels - 1) * sample_stride


def channel_compactness(in_channels: int, out_channels: int, sample_stride: int,
                        channel_repeat: int) -> float:
    """(N * M) / (M / C + (N - 1) * S): plain-layer over condensed parameters (docs/design.md §3)."""
    return in_channels * out_channels / channel_condensed_length(in_channels, out_channels,
                                                                 sample_stride, channel_repeat)
