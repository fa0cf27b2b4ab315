"""The functional API of wsnet_ext (docs/design.md §5)."""

from __future__ import annotations

import torch

from . import _checks, _materialized, _switches, paths
from ._build import build_info
from ._geometry import condensed_length, conv_out_length, out_channels_of, resolve_padding
from ._ops import WSConv1dFunction, _forward, _sample_channels, call_op

# Read once at import: a plain constant to torch.compile.
_CUDA_KERNELS = build_info()["cuda_loaded"]
_NO_CUDA_KERNELS = ("this wsnet_ext has no CUDA kernels loaded: "
                    f"{build_info()['cuda_not_loaded'] or 'unknown'} (wsnet_ext.build_info() says more)")


def _autocast_dtype(device_type: str):
    """The autocast dtype for `device_type`, or None when autocast is off (torch >= 2.4 API; the
    package needs torch >= 2.10)."""
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def sample_conv1d_weight(condensed: torch.Tensor, out_channels: int, kernel_size: int,
                         sample_stride: int, channel_repeat: int = 1) -> torch.Tensor:
    """The sampled filter W[n, m, l] = condensed[m % Mc, n*S + l], shape (N, M, L) (docs/design.md §2).

    Differentiable: gradients of overlapping windows add up in the condensed filter."""
    _checks.tensor_arg("condensed", condensed, (2,), "(Mc, Lc)")
    n = _checks.single_int("out_channels", out_channels)
    length = _checks.single_int("kernel_size", kernel_size)
    step = _checks.single_int("sample_stride", sample_stride)
    repeat = _checks.single_int("channel_repeat", channel_repeat)
    expected = condensed_length(length, n, step)
    if condensed.shape[1] != expected:
        raise ValueError(
            f"condensed expects length kernel_size + (out_channels - 1) * sample_stride = {expected}, "
            f"got shape {tuple(condensed.shape)}")
    return _materialized.sample_weight(condensed, n, length, step, repeat)  # backward: col2im, deterministic


def ws_conv1d(input: torch.Tensor, condensed: torch.Tensor, bias: torch.Tensor | None = None, *,
              kernel_size: int, sample_stride: int, channel_repeat: int = 1, stride: int = 1,
              padding=0, dilation: int = 1) -> torch.Tensor:
    """conv1d(input, sample_conv1d_weight(condensed, ...), bias, stride, padding, dilation),
    computed by the integral-image method without materializing the filters.

    input (B, M, T) or unbatched (M, T); condensed (M / channel_repeat, L*); bias (N,) or None,
    where N follows from L* = kernel_size + (N - 1) * sample_stride. padding is an int,
    'same' or 'valid'."""
    _checks.tensor_arg("input", input, (2, 3), "(B, M, T) or (M, T)")
    _checks.tensor_arg("condensed", condensed, (2,), "(Mc, Lc)")
    # "cpu" without building a torch.device (~0.2 us of the ~5 us this wrapper costs a small layer)
    device_type = "cpu" if input.is_cpu else input.device.type
    dtype = _autocast_dtype(device_type)
    if dtype is not None:
        # as conv1d under autocast: compute in the autocast dtype (accumulating in float32)
        input, condensed = input.to(dtype), condensed.to(dtype)
        bias = bias.to(dtype) if isinstance(bias, torch.Tensor) else bias
    _checks.same_dtype_device(input, "input", condensed, "condensed")
    length, step, repeat, stride, dilation, pads = _conv1d_options(
        kernel_size, sample_stride, channel_repeat, stride, padding, dilation)
    unbatched = input.dim() == 2
    x = input.unsqueeze(0) if unbatched else input
    batch_shape = x.shape
    in_channels = batch_shape[1]
    if in_channels < 1:
        raise ValueError(f"input expects at least one channel, got shape {tuple(input.shape)}")
    _checks.divides("input channels", in_channels, "channel_repeat", repeat)
    cond_channels, cond_len = condensed.shape
    if cond_channels != in_channels // repeat:
        raise ValueError(
            f"condensed expects {in_channels // repeat} channels (input channels {in_channels} / "
            f"channel_repeat {repeat}), got shape {tuple(condensed.shape)}")
    out_channels = out_channels_of(cond_len, length, step)
    if out_channels is None:
        raise ValueError(
            f"condensed expects length kernel_size + (N - 1) * sample_stride for a whole N >= 1 "
            f"(kernel_size={length}, sample_stride={step}), got length {cond_len}")
    if bias is not None:
        _check_bias(bias, input, out_channels)
    if conv_out_length(batch_shape[2], pads[0] + pads[1], dilation, length, stride) < 1:
        raise ValueError(
            f"input expects length >= {dilation * (length - 1) + 1 - pads[0] - pads[1]} for kernel_size="
            f"{length}, dilation={dilation}, padding={padding}, got length {batch_shape[2]}")
    if device_type == "cuda":
        if not _CUDA_KERNELS:
            raise RuntimeError(f"input is on CUDA but {_NO_CUDA_KERNELS}")
        if not torch.compiler.is_compiling():
            _switches.follow_torch_tf32()  # conv1d's TF32 intent: the strip kernel's precision and the path choice
    args = (x, condensed, bias, length, step, repeat, stride, pads, dilation)
    if device_type == "cuda":  # our kernels or cuDNN on the materialized filter, per direction
        options = args[3:]
        call = paths.call_of(x, condensed, options)
        choice = paths.choose(call)
        if paths.should_time(call):
            choice = paths.time_paths(call, x, condensed, bias, options)
        if choice.forward != paths.KERNELS or choice.backward != paths.KERNELS:
            y = _materialized.run(x, condensed, bias, options, choice.forward, choice.backward)
            return y.squeeze(0) if unbatched else y
    grad_wanted = torch.is_grad_enabled() and (
        x.requires_grad or condensed.requires_grad or (bias is not None and bias.requires_grad))
    if grad_wanted and not torch.compiler.is_compiling():
        y = WSConv1dFunction.apply(*args)  # eager training: the short way to the same autograd
    else:
        y = call_op(_forward, grad_wanted, *args)
    return y.squeeze(0) if unbatched else y


