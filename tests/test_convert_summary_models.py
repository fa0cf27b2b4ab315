"""wsnetify, hashify, materialize, summary and the model zoo."""

import copy
import math

import pytest
import torch
from torch import nn

import wsnet_ext
from wsnet_ext.convert import choose_sampling


def plain_model():
    return nn.Sequential(nn.Conv1d(1, 16, 64, stride=2, padding=32), nn.ReLU(),
                         nn.Conv1d(16, 32, 32, stride=2, padding=16), nn.ReLU(),
                         nn.AdaptiveAvgPool1d(4), nn.Flatten(), nn.Linear(128, 10))


def brute_force_sampling(layer, target, close=0.1, min_channel_sums=1):
    """choose_sampling's rule, written out independently: every (S, C) the layer allows (C leaving
    at least min(min_channel_sums, M) channel sums), the compactness computed from the parameter
    counts of the layers themselves."""
    if isinstance(layer, nn.Linear):
        m, n = layer.in_features, layer.out_features
        make = lambda s, c: wsnet_ext.WSLinear(m, n, sample_stride=s, channel_repeat=c)  # noqa: E731
        strides = range(1, max(m, n) + 1)
    else:
        m, n, k = layer.in_channels, layer.out_channels, layer.kernel_size[0]
        make = lambda s, c: wsnet_ext.WSConv1d(m, n, k, sample_stride=s, channel_repeat=c, bias=False)  # noqa: E731
        strides = range(1, k + 1)
    plain = layer.weight.numel()
    options = []
    for c in (c for c in range(1, m + 1) if m % c == 0 and m // c >= min(min_channel_sums, m)):
        for s in strides:
            if isinstance(layer, nn.Linear) and s > max(m // c, n):
                continue
            options.append((s, c, plain / make(s, c).condensed.numel()))
    def error(option):
        return abs(math.log(option[2] / target))
    for c in sorted({o[1] for o in options}):  # smallest C within 10% of the target, best S
        best = min((o for o in options if o[1] == c), key=lambda o: (error(o), o[0]))
        if abs(best[2] / target - 1) <= close:
            return best
    return min(options, key=lambda o: (error(o), o[1], o[0]))


@pytest.mark.parametrize("target", [2, 4, 8, 16])
def test_wsnetify_picks_what_a_brute_force_search_picks(target):
    torch.manual_seed(0)
    model = plain_model()
    x = torch.randn(2, 1, 500)
    shapes_before = model(x).shape
    report = []
    assert wsnet_ext.wsnetify(model, target, init="random", keep_head=False, report=report) is model
    assert model(x).shape == shapes_before
    plain = {"0": nn.Conv1d(1, 16, 64), "2": nn.Conv1d(16, 32, 32), "6": nn.Linear(128, 10)}
    converted = 0
    for row in report[:-1]:
        s, c, achieved = brute_force_sampling(plain[row["name"]], target)
        if abs(achieved / target - 1) > 0.5:
            assert row["new_type"] is None and "off target" in row["reason"]
            continue
        layer = model.get_submodule(row["name"])
        assert (layer.sample_stride, layer.channel_repeat) == (s, c) == (row["sample_stride"], row["channel_repeat"])
        assert layer.compactness == pytest.approx(achieved) == pytest.approx(row["compression"])
        converted += 1
    assert converted >= 2
    whole = report[-1]
    assert whole["name"] == "(whole model)"
    assert whole["params_after"] == sum(p.numel() for p in model.parameters())
    assert whole["compression"] == pytest.approx(whole["params_before"] / whole["params_after"])


@pytest.mark.parametrize("sums", [2, 8, 64])
@pytest.mark.parametrize("target", [4, 16, 60])
def test_min_channel_sums_limits_the_channel_repeats_as_a_brute_force_search_does(target, sums):
    layers = [nn.Conv1d(16, 32, 32), nn.Conv1d(32, 48, 5), nn.Linear(128, 10), nn.Conv1d(1, 8, 9)]
    for layer in layers:
        m = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels
        s, c, achieved = choose_sampling(layer, target, min_channel_sums=sums)
        assert m // c >= min(sums, m), (layer, c)
        assert (s, c) == brute_force_sampling(layer, target, min_channel_sums=sums)[:2], layer
        assert achieved == pytest.approx(brute_force_sampling(layer, target, min_channel_sums=sums)[2])
    # the floor binds: without it, 60x on the 32-input layer takes C = 16 (2 sums)
    assert choose_sampling(layers[1], 60)[1] > 32 // 8 >= choose_sampling(layers[1], 60, min_channel_sums=8)[1]


def test_wsnetify_keeps_the_head_and_what_is_excluded():
    model = nn.Sequential(nn.Conv1d(8, 16, 9), nn.ReLU(), nn.Conv1d(16, 16, 9), nn.Flatten(), nn.Linear(16, 3))
    report = []
    wsnet_ext.wsnetify(model, 4, init="random", exclude=("2",), report=report)
    assert isinstance(model[0], wsnet_ext.WSConv1d)
    assert type(model[2]) is nn.Conv1d and type(model[4]) is nn.Linear
    reasons = {r["name"]: r["reason"] for r in report}
    assert reasons["2"] == "excluded" and "classifier head" in reasons["4"]
    # by type, and by pattern
    model = nn.Sequential(nn.Conv1d(8, 16, 9), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)), nn.Linear(4, 2))
    wsnet_ext.wsnetify(model, 2, init="random", exclude=nn.Conv1d, keep_head=False, tolerance=2)
    assert type(model[0]) is nn.Conv1d and isinstance(model[2], wsnet_ext.WSLinear)
    model = nn.Sequential(nn.Conv1d(8, 16, 9), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)), nn.Linear(4, 2))
    wsnet_ext.wsnetify(model, 2, init="random", exclude="1.*", tolerance=2)
    assert type(model[1][0]) is nn.Linear and type(model[1][1]) is nn.Linear and type(model[2]) is nn.Linear


