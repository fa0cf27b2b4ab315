"""The opt-in CUDA strip kernels on a GPU (WSNET_CUDA_FORWARD=strips, WSNET_CUDA_ADJOINT=fused;
csrc/strips/cuda/): against the definition over the grid of every option, against their host
model (the same schedule, tested on the CPU in test_strip_schedule_model.py), in each precision
(walker FMAs, 3xTF32, TF32 following torch's switches), against the card's own TF32 rounding, in
half types, with NaN/Inf, and at training shapes. Skips without a GPU; scripts/gpu_check.sh runs it
with compute-sanitizer."""

import pytest
import torch

import wsnet_ext
from helpers import (FMA, GRID, GRID_IDS, TF32X3, TRAINING, assert_close_scaled, make_case, reference_conv1d,
                     reference_grads, run_strip_model, strip_grid_case, strip_shared_limit, tf32)

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
              pytest.mark.usefixtures("our_cuda_kernels")]


def strips(x, cond, b, precision_switch="0", **options):
    with wsnet_ext.switches.override(cuda_forward="strips", cuda_tf32=precision_switch):
        return wsnet_ext.ws_conv1d(x.cuda(), cond.cuda(), b.cuda() if b is not None else None, **options).cpu()


@pytest.mark.parametrize("precision", [FMA, TF32X3], ids=["fma", "3xtf32"])
@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", GRID, ids=GRID_IDS)
def test_strips_match_definition(sample_stride, repeat, stride, dilation, padding, precision):
    seed, spec, options, _ = strip_grid_case((sample_stride, repeat, stride, dilation, padding), precision)
    (x, cond, b), (x32, cond32, b32) = make_case(seed, **spec)
    assert_close_scaled(strips(x32, cond32, b32, **options), reference_conv1d(x, cond, b, **options), torch.float32)


@pytest.mark.parametrize("precision", [FMA, TF32X3], ids=["fma", "3xtf32"])
@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", GRID[::7], ids=GRID_IDS[::7])
def test_strips_match_their_host_model(sample_stride, repeat, stride, dilation, padding, precision):
    """The kernel and its host model under this card's limits: the same plan, the same numbers
    (the host models are built from this checkout: tests/helpers.py)."""
    seed, spec, options, _ = strip_grid_case((sample_stride, repeat, stride, dilation, padding), precision)
    _, (x32, cond32, b32) = make_case(seed, **spec)
    model, _ = run_strip_model(x32, cond32, b32, precision=precision, shared_limit=strip_shared_limit(),
                               multiprocessors=torch.cuda.get_device_properties(0).multi_processor_count, **options)
    assert_close_scaled(strips(x32, cond32, b32, **options), model.double(), torch.float32)


