"""Fake (meta) kernels and autograd of the registered ops, so that torch.compile traces them and
backward runs our backward ops (docs/design.md, "Ops"). The autograd is registered with
torch.library.register_autograd: the stable ABI the kernels are built on has no C++ autograd. Every
backward op has an autograd of its own too, so second derivatives (create_graph=True) are exact."""

from __future__ import annotations

import torch

from . import _build  # noqa: F401  (loads the library that defines the ops)
from ._geometry import conv_out_length

_forward = torch.ops.wsnet_ext.ws_conv1d_forward.default
_backward = torch.ops.wsnet_ext.ws_conv1d_backward.default
_sample_channels = torch.ops.wsnet_ext.ws_sample_channels.default
_sample_channels_backward = torch.ops.wsnet_ext.ws_sample_channels_backward.default

# Calls made inside it skip the Autograd dispatch keys, as torch.library's own autograd wrapper does.
_below_autograd = torch._C._AutoDispatchBelowAutograd


def call_op(op, grad_wanted: bool, *args):
    """op(*args). Where no gradient is wanted in eager mode (inference, frozen tensors), below the
    Autograd keys: torch.library's Python autograd wrapper costs ~10 us a call and only redispatches
    then. Traced graphs and gradients take the registered path."""
    if grad_wanted or torch.compiler.is_compiling():
        return op(*args)
    with _below_autograd():
        return op(*args)


def _check_conv1d_fake(input, condensed, kernel_size, sample_stride, channel_repeat, stride, padding,
                       dilation):
    """What the kernels' own checks (csrc/common/ws_conv1d_op_args.h) guarantee, for traced shapes: the
    same conditions, so a compiled graph fails where an eager call would."""
    torch._check(input.dim() == 3, lambda: f"ws_conv1d: expected input of shape (B, M, T), got {tuple(input.shape)}")
    torch._check(condensed.dim() == 2,
                 lambda: f"ws_conv1d: expected condensed of shape (Mc, Lc), got {tuple(condensed.shape)}")
    torch._check(min(kernel_size, sample_stride, channel_repeat, stride, dilation) >= 1,
                 lambda: "ws_conv1d: expected kernel_size, sample_stride, channel_repeat, stride and dilation >= 1")
    torch._check(len(padding) == 2 and padding[0] >= 0 and padding[1] >= 0,
                 lambda: f"ws_conv1d: expected padding [left, right] >= 0, got {padding}")
    torch._check(input.dtype == condensed.dtype,
                 lambda: f"ws_conv1d: expected input and condensed of one dtype, got {input.dtype} and {condensed.dtype}")
    torch._check(input.shape[1] == condensed.shape[0] * channel_repeat,
                 lambda: f"ws_conv1d: expected in_channels = condensed.shape[0] * channel_repeat, got {input.shape[1]}")
    extra = condensed.shape[1] - kernel_size
    torch._check(extra >= 0 and extra % sample_stride == 0,
                 lambda: "ws_conv1d: expected condensed length kernel_size + (N - 1) * sample_stride")
    out_len = conv_out_length(input.shape[2], padding[0] + padding[1], dilation, kernel_size, stride)
    torch._check(out_len >= 1, lambda: "ws_conv1d: expected an output length >= 1")
    return extra // sample_stride + 1, out_len


@torch.library.register_fake("wsnet_ext::ws_conv1d_forward")
def _ws_conv1d_forward_fake(input, condensed, bias, kernel_size, sample_stride, channel_repeat,
                            stride, padding, dilation):
    out_channels, out_len = _check_conv1d_fake(input, condensed, kernel_size, sample_stride,
                                               channel_repeat, stride, padding, dilation)
    if bias is not None:
        torch._check(bias.dim() == 1 and bias.shape[0] == out_channels,
                     lambda: f"ws_conv1d: expected bias of shape ({out_channels},), got {tuple(bias.shape)}")
    return input.new_empty((input.shape[0], out_channels, out_len))


@torch.library.register_fake("wsnet_ext::ws_conv1d_backward")
def _ws_conv1d_backward_fake(grad_output, input, condensed, kernel_size, sample_stride,
                             channel_repeat, stride, padding, dilation, output_mask):
    out_channels, out_len = _check_conv1d_fake(input, condensed, kernel_size, sample_stride,
                                               channel_repeat, stride, padding, dilation)
    torch._check(tuple(grad_output.shape) == (input.shape[0], out_channels, out_len),
                 lambda: f"ws_conv1d_backward: expected grad_output of shape "
                         f"({input.shape[0]}, {out_channels}, {out_len}), got {tuple(grad_output.shape)}")
    torch._check(len(output_mask) == 3, lambda: "ws_conv1d_backward: expected an output_mask of 3 bools")

    def grad_like(wanted, shape):
        return input.new_empty(shape if wanted else (0,))
    return (grad_like(output_mask[0], input.shape), grad_like(output_mask[1], condensed.shape),
            grad_like(output_mask[2], (grad_output.shape[1],)))