def test_wsnetify_requires_the_choice_of_init():
    with pytest.raises(ValueError, match="init expects 'project' .*trained.* or 'random' .*fresh"):
        wsnet_ext.wsnetify(plain_model(), 4)


def test_wsnetify_random_init_keeps_the_plain_scale_projection_does_not():
    # on a fresh model, projecting averages independent weights and shrinks them; init='random'
    # gives the sampled filters the plain layer's scale
    torch.manual_seed(0)
    fresh = nn.Sequential(nn.Conv1d(16, 32, 32), nn.Linear(4, 4))
    plain_std = fresh[0].weight.std().item()
    random_std = wsnet_ext.wsnetify(copy.deepcopy(fresh), 8, init="random")[0].weight.std().item()
    projected_std = wsnet_ext.wsnetify(copy.deepcopy(fresh), 8, init="project")[0].weight.std().item()
    assert random_std == pytest.approx(plain_std, rel=0.1)
    assert projected_std < 0.6 * plain_std


def test_wsnetify_skips_what_it_cannot_sample():
    model = nn.Sequential(nn.Conv1d(4, 8, 3, groups=2), nn.Conv2d(1, 4, 3), nn.Linear(4, 4))
    report = []
    wsnet_ext.wsnetify(model, 64, init="random", keep_head=False, report=report)
    report = {r["name"]: r for r in report}
    assert report["0"]["new_type"] is None and "groups=2" in report["0"]["reason"]
    assert report["1"]["new_type"] is None and "off target" in report["1"]["reason"]
    assert isinstance(model[0], nn.Conv1d) and isinstance(model[1], nn.Conv2d)


def test_hashify_reports_like_wsnetify():
    model = plain_model()
    ws_report, hashed_report = [], []
    wsnet_ext.wsnetify(copy.deepcopy(model), 4, init="random", report=ws_report)
    assert wsnet_ext.hashify(model, 4, report=hashed_report) is model
    assert [set(r) for r in ws_report] == [set(r) for r in hashed_report]
    assert [r["name"] for r in ws_report] == [r["name"] for r in hashed_report]
    assert hashed_report[0]["seed"] == 0 and hashed_report[1]["seed"] == 1
    assert type(model[6]) is nn.Linear  # the head
    text = wsnet_ext.convert.format_report(hashed_report, "hashify")
    assert "whole model" in text and "HashedConv1d" in text


