"""benchmarks/study.py: the accuracy-budget study's table is built from the committed runs, each
row's rebuilt model holds the parameters its run trained (so its multiply-adds and latency describe
that model), and its figures are the runs' own."""

import json
import os

import pytest

from benchmarks import study

STUDY_FILES = sorted({path for _, _, path, _ in study.STUDY})


def test_every_study_file_is_committed():
    missing = [p for p in STUDY_FILES if not os.path.exists(os.path.join(study.RESULTS, p))]
    assert not missing, missing


@pytest.fixture(scope="module")
def rows():
    return study.study_rows(time_latency=False)


def test_the_table_has_every_model_at_every_ratio_once(rows):
    cells = [(r["dataset"], r["target"], r["model"]) for r in rows]
    assert len(cells) == len(set(cells)), cells
    for dataset in ("audio", "mnist1d", "fashion_cnn"):
        assert (dataset, None, "plain") in cells
        for target in (4, 10, 45):
            for model in ("plain, narrowed", "HashNet", "WSNet"):
                assert (dataset, target, model) in cells, (dataset, target, model)


def test_every_row_is_rebuilt_with_its_runs_parameters(rows):
    """A rebuilt model with another parameter count (a default that moved since the run) has no
    multiply-adds: none may be missing."""
    assert all(r["macs"] is not None for r in rows), [r for r in rows if r["macs"] is None]
    by_cell = {(r["dataset"], r["target"], r["model"]): r for r in rows}
    for dataset in ("audio", "mnist1d", "fashion_cnn"):
        plain = by_cell[(dataset, None, "plain")]["macs"]
        # the narrowed network does less work than plain; HashNet runs plain's op on its virtual weight
        assert all(by_cell[(dataset, t, "plain, narrowed")]["macs"] < plain for t in (4, 10, 45))
        assert all(by_cell[(dataset, t, "HashNet")]["macs"] == plain for t in (4, 10, 45))


def test_the_figures_are_the_runs_own(rows):
    for r in rows:
        with open(os.path.join(study.RESULTS, r["source"])) as f:
            source = json.load(f)["rows"]
        matches = [s for s in source if s["params"] == r["params"] and study.LABELS[s["variant"]] == r["model"]]
        assert matches, r
        s = matches[0]
        accuracy = s["accuracy_mean"] if "accuracy_mean" in s else 100 - s["test_error_mean"]
        assert r["accuracy_mean"] == pytest.approx(accuracy) and r["bytes"] == s["bytes"]
        assert r["latency_ms"] == s.get("latency_ms")
    # MNIST-1D at 10x: the default WSNet is the 8-sums row (since session 20), not the 16-sums one
    ws = next(r for r in rows if (r["dataset"], r["target"], r["model"]) == ("mnist1d", 10, "WSNet"))
    assert ws["allocation"] == "by_params_fast+sums8" and ws["model_ratio"] > 12


def test_markdown_lists_every_row(rows):
    text = study.markdown(rows, "now")
    assert text.count("\n| ") == len(rows) + 1  # the header and one line per row
