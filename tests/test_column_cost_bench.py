"""benchmarks/bench_column_cost.py: a quick run times every channel repeat of the 24 -> 48 layer,
its shares and line agree with its own times, and bad arguments are named."""

import json
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import bench_column_cost as column_cost  # noqa: E402


def test_quick_run_covers_every_repeat_and_fits_a_line(tmp_path):
    threads = torch.get_num_threads()
    assert column_cost.main(["--quick", "--threads", "1", "--tag", "t", "--out", str(tmp_path)]) == 0
    assert torch.get_num_threads() == threads  # the caller's thread count is given back
    data = json.loads((tmp_path / "column_cost_t.json").read_text())
    rows = data["rows"]
    assert [r["repeat"] for r in rows] == list(column_cost.REPEATS)
    assert [r["mc"] for r in rows] == [24 // c for c in column_cost.REPEATS]
    for r in rows:
        shape = column_cost.layer(r["repeat"], data["meta"]["length"], data["meta"]["batch"])
        assert r["flop_ratio"] == pytest.approx(shape.flop_ratio())
        assert r["speedup"] == pytest.approx(r["conv1d_ms"] / r["ours_ms"])
        assert r["share"] == pytest.approx(r["speedup"] / r["flop_ratio"])
        assert r["ns_per_block"] == pytest.approx(r["ours_ms"] * 1e6 / column_cost.blocks(shape))
    # the line is the least-squares fit of the rows: its residuals sum to zero, uncorrelated with Mc
    fit = data["fit"]
    residuals = np.array([r["ns_per_block"] - fit["a_ns"] - fit["b_ns_per_channel"] * r["mc"] for r in rows])
    scale = max(r["ns_per_block"] for r in rows)
    assert abs(residuals.sum()) < 1e-6 * scale * len(rows)
    assert abs((residuals * np.array([r["mc"] for r in rows])).sum()) < 1e-6 * scale * 24 * len(rows)
    text = (tmp_path / "column_cost_t.md").read_text()
    assert text.count("\n| ") == len(rows) + 1


@pytest.mark.parametrize("flag", ["--threads", "--length", "--batch", "--rounds"])
def test_bad_arguments_are_named(flag, capsys):
    with pytest.raises(SystemExit):
        column_cost.main([flag, "0"])
    assert f"{flag} expects an integer >= 1, got 0" in capsys.readouterr().err