@pytest.mark.parametrize("cls,plain", [
    (wsnet_ext.WSConv1d, nn.Conv1d(6, 8, 5, stride=2, padding=2, dilation=1, dtype=torch.float64)),
    (wsnet_ext.WSConv2d, nn.Conv2d(6, 8, (3, 2), padding=1, dtype=torch.float64)),
    (wsnet_ext.WSLinear, nn.Linear(6, 8, dtype=torch.float64)),
])
def test_from_plain_layer_is_the_least_squares_fit(cls, plain):
    # a plain weight that is exactly a sampled weight is recovered exactly, with the bias; a
    # perturbed one gives the entrywise mean, which no other condensed filter beats
    torch.manual_seed(3)
    make = cls.from_linear if cls is wsnet_ext.WSLinear else cls.from_conv
    reference = make(plain, sample_stride=2, channel_repeat=2)
    with torch.no_grad():
        reference.condensed.normal_()
        plain.weight.copy_(reference.weight)
        plain.bias.normal_()
    layer = make(plain, sample_stride=2, channel_repeat=2)
    torch.testing.assert_close(layer.condensed, reference.condensed)
    torch.testing.assert_close(layer.bias, plain.bias)
    x = torch.randn((2, 6, 11, 7)[: plain.weight.dim()] if cls is not wsnet_ext.WSLinear else (2, 6),
                    dtype=torch.float64)
    torch.testing.assert_close(layer(x), plain(x))
    with torch.no_grad():
        plain.weight.add_(torch.randn_like(plain.weight))
    fitted = make(plain, sample_stride=2, channel_repeat=2)
    error = lambda c: (fitted._sample(c) - plain.weight).square().sum()  # noqa: E731
    best = error(fitted.condensed)
    for _ in range(5):
        assert error(fitted.condensed + 1e-3 * torch.randn_like(fitted.condensed)) > best


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
    wsnet_ext.wsnetify(plain, 3.0, init="project", keep_head=False)
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
        wsnet_ext.wsnetify(model, 2, init="random", tolerance=2, keep_head=False)
    else:
        wsnet_ext.hashify(model, 4, keep_head=False)
    assert any(isinstance(m, wsnet_ext.convert.WS_TYPES + wsnet_ext.convert.HASHED_TYPES) for m in model.modules())
    x = torch.randn(3, 2, 20)
    expected = model(x)
    assert wsnet_ext.materialize(model) is model
    assert not any(isinstance(m, wsnet_ext.convert.WS_TYPES + wsnet_ext.convert.HASHED_TYPES) for m in model.modules())
    torch.testing.assert_close(model(x), expected)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), expected)


def test_summary_counts_by_hand():
    model = nn.Sequential(wsnet_ext.WSConv1d(4, 6, 5, sample_stride=2, channel_repeat=2, stride=2),
                          nn.BatchNorm1d(6), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                          wsnet_ext.HashedLinear(6, 3, compression=4), nn.Linear(3, 2))
    s = wsnet_ext.summary(model, torch.randn(1, 4, 21))
    ws, lin = s.layers[0], s.layers[2]
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
    # multiply-adds per sample: the hashed and plain layers run a plain op (6 -> 3, 3 -> 2)
    assert (hashed.macs, hashed.plain_macs, lin.macs, lin.plain_macs) == (18, 18, 6, 6)
    assert (s.macs, s.plain_macs) == (ws.macs + 18 + 6, ws.plain_macs + 18 + 6)
    assert wsnet_ext.summary(model).macs is None and wsnet_ext.summary(model).layers[1].macs is None
    # stride 2, S 2, L 4: the polyphase split (g = 2) halves the integral image's multiply-adds
    split = wsnet_ext.summary(wsnet_ext.WSConv1d(2, 3, 4, sample_stride=2, stride=2, padding=1), torch.randn(1, 2, 17))
    assert split.layers[0].macs == (17 + 2) * (4 + 2 * 2) * 2 // 2 and split.layers[0].plain_macs == 8 * 3 * 2 * 4


def test_summary_counts_the_multiply_adds_of_2d_layers_per_sample_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(wsnet_ext.WSConv2d(3, 4, 3, padding=1, sample_stride=1, channel_repeat=1),
                          nn.BatchNorm2d(4), wsnet_ext.HashedConv2d(4, 6, (1, 3), compression=2), nn.Flatten(),
                          wsnet_ext.WSLinear(6 * 5 * 5, 5, sample_stride=2, channel_repeat=2)).train()
    running = model[1].running_mean.clone()
    s = wsnet_ext.summary(model, torch.randn(2, 3, 5, 7))
    ws2d, hashed, wslin = s.layers
    assert ws2d.macs == ws2d.plain_macs == 4 * 5 * 7 * (3 * 3 * 3)   # positions x one output's weights
    assert hashed.macs == hashed.plain_macs == 6 * 5 * 5 * (4 * 1 * 3)
    assert wslin.macs == wslin.plain_macs == 5 * 150
    assert s.macs == s.plain_macs == ws2d.macs + hashed.macs + wslin.macs
    assert model.training and all(m.training for m in model)
    torch.testing.assert_close(model[1].running_mean, running, rtol=0, atol=0)


