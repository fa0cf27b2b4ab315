"""wsnetify, hashify, materialize, summary and the model zoo."""

import pytest
import torch
from torch import nn

import wsnet_ext
from wsnet_ext.convert import choose_sampling


def plain_model():
    return nn.Sequential(nn.Conv1d(1, 16, 64, stride=2, padding=32), nn.ReLU(),
                         nn.Conv1d(16, 32, 32, stride=2, padding=16), nn.ReLU(),
                         nn.AdaptiveAvgPool1d(4), nn.Flatten(), nn.Linear(128, 10))


@pytest.mark.parametrize("target", [2, 4, 8, 16])
def test_wsnetify_reaches_target_within_granularity(target):
    torch.manual_seed(0)
    model = plain_model()
    x = torch.randn(2, 1, 500)
    shapes_before = model(x).shape
    report = wsnetify_report = wsnet_ext.wsnetify(model, target)
    assert model(x).shape == shapes_before
    for row in report:
        if row["new_type"] is None:
            continue
        layer = model.get_submodule(row["name"])
        assert layer.compactness == pytest.approx(row["compactness"])
        # no other (S, C) the layer allows is closer to the target than the chosen one
        best = choose_sampling(nn.Conv1d(16, 32, 32) if row["name"] == "2" else
                               nn.Conv1d(1, 16, 64) if row["name"] == "0" else nn.Linear(128, 10), target)
        assert row["compactness"] == pytest.approx(best[2])
        assert abs(row["compactness"] / target - 1) <= 0.5
    assert any(r["new_type"] for r in wsnetify_report)


def test_wsnetify_skips_what_it_cannot_sample():
    model = nn.Sequential(nn.Conv1d(4, 8, 3, groups=2), nn.Conv2d(1, 4, 3), nn.Linear(4, 4))
    report = {r["name"]: r for r in wsnet_ext.wsnetify(model, 64)}
    assert report["0"]["new_type"] is None and "groups=2" in report["0"]["reason"]
    assert report["1"]["new_type"] is None and "off target" in report["1"]["reason"]
    assert isinstance(model[0], nn.Conv1d) and isinstance(model[1], nn.Conv2d)


def test_wsnetify_projection_is_exact_for_a_sampled_weight():
    # a plain conv whose weight already is a sampled filter of the (S, C) wsnetify will choose
    # is reproduced exactly by the least-squares projection
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv1d(4, 6, 5, padding=2, dtype=torch.float64))
    s, c, achieved = choose_sampling(plain[0], 3.0)
    ws = wsnet_ext.WSConv1d(4, 6, 5, sample_stride=s, channel_repeat=c, padding=2, dtype=torch.float64)
    with torch.no_grad():
        plain[0].weight.copy_(ws.weight)
        plain[0].bias.copy_(ws.bias)
    x = torch.randn(2, 4, 30, dtype=torch.float64)
    expected = plain(x)
    wsnet_ext.wsnetify(plain, 3.0)
    assert isinstance(plain[0], wsnet_ext.WSConv1d)
    assert (plain[0].sample_stride, plain[0].channel_repeat) == (s, c)
    torch.testing.assert_close(plain[0].condensed, ws.condensed)
    torch.testing.assert_close(plain(x), expected)


@pytest.mark.parametrize("convert", ["ws", "hashed"])
def test_materialize_keeps_outputs_and_exports(convert):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 8, 5, padding=2), nn.ReLU(), nn.Conv1d(8, 8, 3, padding="same"),
                          nn.Flatten(), nn.Linear(8 * 20, 16), nn.ReLU(),
                          nn.Unflatten(1, (4, 2, 2)), nn.Conv2d(4, 6, 2))
    if convert == "ws":
        wsnet_ext.wsnetify(model, 2, init="random", tolerance=2)
    else:
        wsnet_ext.hashify(model, 4)
    assert any(isinstance(m, wsnet_ext.convert.WS_TYPES + wsnet_ext.convert.HASHED_TYPES) for m in model.modules())
    x = torch.randn(3, 2, 20)
    expected = model(x)
    wsnet_ext.materialize(model)
    assert not any(isinstance(m, wsnet_ext.convert.WS_TYPES + wsnet_ext.convert.HASHED_TYPES) for m in model.modules())
    torch.testing.assert_close(model(x), expected)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), expected)


def test_summary_counts_by_hand():
    model = nn.Sequential(wsnet_ext.WSConv1d(4, 6, 5, sample_stride=2, channel_repeat=2, stride=2),
                          nn.BatchNorm1d(6), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                          wsnet_ext.HashedLinear(6, 3, compression=4), nn.Linear(3, 2))
    s = wsnet_ext.summary(model, torch.randn(1, 4, 21))
    ws, bn, lin = s.layers[0], model[1], s.layers[2]
    # WSConv1d: condensed (2, 5 + 5*2) + bias 6; plain 6*4*5 + 6
    assert (ws.params, ws.plain_params) == (2 * 15 + 6, 120 + 6)
    assert ws.compactness == pytest.approx(120 / 30)
    assert ws.length == 21 and ws.macs == 21 * 15 * 2 and ws.plain_macs == 9 * 6 * 4 * 5
    assert ws.speedup == pytest.approx(ws.plain_macs / ws.macs)
    hashed = s.layers[1]
    assert (hashed.params, hashed.plain_params) == (5 + 3, 18 + 3)
    assert (lin.params, lin.plain_params, lin.compactness) == (8, 8, 1.0)
    assert s.other_params == 12  # batch norm's weight and bias
    assert s.total_params == 36 + 8 + 8 + 12
    assert s.total_plain_params == 126 + 21 + 8 + 12
    assert "WSConv1d" in str(s) and "total" in str(s)


@pytest.mark.parametrize("variant,compression", [("plain", None), ("ws", 8), ("hashed", 8)])
def test_models_run_and_reach_their_compression(variant, compression):
    torch.manual_seed(0)
    cases = [(wsnet_ext.models.soundnet(5, variant, compression), torch.randn(2, 1, 4000)),
             (wsnet_ext.models.mlp(64, 10, variant, compression), torch.randn(3, 64)),
             (wsnet_ext.models.cnn5(10, variant, compression, width=16), torch.randn(2, 3, 32, 32)),
             (wsnet_ext.models.cnn1d(10, variant, compression), torch.randn(4, 1, 40))]
    for model, x in cases:
        y = model(x)
        assert y.shape == (x.shape[0], y.shape[1]) and torch.isfinite(y).all()
        y.sum().backward()
        for row in wsnet_ext.summary(model).layers:
            if row.type.startswith(("WS", "Hashed")):
                assert abs(row.compactness / compression - 1) <= 0.5, row
            elif variant != "plain":
                assert row.name in ("0", "26") or row.type == "Linear", row


def test_models_reject_unknown_variant():
    with pytest.raises(ValueError, match="variant expects one of"):
        wsnet_ext.models.mlp(10, 2, "pruned", 4)
    with pytest.raises(ValueError, match="compression expects a number >= 1"):
        wsnet_ext.models.mlp(10, 2, "ws")