def test_tf32_rounding_is_the_cards():
    """The kernel's TF32 mode rounds with the card's cvt.rna.tf32.f32: through a condensed filter
    that picks one input value (a one-hot column, exact in TF32), the output is that value as the
    card rounded it; tests/helpers.py's tf32(), the reference of every TF32 test, must agree bit for
    bit, on random values and on the halfway cases."""
    mc, length = 8, 4096
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, mc, length, generator=gen) * torch.logspace(-30, 30, length)
    halfway = (1 + torch.arange(length // 4, dtype=torch.float64) * 2.0 ** -10 + 2.0 ** -11).float()
    x[0, 0, : length // 4] = halfway * torch.where(torch.arange(length // 4) % 2 == 0, 1.0, -1.0)
    cond = torch.zeros(mc, 1)
    cond[0, 0] = 1.0
    y = strips(x, cond, None, "1", kernel_size=1, sample_stride=1, channel_repeat=1, stride=1, padding=0,
               dilation=1)
    assert torch.equal(y[0, 0], tf32(x[0, 0])), (y[0, 0] - tf32(x[0, 0])).abs().max()
    assert not torch.equal(y[0, 0], x[0, 0])


def test_tf32_follows_torch_switch():
    (x, cond, b), (x32, cond32, b32) = make_case(7, batch=2, mc=16, repeat=1, length=400, out_channels=24,
                                                 kernel_size=16, sample_stride=4, bias=True)
    options = dict(kernel_size=16, sample_stride=4, channel_repeat=1, stride=1, padding=3, dilation=1)
    rounded = reference_conv1d(tf32(x32).double(), tf32(cond32).double(), b, **options)
    exact = reference_conv1d(x, cond, b, **options)
    before = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        assert_close_scaled(strips(x32, cond32, b32, "auto", **options), rounded, torch.float32)
        torch.backends.cudnn.allow_tf32 = False
        assert_close_scaled(strips(x32, cond32, b32, "auto", **options), exact, torch.float32)
    finally:
        torch.backends.cudnn.allow_tf32 = before
    assert_close_scaled(strips(x32, cond32, b32, "1", **options), rounded, torch.float32)
    assert_close_scaled(strips(x32, cond32, b32, "0", **options), exact, torch.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mc", [2, 8])
def test_strips_half_types(dtype, mc):
    (x, cond, b), (xh, condh, bh) = make_case(3, batch=2, mc=mc, repeat=2, length=333, out_channels=9,
                                              kernel_size=7, sample_stride=2, bias=True, dtype=dtype)
    options = dict(kernel_size=7, sample_stride=2, channel_repeat=2, stride=2, padding=1, dilation=2)
    y = strips(xh, condh, bh, **options)
    assert y.dtype == dtype
    assert_close_scaled(y, reference_conv1d(xh.double(), condh.double(), bh.double(), **options), dtype)


@pytest.mark.parametrize("mc", [1, 16])
def test_strips_nan_and_inf_follow_conv1d(mc):
    _, (x32, cond32, _) = make_case(5, batch=2, mc=mc, repeat=1, length=3000, out_channels=8, kernel_size=5,
                                    sample_stride=3, bias=False)
    x32[0, 0, 17] = float("nan")
    x32[1, 0, 2500] = float("inf")
    options = dict(kernel_size=5, sample_stride=3, channel_repeat=1, stride=1, padding=2, dilation=1)
    y = strips(x32, cond32, None, **options)
    expected = reference_conv1d(x32.double(), cond32.double(), None, **options)
    assert torch.equal(torch.isnan(y), torch.isnan(expected)) and torch.equal(torch.isinf(y), torch.isinf(expected))
    finite = torch.isfinite(expected)
    assert_close_scaled(y[finite], expected[finite], torch.float32)


@pytest.mark.parametrize("name", ["conv1", "conv2", "conv3", "conv7", "long"])  # conv7, long: filter groups
def test_strips_at_training_shapes(name):
    m, n, k, s, c, stride, pad, length = TRAINING[name]
    (x, cond, b), (x32, cond32, b32) = make_case(11, batch=2, mc=m // c, repeat=c, length=length, out_channels=n,
                                                 kernel_size=k, sample_stride=s, bias=True)
    options = dict(kernel_size=k, sample_stride=s, channel_repeat=c, stride=stride, padding=pad, dilation=1)
    assert_close_scaled(strips(x32, cond32, b32, **options), reference_conv1d(x, cond, b, **options), torch.float32)


def test_strips_gradients_and_float64_refusal():
    (x, cond, b), (x32, cond32, b32) = make_case(2, batch=2, mc=8, repeat=2, length=200, out_channels=5,
                                                 kernel_size=4, sample_stride=2, bias=True)
    options = dict(kernel_size=4, sample_stride=2, channel_repeat=2, stride=1, padding=1, dilation=1)
    leaves = [t.cuda().requires_grad_() for t in (x32, cond32, b32)]
    with wsnet_ext.switches.override(cuda_forward="strips", cuda_tf32="0"):
        y = wsnet_ext.ws_conv1d(*leaves, **options)
        y.square().sum().backward()
        with pytest.raises(RuntimeError, match="does not fit"):
            wsnet_ext.ws_conv1d(x.cuda(), cond.cuda(), b.cuda(), **options)  # float64: not this kernel
    ref_leaves = [t.clone().requires_grad_() for t in (x, cond, b)]
    reference_conv1d(*ref_leaves, **options).square().sum().backward()
    for leaf, ref in zip(leaves, ref_leaves):
        assert_close_scaled(leaf.grad.cpu(), ref.grad, torch.float32)


# ---- the fused backward (WSNET_CUDA_ADJOINT=fused; csrc/strips/cuda/ws_conv1d_strip_adjoint_kernel.cuh) ----

def fused_grads(x, cond, gy, options, need=(True, True)):
    leaves = [t.cuda().requires_grad_(n) for t, n in zip((x, cond), need)]
    with wsnet_ext.switches.override(cuda_adjoint="fused", cuda_tf32="0"):  # 3xTF32: float32 tolerances
        y = wsnet_ext.ws_conv1d(*leaves, None, **options)
        grads = torch.autograd.grad(y, [t for t in leaves if t.requires_grad], gy.cuda())
    return [g.cpu() for g in grads]


@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", GRID,
                         ids=GRID_IDS)
def test_fused_backward_matches_definition(sample_stride, repeat, stride, dilation, padding):
    seed, spec, options, _ = strip_grid_case((sample_stride, repeat, stride, dilation, padding), FMA)
    (x, cond, _), (x32, cond32, _) = make_case(seed, **dict(spec, bias=False))
    gy = torch.randn(reference_conv1d(x, cond, None, **options).shape, dtype=torch.float64)
    gx, gc = fused_grads(x32, cond32, gy.float(), options)
    ex, ec = reference_grads(x, cond, gy, options)
    assert_close_scaled(gx, ex, torch.float32)
    assert_close_scaled(gc, ec, torch.float32)


def test_fused_backward_is_deterministic_and_honours_the_mask():
    (x, cond, _), (x32, cond32, _) = make_case(4, batch=8, mc=16, repeat=4, length=16000, out_channels=128,
                                               kernel_size=32, sample_stride=4, bias=False)
    options = dict(kernel_size=32, sample_stride=4, channel_repeat=4, stride=1, padding=16, dilation=1)
    gy = torch.randn(reference_conv1d(x[:1], cond, None, **options).shape[1:], dtype=torch.float64).expand(8, -1, -1)
    first = fused_grads(x32, cond32, gy.float(), options)
    again = fused_grads(x32, cond32, gy.float(), options)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    ex, ec = reference_grads(x, cond, gy.contiguous(), options)
    assert_close_scaled(first[0], ex, torch.float32)
    assert_close_scaled(first[1], ec, torch.float32)
    only_cond = fused_grads(x32, cond32, gy.float(), options, need=(False, True))
    assert torch.equal(only_cond[0], first[1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_fused_backward_half_types(dtype):
    (x, cond, _), (xh, condh, _) = make_case(3, batch=2, mc=8, repeat=2, length=333, out_channels=9,
                                             kernel_size=7, sample_stride=2, bias=False, dtype=dtype)
    options = dict(kernel_size=7, sample_stride=2, channel_repeat=2, stride=2, padding=1, dilation=2)
    gy = torch.randn(reference_conv1d(x, cond, None, **options).shape, dtype=torch.float64).to(dtype)
    gx, gc = fused_grads(xh, condh, gy, options)
    ex, ec = reference_grads(xh.double(), condh.double(), gy.double(), options)
    assert_close_scaled(gx, ex, dtype)
    assert_close_scaled(gc, ec, dtype)


def test_fused_backward_nan_and_inf():
    (x, cond, _), (x32, cond32, _) = make_case(6, batch=2, mc=2, repeat=1, length=600, out_channels=6,
                                               kernel_size=5, sample_stride=2, bias=False)
    options = dict(kernel_size=5, sample_stride=2, channel_repeat=1, stride=1, padding=2, dilation=1)
    gy = torch.randn(reference_conv1d(x, cond, None, **options).shape, dtype=torch.float64)
    gy[0, 2, 100] = float("inf")
    gy[1, 0, 400] = float("nan")
    got = fused_grads(x32, cond32, gy.float(), options)
    for g, want in zip(got, reference_grads(x, cond, gy, options)):
        assert torch.equal(torch.isnan(g), torch.isnan(want)) and torch.equal(torch.isinf(g), torch.isinf(want))
        finite = torch.isfinite(want)
        assert_close_scaled(g[finite], want[finite], torch.float32)


def test_whole_soundnet_step_with_the_new_kernels_where_they_fit():
    """prefer_strips / prefer_fused: the new kernels wherever they fit (conv7's backward does not:
    the usual one runs there); a SoundNet training step matches the default kernels' step."""
    torch.manual_seed(0)
    model = wsnet_ext.models.soundnet(10, "ws", 10, allocate="uniform").cuda()
    x = torch.randn(2, 1, 22050, device="cuda")
    grads = []
    for switches in ({}, {"cuda_forward": "prefer_strips", "cuda_adjoint": "prefer_fused", "cuda_tf32": "0"}):
        model.zero_grad()
        with wsnet_ext.switches.override(**switches):
            model(x).square().sum().backward()
        grads.append([p.grad.detach().cpu().clone() for p in model.parameters()])
    for got, want in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, want, rtol=2e-3, atol=2e-3 * max(1.0, want.abs().max().item()))
