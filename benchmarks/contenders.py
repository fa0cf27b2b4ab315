"""What a user would otherwise write, timed beside wsnet_ext.ws_conv1d."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import wsnet_ext


def materialized_conv1d(x, condensed, bias, shape):
    """Sample the filters, then the framework's conv1d (oneDNN on CPU, cuDNN on GPU)."""
    weight = wsnet_ext.sample_conv1d_weight(condensed, shape.out_channels, shape.kernel_size,
                                            shape.sample_stride, shape.channel_repeat)
    return F.conv1d(x, weight, bias, stride=shape.stride, padding=shape.padding)


def inner_product_torch(x, condensed, bias, shape):
    """The integral-image method's first steps in plain PyTorch: fold the channel repeats, P by
    matmul, then gather each output's L taps by indexing and sum them."""
    b, m, _ = x.shape
    xp = F.pad(x, (shape.padding, shape.padding))
    fold = xp.view(b, shape.channel_repeat, shape.condensed_channels, -1).sum(1)   # (B, Mc, Tp)
    p = torch.matmul(fold.transpose(1, 2), condensed)                               # (B, Tp, Lc)
    taps = torch.arange(shape.kernel_size, device=x.device)
    rows = (torch.arange(shape.out_len, device=x.device) * shape.stride)[:, None] + taps   # (T_out, L)
    cols = (torch.arange(shape.out_channels, device=x.device) * shape.sample_stride)[:, None] + taps  # (N, L)
    y = p[:, rows[None, :, :], cols[:, None, :]].sum(-1)                            # (B, N, T_out)
    return y + bias[:, None] if bias is not None else y


def ws_conv1d(x, condensed, bias, shape):
    return wsnet_ext.ws_conv1d(x, condensed, bias, kernel_size=shape.kernel_size,
                               sample_stride=shape.sample_stride, channel_repeat=shape.channel_repeat,
                               stride=shape.stride, padding=shape.padding)


CONTENDERS = {"wsnet_ext": ws_conv1d, "conv1d (materialized)": materialized_conv1d,
              "inner-product (PyTorch)": inner_product_torch}


def forward_call(fn, x, condensed, bias, shape):
    """A no-argument forward of contender `fn` on these inputs, under no_grad (what the suites time)."""
    def run():
        with torch.no_grad():
            return fn(x, condensed, bias, shape)
    return run


def train_call(fn, leaves, grad_output, shape):
    """A no-argument forward + backward of contender `fn` from the leaf tensors (x, condensed, bias),
    their gradients cleared first."""
    def run():
        for leaf in leaves:
            leaf.grad = None
        fn(*leaves, shape).backward(grad_output)
    return run
