"""ws_conv1d under every grad mode a user runs it in: no_grad and inference_mode (inference, which
skips torch.library's Python autograd), grad enabled with frozen tensors (a model evaluated without
no_grad), training, and create_graph=True. Each against the definition (conv1d on the sampled
filter), float64, odd sizes, a nonzero bias."""

import pytest
import torch

import wsnet_ext
from helpers import assert_close_scaled, make_case, reference_conv1d

OPTIONS = dict(kernel_size=5, sample_stride=3, channel_repeat=3, stride=2, padding=3, dilation=2)


def data(seed=0):
    (x, cond, bias), _ = make_case(seed, batch=3, mc=2, repeat=3, length=41, out_channels=7,
                                   kernel_size=5, sample_stride=3, bias=True, dtype=torch.float64)
    return x, cond, bias


MODES = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode,
         "enable_grad": torch.enable_grad}


@pytest.mark.parametrize("mode", list(MODES))
def test_forward_without_gradients_matches_the_definition(mode):
    x, cond, bias = data()
    expected = reference_conv1d(x, cond, bias, **OPTIONS)
    with MODES[mode]():
        y = wsnet_ext.ws_conv1d(x, cond, bias, **OPTIONS)
    assert not y.requires_grad and y.grad_fn is None
    assert_close_scaled(y, expected, torch.float64)


def test_output_made_under_no_grad_enters_a_later_graph():
    """A no_grad output is an ordinary tensor: it can be saved by a later autograd graph."""
    x, cond, bias = data(1)
    with torch.no_grad():
        y = wsnet_ext.ws_conv1d(x, cond, bias, **OPTIONS)
    scale = torch.randn(y.shape[1], 1, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad((y * y * scale).sum(), scale)
    torch.testing.assert_close(grad, (y * y).sum((0, 2))[:, None])


@pytest.mark.parametrize("create_graph", [False, True])
def test_gradients_match_the_definition_with_and_without_create_graph(create_graph):
    x, cond, bias = data(2)
    leaves = [t.clone().requires_grad_() for t in (x, cond, bias)]
    refs = [t.clone().requires_grad_() for t in (x, cond, bias)]
    gy = torch.randn(reference_conv1d(x, cond, bias, **OPTIONS).shape, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(3))
    actual = torch.autograd.grad(wsnet_ext.ws_conv1d(*leaves, **OPTIONS), leaves, gy,
                                 create_graph=create_graph)
    expected = torch.autograd.grad(reference_conv1d(*refs, **OPTIONS), refs, gy, create_graph=create_graph)
    for a, e in zip(actual, expected):
        assert a.requires_grad == create_graph
        assert_close_scaled(a, e, torch.float64)
    if create_graph:  # the second derivative goes through the backward op's registered autograd
        second = torch.autograd.grad(sum((a * a).sum() for a in actual), leaves[1])[0]
        second_ref = torch.autograd.grad(sum((e * e).sum() for e in expected), refs[1])[0]
        assert_close_scaled(second, second_ref, torch.float64)


@pytest.mark.parametrize("frozen", ["input", "condensed"])
def test_with_one_leaf_frozen_the_other_gets_the_right_gradient(frozen):
    x, cond, bias = data(4)
    x_ = x.clone().requires_grad_(frozen != "input")
    c_ = cond.clone().requires_grad_(frozen != "condensed")
    wanted = c_ if frozen == "input" else x_
    y = wsnet_ext.ws_conv1d(x_, c_, bias, **OPTIONS)
    assert y.requires_grad
    (grad,) = torch.autograd.grad(y.square().sum(), wanted)
    ref_leaf = wanted.detach().clone().requires_grad_()
    ref = reference_conv1d(*((x, ref_leaf) if frozen == "input" else (ref_leaf, cond)), bias, **OPTIONS)
    (expected,) = torch.autograd.grad(ref.square().sum(), ref_leaf)
    assert_close_scaled(grad, expected, torch.float64)


def reference_channel_weight(condensed, out_channels, sample_stride, channel_repeat):
    """weight[n, m, ...] = condensed[n*S + m % Mc, ...] (docs/design.md §3), entry by entry."""
    mc = condensed.shape[0] - (out_channels - 1) * sample_stride
    return torch.stack([torch.stack([condensed[n * sample_stride + m % mc]
                                     for m in range(mc * channel_repeat)]) for n in range(out_channels)])


@pytest.mark.parametrize("mode", list(MODES))
def test_sample_channels_without_gradients_matches_the_definition(mode):
    condensed = torch.randn(5 + 6 * 2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with MODES[mode]():
        weight = wsnet_ext.sample_channels(condensed, 7, 2, channel_repeat=3)
    assert not weight.requires_grad
    torch.testing.assert_close(weight, reference_channel_weight(condensed, 7, 2, 3), rtol=0, atol=0)


@pytest.mark.parametrize("mode", list(MODES))
def test_hashed_weight_without_gradients_matches_the_definition(mode):
    """HashNet's virtual weight V = xi * w[h]: [w; -w] indexed by the layer's own hash."""
    layer = wsnet_ext.HashedLinear(13, 7, compression=4.0, dtype=torch.float64)
    if mode == "enable_grad":
        layer.requires_grad_(False)  # a frozen layer: no gradient wanted with grad mode on
    signed = torch.cat([layer.real_weight.detach(), -layer.real_weight.detach()])
    with MODES[mode]():
        weight = layer.weight
    assert not weight.requires_grad
    torch.testing.assert_close(weight, signed[layer.hash_index], rtol=0, atol=0)
