"""WSConv2d, WSLinear and the channel-sampling op against their definitions (docs/design.md §3)."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import wsnet_ext

SAMPLE = torch.ops.wsnet_ext.ws_sample_channels.default
SAMPLE_BACKWARD = torch.ops.wsnet_ext.ws_sample_channels_backward.default


def reference_channel_weight(condensed, out_channels, sample_stride, channel_repeat):
    """weight[n, m] = condensed[n*S + m % Mc], element by element."""
    mc = condensed.shape[0] - (out_channels - 1) * sample_stride
    return torch.stack([torch.stack([condensed[n * sample_stride + m % mc] for m in range(mc * channel_repeat)])
                        for n in range(out_channels)])


@pytest.mark.parametrize("n,mc,s,c,kernel", [(1, 1, 1, 1, ()), (5, 3, 2, 2, (3, 3)), (7, 4, 1, 3, (2, 5)),
                                             (4, 2, 5, 1, ()), (6, 8, 3, 4, (1,))])
def test_sample_channels_matches_definition_and_backprops(n, mc, s, c, kernel):
    gen = torch.Generator().manual_seed(n * 10 + mc)
    cond = torch.randn(mc + (n - 1) * s, *kernel, generator=gen, dtype=torch.float64, requires_grad=True)
    cond_ref = cond.detach().clone().requires_grad_()
    w = wsnet_ext.sample_channels(cond, n, s, c)
    expected = reference_channel_weight(cond_ref, n, s, c)
    torch.testing.assert_close(w, expected)
    gw = torch.randn(expected.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(w, cond, gw)[0], torch.autograd.grad(expected, cond_ref, gw)[0])


def test_sample_channels_gradcheck_and_opcheck():
    cond = torch.randn(3 + 4 * 2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: wsnet_ext.sample_channels(t, 5, 2, 2), (cond,))
    torch.library.opcheck(SAMPLE, (cond, 5, 2, 2))
    torch.library.opcheck(SAMPLE, (cond.detach(), 5, 2, 2))
    torch.library.opcheck(SAMPLE_BACKWARD, (torch.randn(5, 6, 2, 3, dtype=torch.float64), 11, 2, 2))


def test_sample_channels_backward_is_deterministic():
    cond = torch.randn(40 + 63 * 1, 3, 3)
    gw = torch.randn(64, 80, 3, 3)
    results = [SAMPLE_BACKWARD(gw, cond.shape[0], 1, 2) for _ in range(3)]
    for r in results[1:]:
        assert torch.equal(r, results[0])


CONV2D_GRID = list(itertools.product([1, 2, 3], [1, 2, 4], [1, 2], [0, 1, "same", "valid"], [1, 2]))


@pytest.mark.parametrize("s,c,stride,padding,dilation", [g for g in CONV2D_GRID if not (g[3] == "same" and g[2] != 1)])
def test_wsconv2d_matches_conv2d_on_sampled_weight(s, c, stride, padding, dilation):
    torch.manual_seed(s * 100 + c * 10 + stride)
    layer = wsnet_ext.WSConv2d(4 * c, 5, (3, 2), sample_stride=s, channel_repeat=c, stride=stride,
                               padding=padding, dilation=dilation, bias=(s % 2 == 1), dtype=torch.float64)
    x = torch.randn(2, 4 * c, 11, 9, dtype=torch.float64, requires_grad=True)
    cond_ref = layer.condensed.detach().clone().requires_grad_()
    weight_ref = reference_channel_weight(cond_ref, 5, s, c)
    y = layer(x)
    y_ref = F.conv2d(x, weight_ref, layer.bias, layer.stride, layer.padding, layer.dilation)
    torch.testing.assert_close(y, y_ref)
    gy = torch.randn_like(y)
    gx, gc = torch.autograd.grad(y, (x, layer.condensed), gy)
    gx_ref, gc_ref = torch.autograd.grad(y_ref, (x, cond_ref), gy)
    torch.testing.assert_close(gx, gx_ref)
    torch.testing.assert_close(gc, gc_ref)


@pytest.mark.parametrize("m,n,s,c", [(1, 1, 1, 1), (7, 3, 2, 1), (12, 10, 3, 4), (100, 17, 7, 5)])
def test_wslinear_matches_linear_on_sampled_weight(m, n, s, c):
    torch.manual_seed(m + n)
    layer = wsnet_ext.WSLinear(m, n, sample_stride=s, channel_repeat=c, dtype=torch.float64)
    x = torch.randn(3, 2, m, dtype=torch.float64)
    cond_ref = layer.condensed.detach().clone().requires_grad_()
    y_ref = F.linear(x, reference_channel_weight(cond_ref, n, s, c), layer.bias)
    y = layer(x)
    torch.testing.assert_close(y, y_ref)
    gy = torch.randn_like(y)
    torch.testing.assert_close(torch.autograd.grad(y, layer.condensed, gy)[0], torch.autograd.grad(y_ref, cond_ref, gy)[0])


def test_compactness_and_init_scale():
    layer = wsnet_ext.WSConv2d(64, 128, 3, sample_stride=2, channel_repeat=4)
    assert layer.condensed.shape == (16 + 127 * 2, 3, 3)
    assert layer.compactness == pytest.approx(128 * 64 / (16 + 127 * 2))
    assert layer.condensed.abs().max() <= 1 / (64 * 9) ** 0.5
    lin = wsnet_ext.WSLinear(784, 1000, sample_stride=1, channel_repeat=8)
    assert lin.compactness == pytest.approx(784 * 1000 / (98 + 999))
    assert lin.weight.shape == (1000, 784) and lin.in_features == 784 and lin.out_features == 1000
    assert "compactness=" in repr(lin) and "sample_stride=2" in repr(layer)


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_channels=6, channel_repeat=4), "in_channels expects a multiple of channel_repeat=4, got 6"),
    (dict(padding="full"), "padding expects an int >= 0, a tuple, 'same' or 'valid', got 'full'"),
    (dict(padding="same", stride=2), "padding='same' expects stride=1"),
    (dict(sample_stride=0), "sample_stride expects an int >= 1, got 0"),
])
def test_wsconv2d_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        wsnet_ext.WSConv2d(**{**dict(in_channels=8, out_channels=4, kernel_size=3), **kwargs})


def test_sample_channels_bad_length():
    with pytest.raises(ValueError, match=r"condensed expects at least .* = 9 rows, got shape \(8, 3\)"):
        wsnet_ext.sample_channels(torch.randn(8, 3), 5, 2)


def test_compile_fullgraph_channel_sampled():
    torch.manual_seed(0)
    model = torch.nn.Sequential(wsnet_ext.WSConv2d(4, 6, 3, sample_stride=1, channel_repeat=2, padding=1),
                                torch.nn.Flatten(), wsnet_ext.WSLinear(6 * 25, 3, sample_stride=2, channel_repeat=3))
    x = torch.randn(2, 4, 5, 5)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), model(x))
