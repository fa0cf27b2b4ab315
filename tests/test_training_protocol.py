"""The training-size benchmark protocol (benchmarks/training_protocol.py): its shapes are the
layers SoundNet really has, its floor and FLOP arithmetic, and a CPU smoke run of the CLI with the
results' JSON schema (rows[].shape with name and batch, rows[].forward / forward_backward per
contender with median_s). The CUDA timing itself runs on a GPU (scripts/gpu_check.sh)."""

import json

import pytest
import torch

from benchmarks import training_protocol as tp
from benchmarks.bench_ws_conv1d import main as bench_main
from wsnet_ext import models


def test_shapes_are_soundnets_layers():
    model = models.soundnet(num_classes=10)
    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, args: seen.append((m, args[0].shape[-1])))
             for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    with torch.no_grad():
        model.eval()(torch.randn(1, 1, 110250))
    for h in hooks:
        h.remove()
    convs = [s for s in tp.TRAINING_SHAPES if s.name.startswith("conv")]
    assert len(seen) == len(convs) == 7
    for shape, (conv, length) in zip(convs, seen):
        assert (shape.in_channels, shape.out_channels, shape.kernel_size, shape.stride, shape.padding, shape.length) == \
            (conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.padding[0], length)
    assert all(s.batch == 64 for s in tp.TRAINING_SHAPES)


def test_floor_and_flops_arithmetic():
    shape = tp.with_batch(tp.TRAINING_SHAPES[-1], 2)  # long: 64->128, k32, S4, C4, T 16000, pad 16
    t_out = 16000 + 32 - 32 + 1
    params = 16 * (32 + 127 * 4) + 128
    expected = 4 * (2 * 64 * 16000 + 2 * 128 * t_out + params)
    assert tp.floor_bytes(shape, 4) == expected
    got = tp.achieved(shape, 1e-3, 4, copy_gbps=2000.0, ours=True)
    assert got["gbps"] == pytest.approx(expected / 1e-3 / 1e9)
    assert got["floor_share"] == pytest.approx(expected / 2000e9 / 1e-3)
    assert got["tflops"] == pytest.approx(2 * 2 * (16000 + 32) * (32 + 127 * 4) * 16 / 1e-3 / 1e12)
    assert tp.achieved(shape, 1e-3, 4, None, ours=False)["floor_share"] is None


def test_cli_smoke_on_cpu(tmp_path):
    assert bench_main(["--protocol", "training", "--device", "cpu", "--batch", "1", "--shapes", "conv5,conv6",
                       "--dtypes", "float32", "--quick", "--tag", "t", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "ws_conv1d_training_cpu_t.json").read_text())
    assert [r["shape"]["name"] for r in data["rows"]] == ["conv5", "conv6"]
    for row in data["rows"]:
        assert row["shape"]["batch"] == 1
        for kind in ("forward", "forward_backward"):
            assert set(row[kind]) == {"wsnet_ext auto", "cuDNN (materialized, TF32)", "cuDNN (materialized, no TF32)"}
            assert all(entry["median_s"] > 0 for entry in row[kind].values())
        # every contender within its precision's tolerance of float64 (output and gradients)
        assert all(row["errors"][name] <= row["tolerance"][name] for name in row["errors"]), row["errors"]
        assert max(row["errors"].values()) < 2e-5  # on the CPU nothing rounds to TF32
    assert "conv6 b1" in (tmp_path / "ws_conv1d_training_cpu_t.md").read_text()


def test_cli_rejects_unknown_dtype(tmp_path):
    with pytest.raises(SystemExit, match="--dtypes"):
        bench_main(["--protocol", "training", "--device", "cpu", "--dtypes", "float8", "--out", str(tmp_path)])


def test_the_tests_training_shapes_are_the_protocols():
    from helpers import TRAINING
    assert {s.name: (s.in_channels, s.out_channels, s.kernel_size, s.sample_stride, s.channel_repeat, s.stride,
                     s.padding, s.length) for s in tp.TRAINING_SHAPES} == TRAINING
