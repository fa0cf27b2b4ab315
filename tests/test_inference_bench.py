"""benchmarks/bench_inference.py: one quick run on the CPU writes every variant's row, the narrowed
baseline holds no more parameters than the WSNet model it is compared with, and bad flags are named."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import bench_inference  # noqa: E402


def test_quick_run_writes_every_variant(tmp_path):
    assert bench_inference.main(["--models", "mlp,cnn5", "--compressions", "10", "--quick", "--tag", "t",
                                 "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "inference_cpu_t.json").read_text())
    rows = {(r["model"], r["variant"]): r for r in data["rows"]}
    for model in ("mlp", "cnn5"):
        labels = {v for m, v in rows if m == model}
        assert labels == {"plain", "WSNet 10x", "WSNet 10x 8-bit", "HashNet 10x", "narrowed to WSNet 10x"}
        ws, narrow = rows[(model, "WSNet 10x")], rows[(model, "narrowed to WSNet 10x")]
        assert narrow["params"] <= ws["params"] < 1.5 * narrow["params"]
        assert rows[(model, "WSNet 10x 8-bit")]["saved_bytes"] < 0.4 * ws["saved_bytes"]
        assert all(r["latency_1t"]["p50_s"] > 0 and r["throughput_per_s"] > 0 for (m, _), r in rows.items() if m == model)
    assert "narrowed to WSNet 10x" in (tmp_path / "inference_cpu_t.md").read_text()


def test_several_allocations_are_timed_side_by_side(tmp_path):
    assert bench_inference.main(["--models", "mlp", "--compressions", "8", "--allocate", "by_params_fast,uniform",
                                 "--quick", "--tag", "a", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "inference_cpu_a.json").read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    assert set(rows) == {"plain", "narrowed to WSNet 8x (by_params_fast)"} | {
        f"{kind} 8x{bits} ({a})" for kind, bits in (("WSNet", ""), ("WSNet", " 8-bit"), ("HashNet", ""))
        for a in ("by_params_fast", "uniform")}
    assert data["meta"]["allocate"] == ["by_params_fast", "uniform"]
    # by_params_fast reaches the whole model's 8x; uniform leaves the plain biases out of its ratio
    plain = rows["plain"]["params"]
    assert plain / rows["WSNet 8x (by_params_fast)"]["params"] >= 8 > plain / rows["WSNet 8x (uniform)"]["params"]
    assert rows["narrowed to WSNet 8x (by_params_fast)"]["params"] <= rows["WSNet 8x (by_params_fast)"]["params"]


@pytest.mark.parametrize("argv,message", [(["--models", "resnet"], "--models"), (["--compressions", "x"], "--compressions"),
                                          (["--compressions", "0.5"], "--compressions"),
                                          (["--allocate", "by_flops"], "--allocate expects")])
def test_bad_flags_are_named(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        bench_inference.main(argv + ["--out", str(tmp_path)])
