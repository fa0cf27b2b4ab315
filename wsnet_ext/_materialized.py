"""ws_conv1d through the materialized filter: sample W (N, M, L) from the condensed filter and call
the framework's convolution (cuDNN on CUDA) — what a user would write instead of our kernels —
and the two mixed paths, our kernel one way and the framework's convolution the other
(docs/design.md, "Paths"). wsnet_ext/paths.py decides which one runs.

Every path computes the definition y = conv1d(x, W, bias, s, p, d) with
W[n, m, l] = condensed[m % Mc, n*S + l]; gradients reach the condensed filter through the adjoint
of the sampling, a deterministic gather-sum (col2im: each condensed entry adds up the sampled
entries it fed, in a fixed order, no atomics)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._ops import _backward, _forward


def sample_weight(condensed: torch.Tensor, out_channels: int, kernel_size: int, sample_stride: int,
                  channel_repeat: int) -> torch.Tensor:
    """W (N, M, L) with W[n, m, l] = condensed[m % Mc, n*S + l]: the windows n*S .. n*S + L - 1 of
    each condensed channel (im2col over one row), tiled channel_repeat times. Its autograd is
    col2im, a gather-sum: deterministic on every device."""
    mc, lc = condensed.shape
    cols = F.unfold(condensed.reshape(1, mc, 1, lc), (1, kernel_size), stride=(1, sample_stride))
    windows = cols.reshape(mc, kernel_size, out_channels).permute(2, 0, 1)  # (N, Mc, L)
    return windows.repeat(1, channel_repeat, 1)


def condensed_grad(grad_weight: torch.Tensor, condensed_channels: int, condensed_len: int,
                   sample_stride: int) -> torch.Tensor:
    """The adjoint of sample_weight: grad_condensed[j, v] = sum over repeats c and filters n of
    grad_weight[n, c*Mc + j, v - n*S] (col2im, deterministic)."""
    n, m, length = grad_weight.shape
    per_channel = grad_weight.reshape(n, m // condensed_channels, condensed_channels, length).sum(1)
    cols = per_channel.permute(1, 2, 0).reshape(1, condensed_channels * length, n)
    folded = F.fold(cols, (1, condensed_len), (1, length), stride=(1, sample_stride))
    return folded.reshape(condensed_channels, condensed_len)


def _padded(x: torch.Tensor, pads) -> tuple[torch.Tensor, int]:
    """conv1d pads both sides equally; 'same' with an even span pads one more on the right."""
    if pads[0] == pads[1]:
        return x, pads[0]
    return F.pad(x, (pads[0], pads[1])), 0


def conv_forward(x, condensed, bias, kernel_size, sample_stride, channel_repeat, stride, pads, dilation):
    """y by the framework's convolution on the sampled filter (autograd by torch: cuDNN's data
    and weight gradients, then col2im into the condensed filter)."""
    n = (condensed.shape[1] - kernel_size) // sample_stride + 1
    weight = sample_weight(condensed, n, kernel_size, sample_stride, channel_repeat)
    xp, pad = _padded(x, pads)
    return F.conv1d(xp, weight, bias, stride, pad, dilation)


def conv_backward(grad_output, x, condensed, kernel_size, sample_stride, channel_repeat, stride, pads,
                  dilation, output_mask):
    """(grad_input, grad_condensed, grad_bias) by the framework's convolution backward on the
    sampled filter; None where output_mask says the gradient is not needed."""
    n = grad_output.shape[1]
    weight = sample_weight(condensed, n, kernel_size, sample_stride, channel_repeat)
    xp, pad = _padded(x, pads)
    grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
        grad_output, xp, weight, [n] if output_mask[2] else None, [stride], [pad], [dilation], False, [0], 1,
        [output_mask[0], output_mask[1], output_mask[2]])
    if output_mask[0] and xp is not x:
        grad_x = grad_x[:, :, pads[0]:pads[0] + x.shape[2]]
    grad_c = condensed_grad(grad_w, condensed.shape[0], condensed.shape[1], sample_stride) if output_mask[1] else None
    return (grad_x if output_mask[0] else None, grad_c, grad_b if output_mask[2] else None)


def _kernel_backward(grad_output, x, condensed, options, output_mask):
    grads = _backward(grad_output, x, condensed, *options, list(output_mask))
    return tuple(g if wanted else None for g, wanted in zip(grads, output_mask))


class MixedConv1d(torch.autograd.Function):
    """Our kernel one way, the framework's convolution the other: forward_path and backward_path
    are "kernels" or "cudnn" (not both "cudnn": that is plain torch autograd on conv_forward)."""

    @staticmethod
    def forward(ctx, x, condensed, bias, forward_path, backward_path, kernel_size, sample_stride,
                channel_repeat, stride, pads, dilation):
        options = (kernel_size, sample_stride, channel_repeat, stride, list(pads), dilation)
        if forward_path == "kernels":
            y = _forward(x, condensed, bias, *options)
        else:
            y = conv_forward(x, condensed, bias, *options)
        ctx.save_for_backward(x, condensed)
        ctx.options, ctx.backward_path, ctx.has_bias = options, backward_path, bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_output):
        x, condensed = ctx.saved_tensors
        needs = ctx.needs_input_grad
        mask = (needs[0], needs[1], ctx.has_bias and needs[2])
        grad_output = grad_output.contiguous()
        if not any(mask):
            grads = (None, None, None)
        elif ctx.backward_path == "kernels":
            grads = _kernel_backward(grad_output, x, condensed, ctx.options, mask)
        else:
            grads = conv_backward(grad_output, x, condensed, *ctx.options, mask)
        return grads + (None,) * 8


def run(x, condensed, bias, options, forward_path: str, backward_path: str):
    """y = ws_conv1d(x, condensed, bias, *options) with the forward computed on `forward_path` and
    the gradients on `backward_path` (each "kernels" or "cudnn"); options = (kernel_size,
    sample_stride, channel_repeat, stride, [pad_left, pad_right], dilation)."""
    if forward_path == "cudnn" and backward_path == "cudnn":
        return conv_forward(x, condensed, bias, *options)
    return MixedConv1d.apply(x, condensed, bias, forward_path, backward_path, *options)