def _forward_setup_context(ctx, inputs, output):
    input, condensed, bias = inputs[:3]
    ctx.save_for_backward(input, condensed)
    ctx.options = inputs[3:]  # kernel_size, sample_stride, channel_repeat, stride, padding, dilation
    ctx.has_bias = bias is not None


def _forward_backward_rule(ctx, grad_output):
    """y = F(x, c) + bias: one ws_conv1d_backward call for the gradients that are needed."""
    needs = ctx.needs_input_grad
    mask = [needs[0], needs[1], ctx.has_bias and needs[2]]
    input, condensed = ctx.saved_tensors
    # grad mode is on in a backward only under create_graph=True: then the backward op's autograd records it
    grads = call_op(_backward, torch.is_grad_enabled(), grad_output, input, condensed, *ctx.options, mask)
    return (grads[0] if mask[0] else None, grads[1] if mask[1] else None,
            grads[2] if mask[2] else None, None, None, None, None, None, None)


torch.library.register_autograd("wsnet_ext::ws_conv1d_forward", _forward_backward_rule,
                                setup_context=_forward_setup_context)


class WSConv1dFunction(torch.autograd.Function):
    """The same autograd as the registered one, for eager training steps: torch.ops calls reach the
    registered autograd through the dispatcher and torch.library's generic wrapper (~140 us per
    forward+backward measured here), this reaches the kernels directly (benchmarks/results/
    stable_abi/autograd_overhead_*). wsnet_ext.ws_conv1d uses it outside torch.compile; compiled graphs call
    the op (and so its registered autograd)."""

    @staticmethod
    def forward(ctx, *inputs):
        with _below_autograd():
            output = _forward(*inputs)
        _forward_setup_context(ctx, inputs, output)
        return output

    backward = staticmethod(_forward_backward_rule)


def _backward_setup_context(ctx, inputs, output):
    grad_output, input, condensed = inputs[:3]
    ctx.save_for_backward(grad_output, input, condensed)
    ctx.options = inputs[3:9]
    ctx.output_mask = inputs[9]


def _backward_backward_rule(ctx, grad_grad_input, grad_grad_condensed, grad_grad_bias):
    """The backward op is bilinear: grad_input = A(c)^T gy, grad_condensed = B(x)^T gy and
    grad_bias = sum gy, where F(x, c) = A(c) x = B(x) c is the forward without bias. So, with
    (ggx, ggc, ggb) the gradients of its three outputs:
      d grad_output = F(ggx, c) + F(x, ggc) + ggb   (broadcast over batch and time)
      d input       = A(ggc)^T gy                   (the grad_input of the op with condensed ggc)
      d condensed   = B(ggx)^T gy                   (the grad_condensed of the op with input ggx)
    each computed by the ops themselves, which are differentiable again."""
    grad_output, input, condensed = ctx.saved_tensors
    options, mask = ctx.options, ctx.output_mask
    needs = ctx.needs_input_grad
    d_grad_output = d_input = d_condensed = None
    if needs[0]:
        terms = []
        if mask[0]:
            terms.append(_forward(grad_grad_input, condensed, None, *options))
        if mask[1]:
            terms.append(_forward(input, grad_grad_condensed, None, *options))
        if mask[2]:
            terms.append(grad_grad_bias[None, :, None].expand_as(grad_output))
        d_grad_output = sum(terms[1:], terms[0]) if terms else torch.zeros_like(grad_output)
    if needs[1] and mask[1]:
        d_input = _backward(grad_output, input, grad_grad_condensed, *options, [True, False, False])[0]
    if needs[2] and mask[0]:
        d_condensed = _backward(grad_output, grad_grad_input, condensed, *options, [False, True, False])[1]
    return (d_grad_output, d_input, d_condensed) + (None,) * 7


torch.library.register_autograd("wsnet_ext::ws_conv1d_backward", _backward_backward_rule,
                                setup_context=_backward_setup_context)


