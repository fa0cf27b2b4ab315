"""The host model of the fused CUDA strip backward (csrc/strips/host_model/ws_conv1d_strip_adjoint_model.cpp,
a test-only library built by tests/helpers.py), made of the same header as the kernel
(csrc/strips/ws_conv1d_strip_adjoint.h): grad_input and grad_condensed against autograd through the
definition, over the grid of every option, with the output mask, half types and NaN/Inf in
grad_output (the reduction's determinism is tested on the GPU)."""

import random
import zlib

import pytest
import torch

from helpers import FMA, GRID, GRID_IDS, TF32, TF32X3, assert_close_scaled, make_case, reference_conv1d, reference_grads
from helpers import run_adjoint_model as run_model


@pytest.mark.parametrize("precision", [FMA, TF32X3], ids=["fma", "3xtf32"])
@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", GRID,
                         ids=GRID_IDS)
def test_adjoint_model_matches_definition(sample_stride, repeat, stride, dilation, padding, precision):
    rng = random.Random(zlib.crc32(repr(("adjoint", sample_stride, repeat, stride, dilation, padding,
                                         precision)).encode()))
    kernel_size = rng.choice([1, 2, 3, 5, 8])
    needed = dilation * (kernel_size - 1) + 1
    spec = dict(batch=rng.choice([1, 3]), mc=rng.choice([1, 3, 5] if precision == FMA else [8, 11, 16, 40]),
                repeat=repeat,
                length=needed + rng.choice([0, 7, 40, 300]), out_channels=rng.choice([1, 5, 13]),
                kernel_size=kernel_size, sample_stride=sample_stride, bias=False)
    options = dict(kernel_size=kernel_size, sample_stride=sample_stride, channel_repeat=repeat, stride=stride,
                   padding=padding, dilation=dilation)
    (x, cond, _), (x32, cond32, _) = make_case(rng.randrange(1 << 30), **spec)
    y_shape = reference_conv1d(x, cond, None, **options).shape
    gy = torch.randn(y_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    small = 8 * 1024 if precision == FMA else 40 * 1024  # short strips in turn
    limits = dict(shared_limit=rng.choice([small, 96 * 1024]), max_grid=rng.choice([1, 3, 264]))
    gx, gc, stats = run_model(gy.float(), x32, cond32, **options, **limits, precision=precision)
    assert stats["unwritten"] == 0 and stats["nonfinite_blocks"] == 0 and stats["fragment_errors"] == 0, stats
    ex, ec = reference_grads(x, cond, gy, options)
    assert_close_scaled(gx, ex, torch.float32)
    assert_close_scaled(gc, ec, torch.float32)


def test_adjoint_output_mask():
    (x, cond, _), (x32, cond32, _) = make_case(4, batch=3, mc=16, repeat=4, length=2000, out_channels=32,
                                               kernel_size=32, sample_stride=4, bias=False)
    options = dict(kernel_size=32, sample_stride=4, channel_repeat=4, stride=1, padding=16, dilation=1)
    gy = torch.randn(reference_conv1d(x, cond, None, **options).shape, dtype=torch.float64)
    gx, gc, stats = run_model(gy.float(), x32, cond32, **options)
    assert stats["strips"] > 1 and stats["grid"] > 1
    ex, ec = reference_grads(x, cond, gy, options)
    assert_close_scaled(gx, ex, torch.float32)
    assert_close_scaled(gc, ec, torch.float32)
    # (determinism is the GPU kernel's to show: tests/test_cuda_strips.py runs it twice on the card;
    # this model is sequential, so a repeat here could not fail)
    only_input, no_cond, _ = run_model(gy.float(), x32, cond32, mask=(True, False, False), **options)
    assert torch.equal(only_input, gx) and not no_cond.any()  # the unneeded product is skipped
    no_input, only_cond, _ = run_model(gy.float(), x32, cond32, mask=(False, True, False), **options)
    assert torch.equal(only_cond, gc) and not no_input.any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_adjoint_half_types(dtype):
    (x, cond, _), (xh, condh, _) = make_case(3, batch=2, mc=8, repeat=2, length=333, out_channels=9,
                                             kernel_size=7, sample_stride=2, bias=False, dtype=dtype)
    options = dict(kernel_size=7, sample_stride=2, channel_repeat=2, stride=2, padding=1, dilation=2)
    gy = torch.randn(reference_conv1d(x, cond, None, **options).shape, dtype=torch.float64).to(dtype)
    gx, gc, _ = run_model(gy, xh, condh, **options)
    assert gx.dtype == gc.dtype == dtype
    ex, ec = reference_grads(xh.double(), condh.double(), gy.double(), options)
    assert_close_scaled(gx, ex, dtype)
    assert_close_scaled(gc, ec, dtype)


def test_adjoint_nan_and_inf_in_grad_output_follow_the_definition():
    """A running box sum would carry an Inf along its whole line (Inf - Inf = NaN): blocks that
    meet one make dP pointwise, so NaN and Inf land where autograd through conv1d puts them."""
    (x, cond, _), (x32, cond32, _) = make_case(6, batch=2, mc=2, repeat=1, length=600, out_channels=6,
                                               kernel_size=5, sample_stride=2, bias=False)
    options = dict(kernel_size=5, sample_stride=2, channel_repeat=1, stride=1, padding=2, dilation=1)
    gy = torch.randn(reference_conv1d(x, cond, None, **options).shape, dtype=torch.float64)
    gy[0, 2, 100] = float("inf")
    gy[1, 0, 400] = float("nan")
    gx, gc, stats = run_model(gy.float(), x32, cond32, **options, max_grid=264)
    assert stats["nonfinite_blocks"] >= 2
    ex, ec = reference_grads(x, cond, gy, options)
    for got, want in ((gx, ex), (gc, ec)):
        assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.equal(torch.isinf(got), torch.isinf(want))
        finite = torch.isfinite(want)
        assert_close_scaled(got[finite], want[finite], torch.float32)


@pytest.mark.parametrize("stride", [1, 2])
def test_adjoint_tf32_is_the_definition_on_tf32_operands(stride):
    """TF32 products: autograd through conv1d on TF32-rounded operands (C = 1: the fold is the
    input; dP sums of grad_output are rounded too, so the tolerance is TF32's), measurably not float32."""
    (x, cond, _), (x32, cond32, _) = make_case(8, batch=2, mc=16, repeat=1, length=700, out_channels=24,
                                               kernel_size=16, sample_stride=4, bias=False)
    options = dict(kernel_size=16, sample_stride=4, channel_repeat=1, stride=stride, padding=3, dilation=1)
    gy = torch.randn(reference_conv1d(x, cond, None, **options).shape, dtype=torch.float64)
    gx, gc, _ = run_model(gy.float(), x32, cond32, precision=TF32, **options)
    ex, ec = reference_grads(x, cond, gy, options)
    for got, want in ((gx, ex), (gc, ec)):
        err = (got.double() - want).abs().max() / want.abs().max()
        assert 1e-6 < err < 4e-3, err
    gx3, gc3, _ = run_model(gy.float(), x32, cond32, precision=TF32X3, **options)
    assert_close_scaled(gx3, ex, torch.float32)
    assert_close_scaled(gc3, ec, torch.float32)
