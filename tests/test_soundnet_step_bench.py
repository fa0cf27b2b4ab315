"""The model-level benchmark (benchmarks/bench_soundnet_step.py): a CPU smoke run writes its table
with a row per variant, timed, profiled (our ops' share), with the speed-up over the plain model."""

import json

import pytest

from benchmarks.bench_soundnet_step import main


def test_soundnet_step_smoke(tmp_path):
    assert main(["--device", "cpu", "--batch", "2", "--seconds", "0.5", "--modes", "eager", "--quick",
                 "--tag", "t", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "soundnet_step_cpu_t.json").read_text())
    rows = {r["step"]: r for r in data["rows"]}
    assert set(rows) == {"plain / eager", "wsnet / eager"}
    assert rows["plain / eager"]["our_share"] == 0 and rows["wsnet / eager"]["our_share"] > 0.05
    assert rows["plain / eager"]["speedup_vs_plain"] == 1.0
    assert all(r["median_s"] > 0 and r["top_ops"] for r in rows.values())


def test_soundnet_step_rejects_bad_modes(tmp_path):
    with pytest.raises(SystemExit, match="--modes"):
        main(["--device", "cpu", "--modes", "jit", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="needs CUDA"):
        main(["--device", "cpu", "--modes", "graph", "--out", str(tmp_path)])
