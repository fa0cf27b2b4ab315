"""benchmarks/bench_layer_latency.py: a quick run writes a row per layer and contender on 1 thread
and on all, with p99 >= p50, and bad flags are named."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import bench_layer_latency  # noqa: E402


def test_quick_run_writes_every_layer_and_contender(tmp_path):
    assert bench_layer_latency.main(["--shapes", "conv5,conv7", "--no-model", "--quick", "--tag", "t",
                                     "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "layer_latency_cpu_t.json").read_text())["rows"]
    assert {(r["item"], r["contender"]) for r in rows} == {
        (layer, contender) for layer in ("conv5", "conv7")
        for contender in (bench_layer_latency.OURS, bench_layer_latency.PLAIN)}
    for r in rows:
        latencies = [v for k, v in r.items() if k.startswith("latency_")]
        assert latencies and all(0 < v["p50_s"] <= v["p99_s"] for v in latencies), r
        assert r["flop_ratio"] > 1
    assert "conv7" in (tmp_path / "layer_latency_cpu_t.md").read_text()


def test_unknown_layer_is_named(tmp_path):
    with pytest.raises(SystemExit, match="--shapes"):
        bench_layer_latency.main(["--shapes", "conv9", "--out", str(tmp_path)])
