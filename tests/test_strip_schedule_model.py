"""The host model of the CUDA strip forward (csrc/cpu/ws_conv1d_strip_model.cpp), built from the
same header as the kernel (csrc/ws_conv1d_strips.h), against the definition over the grid of every
option: the strip schedule's index math (strips, halos, column tiles, MMA fragment maps, line walk,
register ring, TF32 rounding) is proven here on the CPU before any GPU run."""

import random
import zlib

import pytest
import torch

import wsnet_ext  # noqa: F401  (loads the ops)
from conftest import assert_close_scaled, reference_conv1d
from test_ws_conv1d_grid import GRID  # every option: the same grid as the CPU kernels' tests
from wsnet_ext._geometry import resolve_padding

MODEL = torch.ops.wsnet_ext.ws_conv1d_strip_model.default
FMA, TF32, TF32X3 = 0, 1, 2
STATS = ["To", "R", "strips", "lines", "ring", "shared_bytes", "conflicts_a", "conflicts_b",
         "conflicts_store", "conflicts_walk", "walk_reads", "unwritten", "output_errors",
         "fragment_errors", "nonfinite_strips", "filters", "groups", "window"]



def run_model(x, cond, bias, *, kernel_size, sample_stride, channel_repeat, stride, padding, dilation,
              precision, shared_limit=96 * 1024, multiprocessors=132):
    pads = list(resolve_padding(padding, kernel_size, dilation, stride))
    y, stats = MODEL(x, cond, bias, kernel_size, sample_stride, channel_repeat, stride, pads, dilation,
                     precision, shared_limit, multiprocessors)
    return y, dict(zip(STATS, stats.tolist()))


def assert_schedule_clean(stats):
    """No read of shared memory the tile did not write, every output exactly once, every MMA
    fragment element covered exactly once, no bank conflicts in the MMA's loads and stores."""
    assert stats["unwritten"] == 0 and stats["output_errors"] == 0 and stats["fragment_errors"] == 0, stats
    assert stats["conflicts_a"] == 0 and stats["conflicts_b"] == 0 and stats["conflicts_store"] == 0, stats


def make_case(seed, *, batch, mc, repeat, length, out_channels, kernel_size, sample_stride, bias,
              dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    lc = kernel_size + (out_channels - 1) * sample_stride
    x = torch.randn(batch, mc * repeat, length, generator=gen, dtype=torch.float64)
    cond = torch.randn(mc, lc, generator=gen, dtype=torch.float64)
    b = torch.randn(out_channels, generator=gen, dtype=torch.float64) if bias else None
    cast = [t.to(dtype) if t is not None else None for t in (x, cond, b)]
    return (x, cond, b), cast


def grid_case(case, precision):
    sample_stride, repeat, stride, dilation, padding = case
    rng = random.Random(zlib.crc32(repr((case, precision)).encode()))
    kernel_size = rng.choice([1, 2, 3, 5, 8])
    needed = dilation * (kernel_size - 1) + 1
    mc = rng.choice([1, 3, 5]) if precision == FMA else rng.choice([8, 11, 16])
    spec = dict(batch=rng.choice([1, 3]), mc=mc, repeat=repeat, length=needed + rng.choice([0, 7, 40, 300]),
                out_channels=rng.choice([1, 5, 6, 13]), kernel_size=kernel_size, sample_stride=sample_stride,
                bias=rng.random() < 0.5)
    options = dict(kernel_size=kernel_size, sample_stride=sample_stride, channel_repeat=repeat, stride=stride,
                   padding=padding, dilation=dilation)
    # small shared memory and few multiprocessors in turn: many short strips, or few long ones
    limits = dict(shared_limit=rng.choice([24 * 1024, 96 * 1024]), multiprocessors=rng.choice([1, 132]))
    return rng.randrange(1 << 30), spec, options, limits


@pytest.mark.parametrize("precision", [FMA, TF32X3], ids=["fma", "3xtf32"])
@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", GRID,
                         ids=["S{}-C{}-s{}-d{}-p{}".format(*case) for case in GRID])