@pytest.mark.parametrize("variant,compression", [("plain", None), ("ws", 8), ("hashed", 8)])
def test_models_run_and_reach_their_compression(variant, compression):
    torch.manual_seed(0)
    cases = [(wsnet_ext.models.soundnet(5, variant, compression, allocate="uniform"), torch.randn(2, 1, 4000)),
             (wsnet_ext.models.mlp(64, 10, variant, compression, allocate="uniform"), torch.randn(3, 64)),
             (wsnet_ext.models.cnn5(10, variant, compression, width=16, allocate="uniform"), torch.randn(2, 3, 32, 32)),
             (wsnet_ext.models.cnn1d(10, variant, compression, allocate="uniform"), torch.randn(4, 1, 40))]
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


def near_options(layer, target, close=0.1):
    """Every (S, C, compactness) of `layer` within `close` of `target`, from the layers' own parameter counts."""
    m = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels
    options = []
    for c in (c for c in range(1, m + 1) if m % c == 0):
        strides = range(1, (max(m // c, layer.out_features) if isinstance(layer, nn.Linear) else layer.kernel_size[0]) + 1)
        for s in strides:
            if isinstance(layer, nn.Linear):
                held = wsnet_ext.WSLinear(m, layer.out_features, sample_stride=s, channel_repeat=c).condensed.numel()
            else:
                held = wsnet_ext.WSConv1d(m, layer.out_channels, layer.kernel_size[0], sample_stride=s, channel_repeat=c,
                                          bias=False).condensed.numel()
            achieved = layer.weight.numel() / held
            if abs(achieved / target - 1) <= close:
                options.append((s, c, achieved))
    return options


@pytest.mark.parametrize("layer,target", [(nn.Conv1d(64, 128, 4), 4), (nn.Conv1d(16, 32, 32), 10),
                                          (nn.Conv1d(64, 64, 3), 16), (nn.Linear(100, 60), 8)])
def test_sampling_policies_pick_what_they_promise(layer, target):
    near = [o for o in near_options(layer, target) if o[1] < (layer.in_features if isinstance(layer, nn.Linear)
                                                            else layer.in_channels)]
    assert near, "the case must offer choices"
    spatial = choose_sampling(layer, target, policy="spatial")
    channel = choose_sampling(layer, target, policy="channel")
    balanced = choose_sampling(layer, target, policy="balanced")
    for choice in (spatial, channel, balanced):
        assert any(choice[:2] == o[:2] and choice[2] == pytest.approx(o[2]) for o in near), choice
    assert spatial[1] == min(o[1] for o in near)                       # fewest channel repeats
    assert channel[0] == max(o[0] for o in near)                       # least filter overlap
    imbalance = lambda o: abs(math.log(o[2] / o[1]) - math.log(o[1]))  # noqa: E731
    assert imbalance(balanced) <= min(imbalance(o) for o in near) + 1e-6
    if len({o[0] for o in near}) > 1:
        assert channel[0] > spatial[0] or channel[1] == spatial[1]


def test_wsnetify_policy_reaches_the_layers_and_rejects_unknown_names():
    report = []
    model = wsnet_ext.wsnetify(nn.Sequential(nn.Conv1d(64, 128, 4), nn.ReLU(), nn.Conv1d(128, 128, 4)), 4,
                               init="random", keep_head=False, policy="channel", report=report)
    assert [(r["sample_stride"], r["channel_repeat"]) for r in report[:-1]] == [(4, 4), (4, 4)]
    assert model(torch.randn(2, 64, 50)).shape == (2, 128, 44)
    with pytest.raises(ValueError, match="policy expects one of .* got 'wide'"):
        wsnet_ext.wsnetify(nn.Linear(8, 8), 2, init="random", keep_head=False, policy="wide")
