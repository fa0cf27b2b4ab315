"""The accuracy suite: its --quick run trains every model (loss goes down, each model has the
compression it claims), and the MNIST / CIFAR-10 loaders read the standard file formats."""

import gzip
import json
import os
import pickle
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import bench_accuracy  # noqa: E402
from benchmarks.accuracy import data as datasets  # noqa: E402


def test_quick_run_trains_and_reaches_claimed_compression(tmp_path):
    assert bench_accuracy.main(["--quick", "--quantized", "--out", str(tmp_path), "--tag", "t"]) == 0
    result = json.loads((tmp_path / "accuracy_t.json").read_text())
    assert (tmp_path / "accuracy_t.md").exists() and (tmp_path / "accuracy_t.png").stat().st_size > 0
    rows = result["rows"]
    expected = {"mnist1d", "digits_mlp", "digits_cnn"}
    if os.path.isdir(datasets.FASHION_MNIST_DEBIAN):  # Debian's package (CI installs it)
        expected |= {"fashion_mlp", "fashion_cnn"}
    assert {r["experiment"] for r in rows} == expected
    for r in rows:
        if r["variant"] == "ws8":  # the trained WSNet model, condensed filters in 8 bits
            ws = next(w for w in rows if (w["experiment"], w["variant"], w["compression"]) ==
                      (r["experiment"], "ws", r["compression"]))
            assert r["bytes"] < 0.8 * ws["bytes"] and r["params"] == ws["params"]  # plain layers stay float
            assert abs(r["test_error_mean"] - ws["test_error_mean"]) < 10, (r, ws)
            continue
        first, last = r["first_last_loss"]
        assert last < first, r
        if r["variant"] == "plain":
            assert r["model_compression"] == pytest.approx(1.0) and not r["layer_compression"]
        else:
            assert r["layer_compression"], r
            exact = r["variant"] == "hashed"  # hashing hits any ratio; sampling the S/C grid
            for achieved in r["layer_compression"]:
                assert abs(achieved / r["compression"] - 1) <= (0.01 if exact else 0.5), r
            assert r["plain_params"] / r["params"] == pytest.approx(r["model_compression"])


def write_idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") if str(path).endswith(".gz") else open(path, "wb") as f:
        f.write(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def test_mnist_idx_loader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 50, dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, 0x08)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x08)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images[:10], 0x08)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[:10], 0x08)
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = datasets.mnist(str(tmp_path), seed=1)
    assert x_tr.shape == (40, 1, 28, 28) and x_val.shape == (10, 1, 28, 28) and x_te.shape == (10, 1, 28, 28)
    torch.testing.assert_close(x_te[:, 0], torch.from_numpy(images[:10] / 255.0).float())
    assert torch.equal(y_te, torch.from_numpy(labels[:10]).long())
    # the train/validation split is a permutation of the training set
    together = torch.cat([y_tr, y_val]).sort().values
    assert torch.equal(together, torch.from_numpy(labels).long().sort().values)


def test_idx_reader_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(str(tmp_path / "bad"))
    write_idx(tmp_path / "short", np.zeros(5, np.uint8), 0x08)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-2])
    with pytest.raises(ValueError, match="header says"):
        datasets.read_idx(str(tmp_path / "short"))


def test_cifar10_batch_loader(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (8, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 8))}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    (x_tr, _), (x_val, _), (x_te, y_te) = datasets.cifar10(str(tmp_path), seed=0)
    assert x_tr.shape == (32, 3, 32, 32) and x_val.shape == (8, 3, 32, 32) and x_te.shape == (8, 3, 32, 32)
    train_all = torch.cat([x_tr, x_val])
    torch.testing.assert_close(train_all.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    assert y_te.dtype == torch.int64


def test_digits_and_mnist1d_splits():
    (x_tr, y_tr), (x_val, _), (x_te, _) = datasets.digits(seed=0)
    assert x_tr.shape[1:] == (1, 8, 8) and len(x_tr) + len(x_val) + len(x_te) == 1797
    assert len(x_val) == pytest.approx(0.2 * (len(x_tr) + len(x_val)), abs=1)
    (x_tr, _), (x_val, _), (x_te, _) = datasets.mnist1d(seed=0)
    assert (len(x_tr), len(x_val), len(x_te)) == (3200, 800, 1000) and x_tr.shape[1:] == (1, 40)


def test_sampling_policy_study_quick_run(tmp_path):
    """bench_sampling_policy: every candidate trains, picks its lr on validation, and the WSNet
    rows of different policies really differ in (S, C) while holding about the same parameters."""
    from benchmarks import bench_sampling_policy
    assert bench_sampling_policy.main(["--only", "mnist1d", "--quick", "--lrs", "1e-3,1e-2", "--out", str(tmp_path),
                                       "--tag", "t"]) == 0
    rows = json.loads((tmp_path / "sampling_policy_t.json").read_text())["rows"]
    assert [(r["variant"], r["policy"]) for r in rows if r["compression"] == 8] == \
        [("plain", None), ("hashed", None), ("ws", "spatial"), ("ws", "balanced"), ("ws", "channel")]
    for k in (8, 16):
        ws = [r for r in rows if r["compression"] == k and r["variant"] == "ws"]
        assert len({tuple(map(tuple, r["sampling"])) for r in ws}) > 1, ws
        for r in ws:
            assert abs(r["model_compression"] / ws[0]["model_compression"] - 1) < 0.35, (r, ws[0])
    for r in rows:
        assert r["val_error_by_lr"][str(r["lr"])] == min(r["val_error_by_lr"].values())  # keys: JSON strings
