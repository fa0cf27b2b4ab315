"""Fake (meta) kernels of the registered ops and the autograd of ws_sample_channels, so that
torch.compile traces them and backward runs our backward ops (DESIGN.md §6)."""

from __future__ import annotations

import torch

from . import _build  # noqa: F401  (loads the library that defines the ops)
from ._geometry import conv_out_length

_forward = torch.ops.wsnet_ext.ws_conv1d_forward.default
_sample_channels = torch.ops.wsnet_ext.ws_sample_channels.default
_sample_channels_backward = torch.ops.wsnet_ext.ws_sample_channels_backward.default


@torch.library.register_fake("wsnet_ext::ws_conv1d_forward")
def _ws_conv1d_forward_fake(input, condensed, bias, kernel_size, sample_stride, channel_repeat,
                            stride, padding, dilation):
    out_channels = (condensed.shape[1] - kernel_size) // sample_stride + 1
    out_len = conv_out_length(input.shape[2], padding[0] + padding[1], dilation, kernel_size, stride)
    return input.new_empty((input.shape[0], out_channels, out_len))


@torch.library.register_fake("wsnet_ext::ws_conv1d_backward")
def _ws_conv1d_backward_fake(grad_output, input, condensed, kernel_size, sample_stride,
                             channel_repeat, stride, padding, dilation, output_mask):
    def grad_like(wanted, shape):
        return input.new_empty(shape if wanted else (0,))
    return (grad_like(output_mask[0], input.shape), grad_like(output_mask[1], condensed.shape),
            grad_like(output_mask[2], (grad_output.shape[1],)))


# The autograd of ws_conv1d_forward is registered in C++ (csrc/ws_conv1d_autograd.cpp): its
# backward calls ws_conv1d_backward with a mask of the inputs that need gradients.


@torch.library.register_fake("wsnet_ext::ws_sample_channels")
def _ws_sample_channels_fake(condensed, out_channels, sample_stride, channel_repeat):
    condensed_channels = condensed.shape[0] - (out_channels - 1) * sample_stride
    return condensed.new_empty((out_channels, condensed_channels * channel_repeat, *condensed.shape[1:]))


@torch.library.register_fake("wsnet_ext::ws_sample_channels_backward")
def _ws_sample_channels_backward_fake(grad_weight, condensed_len, sample_stride, channel_repeat):
    return grad_weight.new_empty((condensed_len, *grad_weight.shape[2:]))


def _sample_setup_context(ctx, inputs, output):
    condensed, _, sample_stride, channel_repeat = inputs
    ctx.sampling = (condensed.shape[0], sample_stride, channel_repeat)


def _sample_backward_rule(ctx, grad_weight):
    return _sample_channels_backward(grad_weight, *ctx.sampling), None, None, None


torch.library.register_autograd("wsnet_ext::ws_sample_channels", _sample_backward_rule,
                                setup_context=_sample_setup_context)