@torch.library.register_fake("wsnet_ext::ws_sample_channels")
def _ws_sample_channels_fake(condensed, out_channels, sample_stride, channel_repeat):
    torch._check(condensed.dim() >= 1, lambda: "ws_sample_channels: expected condensed of shape (Lc, ...)")
    torch._check(min(out_channels, sample_stride, channel_repeat) >= 1,
                 lambda: "ws_sample_channels: expected out_channels, sample_stride and channel_repeat >= 1")
    condensed_channels = condensed.shape[0] - (out_channels - 1) * sample_stride
    torch._check(condensed_channels >= 1,
                 lambda: "ws_sample_channels: expected condensed length Mc + (out_channels - 1) * sample_stride")
    return condensed.new_empty((out_channels, condensed_channels * channel_repeat, *condensed.shape[1:]))


@torch.library.register_fake("wsnet_ext::ws_sample_channels_backward")
def _ws_sample_channels_backward_fake(grad_weight, condensed_len, sample_stride, channel_repeat):
    torch._check(grad_weight.dim() >= 2, lambda: "ws_sample_channels_backward: expected grad_weight (N, M, ...)")
    condensed_channels = condensed_len - (grad_weight.shape[0] - 1) * sample_stride
    torch._check(condensed_channels >= 1 and grad_weight.shape[1] == condensed_channels * channel_repeat,
                 lambda: "ws_sample_channels_backward: expected grad_weight's input channels (condensed "
                         "length - (N - 1) * sample_stride) * channel_repeat")
    return grad_weight.new_empty((condensed_len, *grad_weight.shape[2:]))


def _sample_setup_context(ctx, inputs, output):
    condensed, _, sample_stride, channel_repeat = inputs
    ctx.sampling = (condensed.shape[0], sample_stride, channel_repeat)


def _sample_backward_rule(ctx, grad_weight):
    return call_op(_sample_channels_backward, torch.is_grad_enabled(), grad_weight, *ctx.sampling), None, None, None


torch.library.register_autograd("wsnet_ext::ws_sample_channels", _sample_backward_rule,
                                setup_context=_sample_setup_context)


def _sample_backward_setup_context(ctx, inputs, output):
    grad_weight, _, sample_stride, channel_repeat = inputs
    ctx.sampling = (grad_weight.shape[0], sample_stride, channel_repeat)


def _sample_backward_backward_rule(ctx, grad_grad_condensed):
    """The sampling's backward is linear and its adjoint is the sampling itself."""
    return _sample_channels(grad_grad_condensed, *ctx.sampling), None, None, None


torch.library.register_autograd("wsnet_ext::ws_sample_channels_backward", _sample_backward_backward_rule,
                                setup_context=_sample_backward_setup_context)


_hashed_weight = torch.ops.wsnet_ext.ws_hashed_weight.default
_hashed_weight_backward = torch.ops.wsnet_ext.ws_hashed_weight_backward.default


@torch.library.register_fake("wsnet_ext::ws_hashed_weight")
def _ws_hashed_weight_fake(real_weight, index):
    torch._check(real_weight.dim() == 1, lambda: "ws_hashed_weight: expected real_weight of shape (B,)")
    return real_weight.new_empty(index.shape)


@torch.library.register_fake("wsnet_ext::ws_hashed_weight_backward")
def _ws_hashed_weight_backward_fake(grad_virtual, index, buckets):
    torch._check(index.shape == grad_virtual.shape,
                 lambda: "ws_hashed_weight_backward: expected grad_virtual of the index's shape")
    torch._check(buckets >= 1, lambda: f"ws_hashed_weight_backward: expected buckets >= 1, got {buckets}")
    return grad_virtual.new_empty((buckets,))


def _hashed_weight_setup_context(ctx, inputs, output):
    real_weight, index = inputs
    ctx.save_for_backward(index)
    ctx.buckets = real_weight.shape[0]


def _hashed_weight_backward_rule(ctx, grad_virtual):
    """V = P w with P the signed one-hot rows of the hash: grad_w = P^T grad_V."""
    (index,) = ctx.saved_tensors
    return call_op(_hashed_weight_backward, torch.is_grad_enabled(), grad_virtual, index, ctx.buckets), None


def _hashed_weight_backward_setup_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])


def _hashed_weight_backward_backward_rule(ctx, grad_grad_weight):
    """The backward is P^T, linear; its adjoint is P, the forward."""
    (index,) = ctx.saved_tensors
    return _hashed_weight(grad_grad_weight, index), None, None


torch.library.register_autograd("wsnet_ext::ws_hashed_weight", _hashed_weight_backward_rule,
                                setup_context=_hashed_weight_setup_context)
torch.library.register_autograd("wsnet_ext::ws_hashed_weight_backward", _hashed_weight_backward_backward_rule,
                                setup_context=_hashed_weight_backward_setup_context)
