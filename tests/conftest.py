"""Shared test helpers: the definition of WSConv1d that every kernel is compared against."""

import torch
import torch.nn.functional as F


# SoundNet's layers as the training protocol runs them (batch 64; benchmarks/training_protocol.py):
# name: (M, N, L, S, C, stride, pad, T)
TRAINING = {
    "conv1": (1, 16, 64, 8, 1, 2, 32, 110250), "conv2": (16, 32, 32, 4, 2, 2, 16, 6891),
    "conv3": (32, 64, 16, 2, 4, 2, 8, 431), "conv4": (64, 128, 8, 2, 4, 2, 4, 216),
    "conv5": (128, 256, 4, 1, 4, 2, 2, 109), "conv6": (256, 512, 4, 1, 4, 2, 2, 14),
    "conv7": (512, 1024, 4, 1, 4, 2, 2, 8), "long": (64, 128, 32, 4, 4, 1, 16, 16000),
}


def reference_weight(condensed, out_channels, kernel_size, sample_stride, channel_repeat):
    """W[n, m, l] = condensed[m % Mc, n*S + l], built slice by slice (docs/design.md §2)."""
    mc = condensed.shape[0]
    in_channels = mc * channel_repeat
    return torch.stack([
        torch.stack([condensed[m % mc, n * sample_stride: n * sample_stride + kernel_size]
                     for m in range(in_channels)])
        for n in range(out_channels)])


def reference_conv1d(x, condensed, bias, *, kernel_size, sample_stride, channel_repeat=1, stride=1,
                     padding=0, dilation=1):
    """The definition: conv1d on the sampled filter, autograd through the sampling."""
    n = (condensed.shape[1] - kernel_size) // sample_stride + 1
    w = reference_weight(condensed, n, kernel_size, sample_stride, channel_repeat)
    return F.conv1d(x, w, bias, stride=stride, padding=padding, dilation=dilation)


def tolerance(dtype):
    """(rtol, atol) against a float64 reference, relative to the output's scale."""
    return {torch.float64: (1e-10, 1e-10), torch.float32: (2e-5, 2e-5),
            torch.bfloat16: (2e-2, 2e-2), torch.float16: (4e-3, 4e-3)}[dtype]


def assert_close_scaled(actual, expected, dtype):
    """Compare with tolerances scaled by the largest magnitude of `expected`."""
    rtol, atol = tolerance(dtype)
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual.to(expected.dtype), expected, rtol=rtol, atol=atol * scale)


import pytest  # noqa: E402

import wsnet_ext  # noqa: E402


@pytest.fixture
def our_cuda_kernels():
    """CUDA tests of our kernels: both directions on them (cuda_path=kernels), not on whatever the
    path rule picks for the shape (tests/test_cuda_paths.py tests auto and every path)."""
    with wsnet_ext.switches.override(cuda_path="kernels"):
        yield
