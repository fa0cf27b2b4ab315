"""The host model of the CUDA strip forward (csrc/strips/host_model/ws_conv1d_strip_model.cpp, a
test-only library built by tests/helpers.py), made of the same header as the kernel
(csrc/strips/ws_conv1d_strips.h), against the definition over the grid of every option: the strip
schedule's index math (strips, halos, column tiles, MMA fragment maps, line walk, register ring,
TF32 rounding) is proven here on the CPU before any GPU run."""

import pytest
import torch

from helpers import FMA, GRID, GRID_IDS, TF32, TF32X3, assert_close_scaled, make_case, reference_conv1d, tf32
from helpers import run_strip_model as run_model
from helpers import strip_grid_case as grid_case


def assert_schedule_clean(stats):
    """No read of shared memory the tile did not write, every output exactly once, every MMA
    fragment element covered exactly once."""
    assert stats["unwritten"] == 0 and stats["output_errors"] == 0 and stats["fragment_errors"] == 0, stats


def test_tf32_rounding_on_hand_derived_values():
    """tf32() (the tests' reference for the kernels' rounding) on values worked out by hand: TF32
    keeps 10 of float32's 23 mantissa bits, so at 1.0 its step is 2**-10; halfway rounds away from
    zero; the exponent carries; subnormal bits below the kept ten are lost; NaN stays NaN. The GPU tests check it against the card's
    cvt.rna.tf32.f32 (test_cuda_strips.py)."""
    step = 2.0 ** -10
    cases = [(1.0, 1.0), (1 + step / 4, 1.0), (1 + step / 2, 1 + step), (-(1 + step / 2), -(1 + step)),
             (1 + 3 * step / 4, 1 + step), (1 + step + step / 2 - 2.0 ** -23, 1 + step),
             (2 - step / 2, 2.0), (2.0 ** -130, 2.0 ** -130), (3.0 * 2 ** -140, 0.0), (float("inf"), float("inf")),
             (1e-45, 0.0)]
    x = torch.tensor([c[0] for c in cases], dtype=torch.float32)
    expected = torch.tensor([c[1] for c in cases], dtype=torch.float32)
    assert torch.equal(tf32(x), expected), (tf32(x) - expected).tolist()
    assert tf32(torch.tensor([float("nan")])).isnan().all()


@pytest.mark.parametrize("precision", [FMA, TF32X3], ids=["fma", "3xtf32"])
@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", GRID,
                         ids=GRID_IDS)
def test_model_matches_definition(sample_stride, repeat, stride, dilation, padding, precision):
    seed, spec, options, limits = grid_case((sample_stride, repeat, stride, dilation, padding), precision)
    (x, cond, b), (x32, cond32, b32) = make_case(seed, **spec)
    y, stats = run_model(x32, cond32, b32, precision=precision, **options, **limits)
    assert_schedule_clean(stats)
    assert_close_scaled(y, reference_conv1d(x, cond, b, **options), torch.float32)


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
