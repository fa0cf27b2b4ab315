"""The hardening checks of the CPU path, repeated on the GPU: gradcheck/opcheck, NaN/Inf, determinism,
autocast, torch.compile, and a forward whose inner-product map would pass 2^31 elements.
These need a GPU and skip without one."""

import pytest
import torch
import torch.nn.functional as F

import wsnet_ext
from helpers import assert_close_scaled, reference_conv1d
from helpers import BACKWARD, FORWARD
from helpers import EXTREME_OPTIONS as OPTIONS
from helpers import OP_CONFIGS as CONFIGS
from helpers import assert_same_nonfinite
from helpers import extreme_data as data
from helpers import op_args as make_args

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
              pytest.mark.usefixtures("our_cuda_kernels")]


@pytest.fixture(autouse=True)
def no_tf32():
    """References run through cuDNN/cuBLAS: keep them in full float32 (cuDNN defaults to TF32)."""
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        yield


@pytest.mark.parametrize("config", CONFIGS[:3])
def test_gradcheck_cuda(config):
    x, cond, bias, k, s_samp, c, stride, padding, dilation = make_args(config, True, "cuda")
    inputs = (x, cond) + ((bias,) if bias is not None else ())
    def fn(*tensors):
        return FORWARD(tensors[0], tensors[1], tensors[2] if len(tensors) > 2 else None, k, s_samp, c,
                       stride, padding, dilation)
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("config", CONFIGS)
def test_opcheck_cuda(config):
    args = make_args(config, True, "cuda")
    torch.library.opcheck(FORWARD, args)
    x, cond, bias, k, s_samp, c, stride, padding, dilation = make_args(config, False, "cuda")
    gy = torch.randn_like(FORWARD(x, cond, bias, k, s_samp, c, stride, padding, dilation))
    for mask in ([True, True, True], [False, True, False]):
        torch.library.opcheck(BACKWARD, (gy, x, cond, k, s_samp, c, stride, padding, dilation, mask))


def test_channel_sampling_opcheck_cuda():
    cond = torch.randn(3 + 4 * 2, 2, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.wsnet_ext.ws_sample_channels.default, (cond, 5, 2, 2))
    grad_weight = torch.randn(5, 6, 2, 3, dtype=torch.float64, device="cuda")
    torch.library.opcheck(torch.ops.wsnet_ext.ws_sample_channels_backward.default, (grad_weight, 11, 2, 2))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_input_cuda(value):
    x, cond, bias = data()
    x[0, 1, 1234] = value
    x[1, 3, 7] = value
    actual = wsnet_ext.ws_conv1d(x.cuda(), cond.cuda(), bias.cuda(), **OPTIONS).cpu()
    assert_same_nonfinite(actual, reference_conv1d(x, cond, bias, **OPTIONS))


def test_nonfinite_grad_output_cuda():
    x, cond, bias = data(2, length=600)
    leaves = [t.cuda().requires_grad_() for t in (x, cond, bias)]
    leaves_ref = [t.clone().requires_grad_() for t in (x, cond, bias)]
    y = wsnet_ext.ws_conv1d(*leaves, **OPTIONS)
    y_ref = reference_conv1d(*leaves_ref, **OPTIONS)
    gy = torch.randn_like(y_ref)
    gy[1, 3, 100] = float("nan")
    for a, e in zip(torch.autograd.grad(y, leaves, gy.cuda()), torch.autograd.grad(y_ref, leaves_ref, gy)):
        assert_same_nonfinite(a.cpu(), e)


def test_deterministic_cuda():
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(16, 32, 32, sample_stride=4, channel_repeat=2, stride=2, padding=16, device="cuda")
    x = torch.randn(4, 16, 6890, device="cuda")
    runs = []
    for _ in range(2):
        y = layer(x)
        runs.append([y] + list(torch.autograd.grad(y.square().sum(), [layer.condensed, layer.bias])))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_autocast_cuda_like_conv1d(dtype):
    layer = wsnet_ext.WSConv1d(8, 12, 5, sample_stride=2, channel_repeat=2, padding=2, device="cuda")
    x = torch.randn(2, 8, 301, device="cuda")
    weight = wsnet_ext.sample_conv1d_weight(layer.condensed, 12, 5, 2, 2)
    with torch.autocast("cuda", dtype=dtype):
        y = layer(x)
        expected = F.conv1d(x, weight, layer.bias, padding=2)
    assert y.dtype == expected.dtype == dtype
    assert_close_scaled(y.float(), expected.float(), dtype)
    y.float().sum().backward()
    assert layer.condensed.grad.dtype == torch.float32 and torch.isfinite(layer.condensed.grad).all()


