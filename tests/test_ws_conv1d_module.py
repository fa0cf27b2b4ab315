"""WSConv1d: parameters, sampled weight, compactness, init scale, repr, state_dict."""

import math

import pytest
import torch
import torch.nn.functional as F

import wsnet_ext
from helpers import reference_weight


def test_parameter_shapes_and_weight():
    layer = wsnet_ext.WSConv1d(8, 6, 5, sample_stride=3, channel_repeat=4, dtype=torch.float64)
    assert layer.condensed.shape == (2, 5 + 5 * 3)
    assert layer.bias.shape == (6,)
    torch.testing.assert_close(layer.weight, reference_weight(layer.condensed, 6, 5, 3, 4))
    assert layer.weight.shape == (6, 8, 5)


def test_sample_conv1d_weight_matches_definition_and_backprops():
    cond = torch.randn(3, 4 + 6 * 2, dtype=torch.float64, requires_grad=True)
    w = wsnet_ext.sample_conv1d_weight(cond, 7, 4, 2, channel_repeat=2)
    torch.testing.assert_close(w, reference_weight(cond, 7, 4, 2, 2))
    w.sum().backward()
    # each condensed entry is used once per window that covers it, times the channel repeat
    covers = torch.zeros(16, dtype=torch.float64)
    for n in range(7):
        covers[n * 2:n * 2 + 4] += 1
    torch.testing.assert_close(cond.grad, (2 * covers).expand(3, 16))


def test_forward_equals_conv1d_on_weight():
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(4, 10, 7, sample_stride=2, channel_repeat=2, stride=2, padding=3,
                               dilation=2, dtype=torch.float64)
    x = torch.randn(3, 4, 77, dtype=torch.float64)
    torch.testing.assert_close(layer(x), F.conv1d(x, layer.weight, layer.bias, 2, 3, 2))


@pytest.mark.parametrize("m,n,k,s,c", [(1, 16, 64, 8, 1), (16, 32, 32, 4, 2), (128, 256, 4, 1, 4)])
def test_compactness_is_seed_eq_1(m, n, k, s, c):
    layer = wsnet_ext.WSConv1d(m, n, k, sample_stride=s, channel_repeat=c)
    expected = (k * m * n) / ((k + (n - 1) * s) * (m // c))
    assert layer.compactness == pytest.approx(expected)
    plain = m * n * k
    assert layer.condensed.numel() == pytest.approx(plain / layer.compactness)


def test_init_matches_plain_conv_scale():
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(32, 64, 9, sample_stride=2, channel_repeat=2)
    bound = 1 / math.sqrt(32 * 9)
    assert layer.condensed.abs().max() <= bound and layer.bias.abs().max() <= bound
    # uniform on ±bound has std bound/sqrt(3); the condensed filter is large enough to check it
    assert layer.condensed.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)


def test_no_bias_and_device_dtype():
    layer = wsnet_ext.WSConv1d(2, 3, 3, bias=False, device="cpu", dtype=torch.float64)
    assert layer.bias is None and layer.condensed.dtype == torch.float64
    assert "bias=False" in repr(layer)


def test_extra_repr():
    layer = wsnet_ext.WSConv1d(16, 32, 32, sample_stride=4, channel_repeat=2, stride=2, padding=16)
    text = repr(layer)
    assert text.startswith("WSConv1d(16, 32, kernel_size=(32,), stride=(2,), padding=(16,), sample_stride=4, "
                           "channel_repeat=2")
    assert f"compactness={layer.compactness:.2f}" in text


def test_state_dict_round_trip():
    a = wsnet_ext.WSConv1d(4, 5, 3, sample_stride=2, channel_repeat=2)
    b = wsnet_ext.WSConv1d(4, 5, 3, sample_stride=2, channel_repeat=2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, 30)
    torch.testing.assert_close(a(x), b(x))
    assert set(a.state_dict()) == {"condensed", "bias"}


def test_trains():
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(2, 4, 5, sample_stride=1, padding=2)
    target_layer = torch.nn.Conv1d(2, 4, 5, padding=2)
    x = torch.randn(16, 2, 50)
    target = target_layer(x).detach()
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = F.mse_loss(layer(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_output_length_formula_matches_conv1d():
    from wsnet_ext._geometry import conv_out_length
    for t in (1, 5, 17, 64):
        for k, s, p, d in [(3, 1, 0, 1), (4, 2, 1, 2), (5, 3, 2, 3), (1, 2, 0, 1)]:
            conv = torch.nn.Conv1d(1, 1, k, s, p, d)
            expected = conv(torch.zeros(1, 1, t)).shape[-1] if t + 2 * p >= d * (k - 1) + 1 else 0
            assert conv_out_length(t, 2 * p, d, k, s) == expected


def test_a_channel_repeat_makes_the_layer_see_only_channel_sums():
    """docs/design.md §7: with channel_repeat C the output depends on the input only through the
    Mc = M / C sums of channels m, m + Mc, ...; moving signal between such channels changes
    nothing, moving it between channels of different sums does."""
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(8, 6, 5, sample_stride=2, channel_repeat=4, padding=2)  # Mc = 2
    x = torch.randn(3, 8, 40)
    moved = x.clone()
    delta = torch.randn(3, 40)
    moved[:, 1] += delta   # channels 1 and 5 share sum j = 1
    moved[:, 5] -= delta
    torch.testing.assert_close(layer(moved), layer(x), atol=1e-5, rtol=1e-5)
    across = x.clone()
    across[:, 0] += delta  # channels 0 (sum j = 0) and 1 (sum j = 1)
    across[:, 1] -= delta
    assert (layer(across) - layer(x)).abs().max() > 1e-2
