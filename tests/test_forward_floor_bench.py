"""benchmarks/bench_forward_floor.py: new anonymous pages fault on every fill (the price of a fault
rests on it), page faults are counted per call, a quick run writes a floor that is at least its
parts, and bad flags are named."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import bench_forward_floor as floor  # noqa: E402


def test_fresh_fill_faults_every_page_every_call():
    pages = 256
    fill = floor.fresh_fill(pages * 4096)
    for _ in range(3):
        before = floor.page_faults()
        fill()
        assert floor.page_faults() - before >= pages


def test_counting_records_each_call():
    tally = []
    run = floor.counting(lambda: 7, tally)
    assert [run(), run()] == [7, 7]
    assert len(tally) == 2 and all(n >= 0 for n in tally)


def test_quick_run_writes_a_floor_no_lower_than_its_parts(tmp_path):
    assert floor.main(["--shapes", "conv5", "--quick", "--tag", "t", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "forward_floor_t.json").read_text())
    assert data["meta"]["blas_gmacs"] > 0
    (row,) = data["rows"]
    assert row["shape"] == "conv5"
    for name in ("forward", "forward_backward"):
        p = row[name]
        resident = p["timed"]["resident fill"]["median_s"]
        assert p["floor_fault_free_s"] == pytest.approx(max(resident, p["macs_at_blas_s"]))
        assert p["floor_s"] >= p["floor_fault_free_s"] > 0
        assert set(p["faults_per_call"]) == {"ours", "conv1d"}
        assert p["target_share"] > 0 and p["share_now"] > 0
    assert "conv5" in (tmp_path / "forward_floor_t.md").read_text()


def test_unknown_layer_is_named(tmp_path):
    with pytest.raises(SystemExit, match="--shapes"):
        floor.main(["--shapes", "conv9", "--out", str(tmp_path)])