def test_model_matches_definition(sample_stride, repeat, stride, dilation, padding, precision):
    seed, spec, options, limits = grid_case((sample_stride, repeat, stride, dilation, padding), precision)
    (x, cond, b), (x32, cond32, b32) = make_case(seed, **spec)
    y, stats = run_model(x32, cond32, b32, precision=precision, **options, **limits)
    assert_schedule_clean(stats)
    assert_close_scaled(y, reference_conv1d(x, cond, b, **options), torch.float32)


def tf32(t):
    """Round float32 to TF32 (10 mantissa bits, ties away from zero), as the kernel does."""
    bits = t.to(torch.float32).view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 3)])
def test_tf32_model_is_the_definition_on_tf32_operands(stride, dilation):
    """TF32 mode: exactly conv1d on TF32-rounded input and condensed filter (C = 1, so the fold
    is the input itself), up to float32 accumulation; and measurably not the float32 result."""
    (x, cond, b), (x32, cond32, b32) = make_case(7, batch=2, mc=16, repeat=1, length=400, out_channels=24,
                                                 kernel_size=16, sample_stride=4, bias=True)
    options = dict(kernel_size=16, sample_stride=4, channel_repeat=1, stride=stride, padding=3, dilation=dilation)
    y, stats = run_model(x32, cond32, b32, precision=TF32, **options)
    assert_schedule_clean(stats)
    rounded = reference_conv1d(tf32(x32).double(), tf32(cond32).double(), b, **options)
    assert_close_scaled(y, rounded, torch.float32)
    exact = reference_conv1d(x, cond, b, **options)
    assert (y.double() - exact).abs().max() > 30 * (y.double() - rounded).abs().max()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("precision,mc", [(FMA, 2), (TF32X3, 8)], ids=["fma", "3xtf32"])
def test_model_half_types(dtype, precision, mc):
    (x, cond, b), (xh, condh, bh) = make_case(3, batch=2, mc=mc, repeat=2, length=333, out_channels=9,
                                              kernel_size=7, sample_stride=2, bias=True, dtype=dtype)
    options = dict(kernel_size=7, sample_stride=2, channel_repeat=2, stride=2, padding=1, dilation=2)
    y, stats = run_model(xh, condh, bh, precision=precision, **options)
    assert y.dtype == dtype
    assert_schedule_clean(stats)
    expected = reference_conv1d(xh.double(), condh.double(), bh.double(), **options)
    assert_close_scaled(y, expected, dtype)


@pytest.mark.parametrize("precision,mc", [(FMA, 1), (TF32X3, 16)], ids=["fma", "3xtf32"])
def test_model_nan_and_inf_follow_conv1d(precision, mc):
    """A strip whose P holds NaN or Inf takes the definition, so NaN and Inf land where conv1d's do."""
    (x, cond, b), (x32, cond32, b32) = make_case(5, batch=2, mc=mc, repeat=1, length=300, out_channels=8,
                                                 kernel_size=5, sample_stride=3, bias=False)
    x32[0, 0, 17] = float("nan")
    x32[1, 0, 250] = float("inf")
    options = dict(kernel_size=5, sample_stride=3, channel_repeat=1, stride=1, padding=2, dilation=1)
    y, stats = run_model(x32, cond32, None, precision=precision, multiprocessors=1, **options)
    expected = reference_conv1d(x32.double(), cond32.double(), None, **options)
    assert stats["nonfinite_strips"] >= 2
    assert torch.equal(torch.isnan(y), torch.isnan(expected)) and torch.equal(torch.isinf(y), torch.isinf(expected))
    finite = torch.isfinite(expected)
    assert_close_scaled(y[finite], expected[finite], torch.float32)


def test_model_training_shapes_choose_long_strips():
    """SoundNet's conv2 and the benchmark's `long` layer at batch 64: strips of 100+ outputs,
    within two blocks' shared memory on an H200, and every line walked by one thread."""
    for mc, n, k, s_, c, stride, pad, length in [(16, 32, 32, 8, 1, 2, 16, 55142), (16, 128, 32, 4, 4, 1, 16, 16000)]:
        lc = k + (n - 1) * s_
        x = torch.randn(1, mc * c, length)
        cond = torch.randn(mc, lc)
        y, stats = run_model(x[:, :, :1200], cond, None, kernel_size=k, sample_stride=s_, channel_repeat=c,
                             stride=stride, padding=pad, dilation=1, precision=TF32X3, multiprocessors=1)
        assert_schedule_clean(stats)
        assert stats["To"] >= 100 and stats["shared_bytes"] <= 113 * 1024, stats
        assert stats["lines"] <= 3 * 256


