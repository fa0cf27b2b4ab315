"""benchmarks/bench_call_state.py: a quick run times three calls after every state, leaves calls
with a fresh output out of the medians, and names a bad --rounds."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import bench_call_state as state  # noqa: E402


def test_quick_run_times_three_calls_after_every_state(tmp_path):
    assert state.main(["--shape", "conv5", "--quick", "--tag", "t", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "call_state_t.json").read_text())
    rows = data["rows"]
    assert len(rows) == 8 and "ours (tight loop)" in rows and any(k.startswith("sleep") for k in rows)
    for name, r in rows.items():
        assert len(r["calls_ms"]) == len(r["faults"]) == len(r["kept"]) == state.CALLS
        for ms, faults, kept in zip(r["calls_ms"], r["faults"], r["kept"]):
            assert len(faults) == 1  # one round
            assert kept == sum(f <= state.FRESH_OUTPUT_FAULTS for f in faults)
            assert (ms is None) == (kept == 0) and (ms is None or ms > 0)
    text = (tmp_path / "call_state_t.md").read_text()
    assert text.count("\n| ") == len(rows) + 1


def test_bad_rounds_are_named(capsys):
    with pytest.raises(SystemExit):
        state.main(["--rounds", "0"])
    assert "--rounds expects an integer >= 1, got 0" in capsys.readouterr().err