def _conv1d_options(kernel_size, sample_stride, channel_repeat, stride, padding, dilation) -> tuple:
    """(kernel_size, sample_stride, channel_repeat, stride, dilation, [left, right] padding) as ints,
    checked; the layers' common call (plain ints, int padding) without a function call per option."""
    if (type(kernel_size) is int and type(sample_stride) is int and type(channel_repeat) is int
            and type(stride) is int and type(dilation) is int and type(padding) is int
            and min(kernel_size, sample_stride, channel_repeat, stride, dilation) >= 1 and padding >= 0):
        return kernel_size, sample_stride, channel_repeat, stride, dilation, [padding, padding]
    length = _checks.single_int("kernel_size", kernel_size)
    step = _checks.single_int("sample_stride", sample_stride)
    repeat = _checks.single_int("channel_repeat", channel_repeat)
    stride = _checks.single_int("stride", stride)
    dilation = _checks.single_int("dilation", dilation)
    pads = resolve_padding(_checks.padding_arg(padding), length, dilation, stride)
    return length, step, repeat, stride, dilation, list(pads)


def _check_bias(bias, input: torch.Tensor, out_channels: int) -> None:
    if not isinstance(bias, torch.Tensor) or bias.dim() != 1:
        _checks.tensor_arg("bias", bias, (1,), f"({out_channels},)")  # raises, naming what it expects
    _checks.same_dtype_device(input, "input", bias, "bias")  # input's dtype: a floating one
    if bias.shape[0] != out_channels:
        raise ValueError(f"bias expects shape ({out_channels},), got {tuple(bias.shape)}")


def sample_channels(condensed: torch.Tensor, out_channels: int, sample_stride: int,
                    channel_repeat: int = 1) -> torch.Tensor:
    """Channel-axis sampling (docs/design.md §3): condensed (Mc + (N-1)*S, ...) -> weight (N, M, ...)
    with weight[n, m, ...] = condensed[n*S + m % Mc, ...] and M = Mc * channel_repeat.
    The weight of WSConv2d (condensed (Lc, kh, kw)) and WSLinear (condensed (Lc,)).
    Differentiable; the backward adds the gradients of shared entries in a fixed order."""
    _checks.tensor_arg("condensed", condensed, tuple(range(1, 6)), "(Lc, ...)")
    n = _checks.single_int("out_channels", out_channels)
    step = _checks.single_int("sample_stride", sample_stride)
    repeat = _checks.single_int("channel_repeat", channel_repeat)
    if condensed.shape[0] - (n - 1) * step < 1:
        raise ValueError(
            f"condensed expects at least (out_channels - 1) * sample_stride + 1 = {(n - 1) * step + 1} "
            f"rows, got shape {tuple(condensed.shape)}")
    if condensed.device.type == "cuda" and not _CUDA_KERNELS:
        raise RuntimeError(f"condensed is on CUDA but {_NO_CUDA_KERNELS}")
    return call_op(_sample_channels, torch.is_grad_enabled() and condensed.requires_grad, condensed, n, step, repeat)
