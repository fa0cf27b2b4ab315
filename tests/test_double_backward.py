"""Second derivatives (create_graph=True: gradient penalties, MAML, Hessian-vector products) of
ws_conv1d and the channel sampling, against torch's own checks in float64 on random data."""

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import wsnet_ext

F64 = dict(dtype=torch.float64)


@pytest.mark.parametrize("S,C,stride,padding,dilation,bias", [
    (2, 2, 2, 1, 1, True),    # a polyphase split on the CPU
    (3, 1, 1, 0, 2, False),
    (1, 3, 1, "same", 1, True),
    (4, 2, 2, 3, 3, True),
], ids=lambda v: str(v))
def test_ws_conv1d_gradgradcheck(S, C, stride, padding, dilation, bias):
    torch.manual_seed(0)
    L, Mc, N, T = 3, 2, 4, 17
    x = torch.randn(2, Mc * C, T, **F64, requires_grad=True)
    cond = torch.randn(Mc, L + (N - 1) * S, **F64, requires_grad=True)
    b = torch.randn(N, **F64, requires_grad=True) if bias else None
    inputs = (x, cond, b) if bias else (x, cond)

    def f(x, cond, b=None):
        return wsnet_ext.ws_conv1d(x, cond, b, kernel_size=L, sample_stride=S, channel_repeat=C,
                                   stride=stride, padding=padding, dilation=dilation)
    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


def test_gradient_penalty_matches_the_definition():
    # d/dparams of |d loss / d x|^2: needs every second-order term of the backward op
    torch.manual_seed(1)
    x = torch.randn(3, 4, 29, **F64, requires_grad=True)
    cond = torch.randn(2, 5 + 7 * 2, **F64, requires_grad=True)
    bias = torch.randn(8, **F64, requires_grad=True)
    options = dict(kernel_size=5, sample_stride=2, channel_repeat=2, stride=2, padding=2)

    def penalty(y):
        (gx,) = torch.autograd.grad((y.sin()).sum(), x, create_graph=True)
        return gx.square().sum()

    ours = torch.autograd.grad(penalty(wsnet_ext.ws_conv1d(x, cond, bias, **options)), [x, cond, bias])
    weight = wsnet_ext.sample_conv1d_weight(cond, 8, 5, 2, 2)
    reference = torch.autograd.grad(penalty(torch.nn.functional.conv1d(x, weight, bias, 2, 2)), [x, cond, bias])
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b)


def test_double_backward_warns_about_nothing():
    x = torch.randn(1, 2, 9, **F64, requires_grad=True)
    cond = torch.randn(2, 3 + 2, **F64, requires_grad=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the autograd fallback's "not differentiable" warning fails
        y = wsnet_ext.ws_conv1d(x, cond, kernel_size=3, sample_stride=1)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        gx.sum().backward()
    assert cond.grad is not None and cond.grad.abs().sum() > 0


@pytest.mark.parametrize("shape,N,S,C", [((7,), 3, 2, 1), ((5, 3, 3), 2, 1, 3), ((4, 2), 4, 1, 2)])
def test_sample_channels_gradgradcheck(shape, N, S, C):
    torch.manual_seed(2)
    cond = torch.randn(shape[0] + (N - 1) * S, *shape[1:], **F64, requires_grad=True)
    f = lambda c: wsnet_ext.sample_channels(c, N, S, C).sin()  # noqa: E731  (nonlinear: second terms)
    assert gradcheck(f, (cond,))
    assert gradgradcheck(f, (cond,))
