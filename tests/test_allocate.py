"""allocate='by_params' in wsnetify / hashify (wsnet_ext/_allocate.py): the whole model's ratio is
reached, the choice is Pareto-optimal against a brute-force search over every combination of the
layers' candidates, and the layers it keeps plain are the small ones."""

import itertools
import math

import pytest
import torch
from torch import nn

import wsnet_ext
from wsnet_ext import _allocate, convert


def total_params(model):
    return sum(p.numel() for p in model.parameters())


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 8, 9, padding=4), nn.ReLU(), nn.Conv1d(8, 16, 5), nn.ReLU(),
                         nn.Conv1d(16, 32, 3), nn.ReLU(), nn.Conv1d(32, 64, 3))


@pytest.mark.parametrize("target", [1.5, 3.0, 6.0, 12.0])
def test_by_params_is_pareto_optimal_against_brute_force(target):
    model = small_model()
    before = total_params(model)
    layers = [m for m in model if isinstance(m, nn.Conv1d)]
    candidates = [convert._ws_candidates(layer, "spatial") for layer in layers]
    fixed = before - sum(layer.weight.numel() for layer in layers)
    report = []
    wsnet_ext.wsnetify(model, target, init="random", keep_head=False, allocate="by_params", report=report)
    after = total_params(model)
    ours_params = after - fixed
    ours_cost = sum(math.log(row["compression"]) for row in report[:-1])
    feasible = []
    for combo in itertools.product(*candidates):
        params = sum(c.params for c in combo)
        cost = sum(math.log(c.ratio) for c in combo)
        # no combination is at least as small and strictly better
        assert not (params <= ours_params and cost < ours_cost - 1e-9), (combo, ours_params, ours_cost)
        if fixed + params <= before / target:
            feasible.append(cost)
    assert feasible, "the target is reachable on this model"
    assert before / after >= target  # the promised model-level ratio, at least
    # and not far past it: within the step between neighbouring candidates of the largest layer
    assert before / after <= target * 1.6, before / after


@pytest.mark.parametrize("target", [4, 10, 45])
@pytest.mark.parametrize("tool", ["wsnetify", "hashify"])
def test_by_params_reaches_the_model_ratio_on_soundnet(tool, target):
    model = wsnet_ext.models.soundnet(10)
    before = total_params(model)
    report = []
    if tool == "wsnetify":
        wsnet_ext.wsnetify(model, target, init="random", allocate="by_params", report=report)
    else:
        wsnet_ext.hashify(model, target, allocate="by_params", report=report)
    ratio = before / total_params(model)
    assert target <= ratio <= target * 1.15, ratio
    assert report[-1]["compression"] == pytest.approx(ratio)
    convs = [row for row in report[:-1] if row["type"] == "Conv1d"]
    # a layer's ratio never falls as its size grows; conv1 (1,024 weights) stays plain
    by_size = sorted(convs, key=lambda row: row["params_before"])
    assert all(a["compression"] <= b["compression"] + 1e-9 for a, b in zip(by_size, by_size[1:])), by_size
    assert convs[0]["new_type"] is None and "allocation" in convs[0]["reason"]
    assert convs[-1]["compression"] > target  # the largest layer carries more than the average
    assert report[-2]["reason"].startswith("classifier head")


def test_wsnet_and_hashed_allocations_keep_the_same_layers_plain():
    kept = {}
    for tool in ("wsnetify", "hashify"):
        report = []
        model = wsnet_ext.models.soundnet(10)
        if tool == "wsnetify":
            wsnet_ext.wsnetify(model, 10, init="random", allocate="by_params", report=report)
        else:
            wsnet_ext.hashify(model, 10, allocate="by_params", report=report)
        kept[tool] = [row["name"] for row in report[:-1] if row["new_type"] is None]
    assert kept["wsnetify"][:3] == kept["hashify"][:3] == ["0", "4", "8"]


def test_uniform_stays_the_default_and_bad_values_are_refused():
    report = []
    wsnet_ext.wsnetify(wsnet_ext.models.soundnet(10), 10, init="random", report=report)
    assert all(row["new_type"] == "WSConv1d" for row in report[:-2])  # every conv compressed
    with pytest.raises(ValueError, match="allocate expects one of"):
        wsnet_ext.wsnetify(small_model(), 4, init="random", allocate="smart")
    with pytest.raises(ValueError, match="allocate expects one of"):
        wsnet_ext.hashify(small_model(), 4, allocate="smart")
    with pytest.raises(ValueError, match="allocate expects one of"):
        wsnet_ext.models.soundnet(10, "ws", 10.0, allocate="smart")


def test_allocate_takes_the_smallest_when_the_budget_is_out_of_reach():
    layers = [[_allocate.plain(100), _allocate.Candidate(20, 5.0, "a")], [_allocate.plain(10)]]
    assert [c.params for c in _allocate.allocate(layers, 0, 1.0)] == [20, 10]
    assert [c.params for c in _allocate.allocate(layers, 0, 1000.0)] == [100, 10]  # nothing to save
    assert [c.params for c in _allocate.allocate(layers, 0, 30.0)] == [20, 10]