def test_compile_inductor_cuda():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        wsnet_ext.WSConv1d(4, 8, 5, sample_stride=2, channel_repeat=2, stride=2, padding=2),
        torch.nn.ReLU(), wsnet_ext.WSConv1d(8, 6, 3, padding="same", channel_repeat=4)).cuda()
    x = torch.randn(3, 4, 45, device="cuda")
    eager = model(x)
    eager_grads = torch.autograd.grad(eager.sum(), list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    grads = torch.autograd.grad(out.sum(), list(model.parameters()))
    torch.testing.assert_close(out, eager)
    for a, e in zip(grads, eager_grads):
        torch.testing.assert_close(a, e)


def test_inner_product_map_past_2_31_elements_cuda():
    # B * Tp * Lc = 64 * 200008 * 200 = 2.56e9 > 2^31: 64-bit offsets in every kernel, backward too
    batch, length, kernel, step, n = 64, 200_000, 8, 8, 25
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, length, generator=gen)
    cond = torch.randn(1, 200, generator=gen)
    xc, cc = x.cuda().requires_grad_(), cond.cuda().requires_grad_()
    y = wsnet_ext.ws_conv1d(xc, cc, kernel_size=kernel, sample_stride=step, stride=4, padding=4)
    weight = wsnet_ext.sample_conv1d_weight(cond.double(), n, kernel, step)
    for b in (0, 37, 63):
        for start in (0, 123_456, length - 1000):
            window = F.pad(x[b:b + 1].double(), (4, 4))[..., start: start + 1000 + kernel]
            expected = F.conv1d(window, weight, stride=4)
            actual = y[b:b + 1, :, start // 4: start // 4 + expected.shape[-1]].cpu()
            torch.testing.assert_close(actual.double(), expected, rtol=1e-4, atol=1e-4)
    gy = torch.randn_like(y)
    gx, gc = torch.autograd.grad(y, (xc, cc), gy)
    wc = wsnet_ext.sample_conv1d_weight(cc, n, kernel, step)
    y_ref = F.conv1d(xc, wc, stride=4, padding=4)
    gx_ref, gc_ref = torch.autograd.grad(y_ref, (xc, cc), gy)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gc, gc_ref, rtol=1e-3, atol=1e-3 * gc_ref.abs().max().item())


def test_input_and_output_tensors_past_2_31_elements_cuda():
    # the tensors themselves (not only the inner-product map) hold more than 2^31 elements:
    # x (1, 2, 2^30 + 4096) and y (1, 2, ~2^30) in float16, 64-bit offsets in every kernel
    length = 2 ** 30 + 4096
    torch.manual_seed(0)
    x = torch.randn(1, 2, length, device="cuda", dtype=torch.float16)
    assert x.numel() > 2 ** 31
    cond = torch.randn(1, 3 + 2, device="cuda", dtype=torch.float16)  # N = 2, L = 3, S = 2, C = 2
    y = wsnet_ext.ws_conv1d(x, cond, kernel_size=3, sample_stride=2, channel_repeat=2, padding=1)
    assert y.shape == (1, 2, length)
    weight = wsnet_ext.sample_conv1d_weight(cond.float(), 2, 3, 2, 2)
    for start in (0, 2 ** 30 - 17, length - 700):  # windows across the 2^31-element boundary of x
        window = F.pad(x.float(), (1, 1))[..., start: start + 700 + 2]
        expected = F.conv1d(window, weight)
        torch.testing.assert_close(y[..., start: start + expected.shape[-1]].float(), expected,
                                   rtol=2e-2, atol=2e-2)
    del x, y
    torch.cuda.empty_cache()
