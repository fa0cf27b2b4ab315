"""Argument checks shared by the public functions and modules. Each error names the argument,
what was expected and what was given (docs/design.md §5)."""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def single_int(name: str, value, minimum: int = 1) -> int:
    """An int >= minimum; a one-element tuple is taken as nn.Conv1d takes it."""
    if type(value) is int and value >= minimum:  # the common case, first: every call of every layer
        return value
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} expects an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} expects an int >= {minimum}, got {value}")
    return value


def padding_arg(value):
    """'same', 'valid' or an int >= 0 (a one-element tuple taken as its element)."""
    if isinstance(value, str):
        return value
    return single_int("padding", value, minimum=0)


def tensor_arg(name: str, value, dims: tuple[int, ...], shape_text: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor, got {type(value).__name__}")
    if value.dim() not in dims:
        raise ValueError(f"{name} expects shape {shape_text}, got {tuple(value.shape)}")
    if value.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"{name} expects a floating dtype (float16, bfloat16, float32, float64), got {value.dtype}")
    return value


def same_dtype_device(reference: torch.Tensor, ref_name: str, other: torch.Tensor, name: str) -> None:
    if other.is_cpu and reference.is_cpu and other.dtype == reference.dtype:
        return  # the common case, without building two torch.device objects
    if other.dtype != reference.dtype:
        raise ValueError(f"{name} expects the dtype of {ref_name} ({reference.dtype}), got {other.dtype}")
    if other.device != reference.device:
        raise ValueError(f"{name} expects the device of {ref_name} ({reference.device}), got {other.device}")


def divides(name: str, value: int, divisor_name: str, divisor: int) -> None:
    if value % divisor:
        raise ValueError(f"{name} expects a multiple of {divisor_name}={divisor}, got {value}")


def conv_options(kernel_size, stride, padding, dilation, expand) -> tuple:
    """(kernel_size, stride, padding, dilation) of an N-d conv as tuples (`expand` is torch's
    _single / _pair); padding may also be 'same' (stride 1 only) or 'valid', as in nn.ConvNd."""
    kernel_size = tuple(single_int("kernel_size", k) for k in expand(kernel_size))
    stride = tuple(single_int("stride", k) for k in expand(stride))
    dilation = tuple(single_int("dilation", k) for k in expand(dilation))
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding expects an int >= 0, a tuple, 'same' or 'valid', got {padding!r}")
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(f"padding='same' expects stride=1, got stride={stride[0] if len(stride) == 1 else stride}")
    else:
        padding = tuple(single_int("padding", k, minimum=0) for k in expand(padding))
    return kernel_size, stride, padding, dilation


_KEYWORD_HINT = ("(the positional arguments follow torch.nn exactly since wsnet_ext 0.2; "
                 "{extras} are keyword-only, e.g. {example})")


def plain_conv_extras(layer: str, groups, bias, padding_mode, extras: str, example: str) -> bool:
    """Checks the nn.Conv arguments a sampled layer accepts only at their defaults (groups=1,
    padding_mode='zeros') and that bias is a bool; returns bias. A call written for the old
    argument order (sample_stride, channel_repeat after kernel_size) lands its values here and is
    told which keywords to use."""
    hint = _KEYWORD_HINT.format(extras=extras, example=example)
    if isinstance(groups, bool) or groups != 1:
        raise ValueError(f"groups: {layer} supports only groups=1 (one condensed filter spans every "
                         f"input channel), got {groups!r} {hint}")
    if padding_mode != "zeros":
        raise ValueError(f"padding_mode: {layer} supports only 'zeros', got {padding_mode!r} {hint}")
    return bool_arg("bias", bias, hint)


def bool_arg(name: str, value, hint: str = "") -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} expects a bool, got {value!r}" + (f" {hint}" if hint else ""))
    return value