@pytest.mark.parametrize("dtype,kernel_size,sample_stride,precision,message", [
    (torch.float64, 5, 1, FMA, "float64"),
    (torch.float32, 64, 1, FMA, "does not fit"),      # K = 64 open segments per line
    (torch.float32, 5, 1, TF32, "does not fit"),      # Mc = 2 < 8 takes the FMA path, not the MMA
])
def test_model_refuses_what_the_kernel_does_not_take(dtype, kernel_size, sample_stride, precision, message):
    x = torch.randn(1, 2, 200, dtype=dtype)
    cond = torch.randn(2, kernel_size + 3 * sample_stride, dtype=dtype)
    with pytest.raises(RuntimeError, match=message):
        run_model(x, cond, None, kernel_size=kernel_size, sample_stride=sample_stride, channel_repeat=1,
                  stride=1, padding=0, dilation=1, precision=precision)


@pytest.mark.parametrize("stride,sample_stride,kernel_size,padding,length", [
    (2, 8, 64, 32, 5000),   # SoundNet's conv1: line step 2, ring 8
    (1, 3, 5, 2, 777),      # line step 1
    (2, 2, 7, 0, 1201),     # line step 2, odd kernel
])
def test_register_window_walk_takes_single_channel_inputs(stride, sample_stride, kernel_size, padding, length):
    """Mc = 1, d = 1, s = gcd(s, S) <= 2: the register-window walk (stat 'window'), W lines per
    thread with a sliding window of f and the parked sums in shared memory, against the definition."""
    (x, cond, b), (x32, cond32, b32) = make_case(9, batch=2, mc=1, repeat=1, length=length, out_channels=16,
                                                 kernel_size=kernel_size, sample_stride=sample_stride, bias=True)
    options = dict(kernel_size=kernel_size, sample_stride=sample_stride, channel_repeat=1, stride=stride,
                   padding=padding, dilation=1)
    for multiprocessors in (1, 132):  # long strips, and short ones (margins and edges of every strip)
        y, stats = run_model(x32, cond32, b32, precision=FMA, multiprocessors=multiprocessors, **options)
        assert stats["window"] == 1 and stats["unwritten"] == 0 and stats["output_errors"] == 0, stats
        assert_close_scaled(y, reference_conv1d(x, cond, b, **options), torch.float32)
    # a repeat (Mc = 1 still) and a dilation (not the window: the one-line walk)
    _, stats = run_model(x32, cond32, b32, precision=FMA, **dict(options, dilation=2))
    assert stats["window"] == 0


@pytest.mark.parametrize("precision,mc,out_channels,sample_stride", [
    (TF32X3, 16, 1100, 1), (TF32X3, 8, 1500, 1), (FMA, 3, 1000, 1), (FMA, 4, 1000, 2)])
def test_model_with_filter_groups_and_bias_matches_definition(precision, mc, out_channels, sample_stride):
    """Many filters: the plan splits them into groups (a block per group), and the bias must be
    the global filter's (the kernel once added bias[n] of the in-group n; the shared
    strip_emit_output now writes every output for kernel and model alike)."""
    (x, cond, b), (x32, cond32, b32) = make_case(11, batch=2, mc=mc, repeat=2, length=150, out_channels=out_channels,
                                                 kernel_size=4, sample_stride=sample_stride, bias=True)
    b32 = b32 + 3.0  # far from zero: a bias of the wrong filter shows
    options = dict(kernel_size=4, sample_stride=sample_stride, channel_repeat=2, stride=2, padding=2, dilation=1)
    y, stats = run_model(x32, cond32, b32, precision=precision, **options)
    assert stats["groups"] > 1, stats
    assert_schedule_clean(stats)
    assert_close_scaled(y, reference_conv1d(x, cond, b.double() + 3.0, **options), torch.float32)
