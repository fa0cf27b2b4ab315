"""benchmarks/trial_first_layers.py: on a tiny synthetic set, both hybrids train, hold about the
by_params model's parameters (the compressed first layers add few), compress exactly the first
convolution(s) as the uniform model does, and get a latency beside plain's."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import wsnet_ext  # noqa: E402
from benchmarks import trial_first_layers as trial  # noqa: E402
from benchmarks.audio import synthetic  # noqa: E402


def test_hybrids_compress_only_the_first_convolutions():
    uniform = wsnet_ext.models.soundnet(10, "ws", 10, allocate="uniform")
    by_params = wsnet_ext.models.soundnet(10, "ws", 10, allocate="by_params")
    for name, first in trial.FIRST_CONVS.items():
        model = trial.hybrid(10, 10, first)
        for index, (got, plain_or_ws) in enumerate(zip(model, by_params)):
            expected = uniform[index] if index in first else plain_or_ws
            assert type(got) is type(expected), (name, index)
            if isinstance(got, wsnet_ext.WSConv1d):
                assert (got.sample_stride, got.channel_repeat) == (expected.sample_stride, expected.channel_repeat)
        assert all(isinstance(model[i], wsnet_ext.WSConv1d) for i in first)


def test_quick_run_writes_both_hybrids(tmp_path, monkeypatch):
    root = synthetic.write(str(tmp_path / "data"), "folders", classes=3, clips_per_class=10, seconds=0.3, seed=1)
    monkeypatch.setattr(trial, "CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    assert trial.main(["--data", root, "--epochs", "1", "--seconds", "0.3", "--tag", "t", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "trial_first_layers_t.json").read_text())
    assert [r["model"] for r in result["rows"]] == [f"by_params, {n} as uniform" for n in trial.FIRST_CONVS]
    assert all(0 <= r["accuracy"] <= 100 and r["latency_ms"] > 0 and 9 < r["model_ratio"] < 12 for r in result["rows"])
    assert set(result["meta"]["latency_ms"]) >= {"plain", "uniform", "by_params"}
