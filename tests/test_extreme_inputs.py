"""What users get wrong or push to the limit: NaN / Inf (propagate exactly as in conv1d), empty
and expanded tensors, and one forward whose whole inner-product map would pass 2^31 elements."""

import pytest
import torch
import torch.nn.functional as F

import wsnet_ext
from helpers import EXTREME_OPTIONS as OPTIONS
from helpers import assert_same_nonfinite, reference_conv1d
from helpers import extreme_data as data

@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_input_propagates_like_conv1d(value):
    x, cond, bias = data()
    x[0, 1, 1234] = value
    x[1, 3, 7] = value
    actual = wsnet_ext.ws_conv1d(x, cond, bias, **OPTIONS)
    expected = reference_conv1d(x, cond, bias, **OPTIONS)
    assert not torch.isfinite(expected).all()
    assert_same_nonfinite(actual, expected)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_condensed_propagates_like_conv1d(value):
    x, cond, bias = data(1, length=200)
    cond[1, 9] = value
    actual = wsnet_ext.ws_conv1d(x, cond, bias, **OPTIONS)
    assert_same_nonfinite(actual, reference_conv1d(x, cond, bias, **OPTIONS))


def test_nonfinite_grad_output_reaches_the_same_gradients():
    x, cond, bias = data(2, length=600)
    leaves = [t.clone().requires_grad_() for t in (x, cond, bias)]
    leaves_ref = [t.clone().requires_grad_() for t in (x, cond, bias)]
    y = wsnet_ext.ws_conv1d(*leaves, **OPTIONS)
    y_ref = reference_conv1d(*leaves_ref, **OPTIONS)
    gy = torch.randn_like(y)
    gy[1, 3, 100] = float("nan")
    for a, e in zip(torch.autograd.grad(y, leaves, gy), torch.autograd.grad(y_ref, leaves_ref, gy)):
        assert_same_nonfinite(a, e)


def test_zero_size_dimensions():
    x, cond, bias = data()
    empty_batch = wsnet_ext.ws_conv1d(x[:0].requires_grad_(), cond, bias, **OPTIONS)
    assert empty_batch.shape == (0, 8, 1500)
    with pytest.raises(ValueError, match="input expects length"):
        wsnet_ext.ws_conv1d(x[:, :, :0], cond, bias, **OPTIONS)
    with pytest.raises(ValueError, match="input expects at least one channel, got shape \\(2, 0, 3000\\)"):
        wsnet_ext.ws_conv1d(x[:, :0], cond[:0], bias, **OPTIONS)


def test_expanded_and_overlapping_inputs():
    x, cond, bias = data(3, length=100)
    expanded = x[:1].expand(5, -1, -1)  # stride 0 over the batch
    assert expanded.stride(0) == 0
    y = wsnet_ext.ws_conv1d(expanded, cond, bias, **OPTIONS)
    torch.testing.assert_close(y, reference_conv1d(expanded.contiguous(), cond, bias, **OPTIONS))
    overlapping = torch.randn(4 * 100 + 3, dtype=torch.float64).as_strided((2, 4, 100), (1, 100, 1))
    y = wsnet_ext.ws_conv1d(overlapping, cond, bias, **OPTIONS)
    torch.testing.assert_close(y, reference_conv1d(overlapping.contiguous(), cond, bias, **OPTIONS))


def test_inner_product_map_past_2_31_elements():
    # B * Tp * Lc = 64 * 200008 * 200 = 2.56e9 > 2^31: 64-bit index math, P never whole
    batch, length, kernel, step, n = 64, 200_000, 8, 8, 25
    assert kernel + (n - 1) * step == 200
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, length, generator=gen)
    cond = torch.randn(1, 200, generator=gen)
    y = wsnet_ext.ws_conv1d(x, cond, kernel_size=kernel, sample_stride=step, stride=4, padding=4)
    assert y.shape == (batch, n, (length + 8 - 8) // 4 + 1)
    weight = wsnet_ext.sample_conv1d_weight(cond.double(), n, kernel, step)
    for b in (0, 37, 63):  # the reference on sampled windows, far into the map
        for start in (0, 123_456, length - 1000):
            window = F.pad(x[b:b + 1].double(), (4, 4))[..., start: start + 1000 + kernel]
            expected = F.conv1d(window, weight, stride=4)
            actual = y[b:b + 1, :, start // 4: start // 4 + expected.shape[-1]]
            assert start % 4 == 0
            torch.testing.assert_close(actual.double(), expected, rtol=1e-4, atol=1e-4)
