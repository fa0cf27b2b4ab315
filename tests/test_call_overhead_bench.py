"""benchmarks/bench_call_overhead.py times the same computation five ways: every contender's output
equals the definition (conv1d on the sampled filter), and a short run writes a row per layer."""

import json
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import bench_call_overhead  # noqa: E402
from benchmarks.shapes import SHAPES, make_inputs  # noqa: E402
from helpers import reference_conv1d  # noqa: E402


@pytest.mark.parametrize("shape", [bench_call_overhead.TINY] + [s for s in SHAPES if s.name == "conv3"],
                         ids=lambda s: s.name)
def test_every_contender_computes_the_definition(shape):
    x, cond, bias, _ = make_inputs(shape, "cpu")
    expected = reference_conv1d(x.double(), cond.double(), bias.double(), kernel_size=shape.kernel_size,
                                sample_stride=shape.sample_stride, channel_repeat=shape.channel_repeat,
                                stride=shape.stride, padding=shape.padding)
    for name, run in bench_call_overhead.contenders(shape).items():
        torch.testing.assert_close(run().double(), expected, rtol=1e-4, atol=1e-4, msg=name)


def test_short_run_writes_every_layer(tmp_path):
    assert bench_call_overhead.main(["--budget", "0.01", "--tag", "t", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "call_overhead_t.json").read_text())["rows"]
    assert [(r["shape"], r["batch"]) for r in rows] == [("tiny", 1)] + [
        (name, batch) for batch in (1, 8) for name in ("conv3", "conv4", "conv5")]
    assert all(len(r["us"]) == 5 and all(v > 0 for v in r["us"].values()) for r in rows)


def test_bad_thread_count_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_call_overhead.main(["--threads", "0", "--out", str(tmp_path)])
    assert "--threads expects an int >= 1, got 0" in capsys.readouterr().err
