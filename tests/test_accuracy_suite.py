"""The accuracy suite: its --quick run trains every model (loss goes down, each model has the
compression it claims), and the MNIST / CIFAR-10 loaders read the standard file formats."""

import gzip
import math
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
    assert result["meta"]["tuning"] == {"lr_scales": [1.0, 3.0], "weight_decays": [1e-4], "extend": 1}
    expected = {"mnist1d", "digits_mlp", "digits_cnn"}
    if os.path.isdir(datasets.FASHION_MNIST_DEBIAN):  # Debian's package (CI installs it)
        expected |= {"fashion_mlp", "fashion_cnn"}
    assert {r["experiment"] for r in rows} == expected
    for r in rows:
        assert r["latency_ms"] > 0 and r["latency_vs_plain"] > 0, r  # batch-1 latency, one thread
        if r["variant"] == "plain":
            assert r["latency_vs_plain"] == 1.0
        if r["variant"] == "ws8":  # the trained WSNet model, condensed filters in 8 bits
            ws = next(w for w in rows if (w["experiment"], w["variant"], w["compression"]) ==
                      (r["experiment"], "ws", r["compression"]))
            assert r["bytes"] < 0.8 * ws["bytes"] and r["params"] == ws["params"]  # plain layers stay float
            assert abs(r["test_error_mean"] - ws["test_error_mean"]) < 10, (r, ws)
            continue
        first, last = r["first_last_loss"]
        assert last < first, r
        # the fair protocol: each variant searched the same grid; its setting is the validation winner
        # the grid, plus one more step (x3 or /3) when the winner sat on its edge
        tried = r["search"]["val_error"]
        if r["experiment"] == "mnist1d":
            up = tried["lr=0.03,wd=0.0001"] < tried["lr=0.01,wd=0.0001"]  # on a 2-point grid the winner is an edge
            assert set(tried) == {"lr=0.01,wd=0.0001", "lr=0.03,wd=0.0001", "lr=0.09,wd=0.0001" if up
                                  else "lr=0.00333333,wd=0.0001"}, r
        chosen = f"lr={r['lr']:g},wd={r['weight_decay']:g}"
        assert r["search"]["val_error"][chosen] == min(r["search"]["val_error"].values()), r
        if r["variant"] == "plain":
            assert r["model_compression"] == pytest.approx(1.0) and not r["layer_compression"]
        elif r["variant"] == "narrow":  # all layers plain, fewer channels: the widest within WSNet's params
            assert_narrowed_to_wsnet(r, rows)
        else:
            assert r["layer_compression"], r
            exact = r["variant"] == "hashed"  # hashing hits any ratio; sampling the S/C grid
            for achieved in r["layer_compression"]:
                assert abs(achieved / r["compression"] - 1) <= (0.01 if exact else 0.5), r
            assert r["plain_params"] / r["params"] == pytest.approx(r["model_compression"])


def assert_narrowed_to_wsnet(r, rows):
    ws = next(w for w in rows if (w["experiment"], w["variant"], w["compression"], w.get("allocation")) ==
              (r["experiment"], "ws", r["compression"], r["allocation"]))
    exp = {e.name: e for e in bench_accuracy.experiments(bench_accuracy.argparse.Namespace(
        mnist_dir=None, cifar10_dir=None, fashion_mnist_dir=None))}[r["experiment"]]
    wider = sum(p.numel() for p in exp.narrow(r["width"] + 1).parameters())
    # the widest within WSNet's size; width 1 may be above it (digits_cnn's fixed 256-unit head at 64x)
    assert not r["layer_compression"] and ws["params"] < wider, (r, ws, wider)
    assert r["params"] <= ws["params"] or r["width"] == 1, (r, ws)
    assert r["model_compression"] == pytest.approx(r["plain_params"] / r["params"]) and r["model_compression"] > 1
    assert r["plain_params"] == next(p["plain_params"] for p in rows if p["experiment"] == r["experiment"]
                                     and p["variant"] == "plain")


def test_allocations_reach_the_model_ratio_and_narrow_matches_the_first(tmp_path):
    """--allocate trains WSNet and HashNet once per allocation; by_params_fast reaches the target as the
    whole model's ratio (uniform leaves the plain first conv out of it); the narrowed network matches
    the first allocation's WSNet size."""
    argv = ["--quick", "--no-tune", "--only", "mnist1d", "--compressions", "8", "--variants", "plain,narrow,ws,hashed",
            "--out", str(tmp_path), "--tag", "alloc"]
    assert bench_accuracy.main(argv + ["--allocate", "by_params_fast,uniform"]) == 0
    result = json.loads((tmp_path / "accuracy_alloc.json").read_text())
    rows = result["rows"]
    assert result["meta"]["allocations"] == ["by_params_fast", "uniform"]
    assert [(r["variant"], r["allocation"]) for r in rows] == [
        ("plain", None), ("narrow", "by_params_fast"), ("hashed", "by_params_fast"), ("ws", "by_params_fast"),
        ("hashed", "uniform"), ("ws", "uniform")]
    by = {(r["variant"], r["allocation"]): r for r in rows}
    plain = by[("plain", None)]
    for variant in ("ws", "hashed"):
        fast, uniform = by[(variant, "by_params_fast")], by[(variant, "uniform")]
        assert fast["model_compression"] == pytest.approx(8, rel=0.1), fast
        assert uniform["model_compression"] < 7.5 and min(uniform["layer_compression"]) >= 7.9, uniform
        assert plain["params"] / fast["params"] == pytest.approx(fast["model_compression"])
    assert_narrowed_to_wsnet(by[("narrow", "by_params_fast")], rows)
    table = (tmp_path / "accuracy_alloc.md").read_text()
    assert "| mnist1d | ws | 8 | by_params_fast |" in table and "mnist1d 8x uniform: WSNet" in table
    assert "vs narrowed plain" in table
    with pytest.raises(SystemExit, match="--allocate expects names of"):
        bench_accuracy.main(argv + ["--allocate", "by_flops"])
    with pytest.raises(SystemExit, match="--compressions: expected numbers >= 1, got '0.5'"):
        bench_accuracy.main(argv[:4] + ["--compressions", "0.5"])


def test_search_picks_the_lowest_validation_error_and_the_first_on_ties():
    from benchmarks.accuracy.tuning import Setting, choose, grid
    settings = grid(1e-3, (1 / 3, 1, 3), (0.0, 1e-4))
    assert [(round(s.lr, 6), s.weight_decay) for s in settings] == \
        [(0.000333, 0.0), (0.000333, 1e-4), (0.001, 0.0), (0.001, 1e-4), (0.003, 0.0), (0.003, 1e-4)]
    val = {0: 5.0, 1: 4.0, 2: 3.5, 3: 3.5, 4: 9.0, 5: 3.6}
    best, errors, payload = choose(settings, lambda s: (val[settings.index(s)], f"model {settings.index(s)}"))
    assert best == Setting(0.001, 0.0) and payload == "model 2"  # 2 and 3 tie: the grid's order decides
    assert errors == {s.key(): val[i] for i, s in enumerate(settings)}
    with pytest.raises(ValueError, match="settings: expected at least one"):
        choose([], lambda s: (0.0, None))


@pytest.mark.parametrize("valley, extensions, chosen", [(0.03, 1, 0.03), (0.3, 2, 0.27), (0.001, 2, 0.01 / 9),
                                                        (0.01, 0, 0.01), (0.004, 1, 0.01 / 3)])
def test_search_extends_past_the_grids_edge_while_the_winner_sits_on_it(valley, extensions, chosen):
    from benchmarks.accuracy.tuning import search
    calls = []

    def run(setting):  # validation error with its minimum at lr = valley; weight decay a small penalty
        calls.append(setting)
        return abs(math.log(setting.lr / valley)) + setting.weight_decay, setting

    best, errors, payload = search(0.01, (1 / 3, 1, 3), (0.0, 1e-4), run, extend=2)
    assert len(errors) == len(calls) == 6 + 2 * extensions
    assert payload is best and best.weight_decay == 0.0
    assert best.lr == pytest.approx(chosen)


def test_filtered_runs_merge_into_one_table(tmp_path):
    """--variants/--compressions train a subset without the search (--no-tune); --merge joins runs."""
    a = ["--quick", "--only", "digits_mlp", "--out", str(tmp_path)]
    assert bench_accuracy.main(a + ["--variants", "plain,ws", "--compressions", "8", "--tag", "a"]) == 0
    assert bench_accuracy.main(a + ["--variants", "hashed", "--no-tune", "--tag", "b"]) == 0
    rows_a = json.loads((tmp_path / "accuracy_a.json").read_text())["rows"]
    rows_b = json.loads((tmp_path / "accuracy_b.json").read_text())["rows"]
    assert [(r["variant"], r["compression"]) for r in rows_a] == [("plain", None), ("ws", 8)]
    assert [(r["variant"], r["compression"]) for r in rows_b] == [("hashed", 8), ("hashed", 64)]
    assert all(r["search"] is None and r["lr"] == 1e-3 and r["weight_decay"] == 0.0 for r in rows_b)
    assert bench_accuracy.main(["--merge", str(tmp_path / "accuracy_a.json"), str(tmp_path / "accuracy_b.json"),
                                "--out", str(tmp_path), "--tag", "ab"]) == 0
    merged = json.loads((tmp_path / "accuracy_ab.json").read_text())
    assert merged["rows"] == rows_a + rows_b and [m["file"] for m in merged["meta"]["sources"]] == \
        ["accuracy_a.json", "accuracy_b.json"]
    table = (tmp_path / "accuracy_ab.md").read_text()
    assert "digits_mlp 8x uniform: WSNet" in table and "(fixed)" in table and "searched" in table
    with pytest.raises(SystemExit, match="--variants: expected values from"):
        bench_accuracy.main(a + ["--variants", "plain,hashnet"])
    # --add-latency: rows of a run without latency get it again from fresh models; accuracy kept
    for row in rows_b:
        row.pop("latency_ms"), row.pop("latency_vs_plain")
    (tmp_path / "accuracy_b.json").write_text(json.dumps({"meta": json.loads(
        (tmp_path / "accuracy_a.json").read_text())["meta"], "rows": rows_b}))
    assert bench_accuracy.main(["--merge", str(tmp_path / "accuracy_a.json"), str(tmp_path / "accuracy_b.json"),
                                "--add-latency", "--out", str(tmp_path), "--tag", "lat"]) == 0
    timed = json.loads((tmp_path / "accuracy_lat.json").read_text())
    assert [r["test_error_mean"] for r in timed["rows"]] == [r["test_error_mean"] for r in rows_a + rows_b]
    assert all(r["latency_ms"] > 0 and r["latency_vs_plain"] > 0 for r in timed["rows"])
    assert timed["meta"]["latency_measured"] and "Latency measured" in (tmp_path / "accuracy_lat.md").read_text()
    with pytest.raises(SystemExit, match="--add-latency works on the rows of --merge"):
        bench_accuracy.main(["--add-latency"])


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


def test_condensed_init_study_scales_the_init_and_the_lr_of_the_condensed_filters_only(tmp_path):
    from benchmarks import bench_condensed_init as study
    _, build, *_ = study.EXPERIMENTS["mnist1d"]
    torch.manual_seed(0)
    base = study.prepared(build, "ws", 8, 1.0)
    torch.manual_seed(0)
    doubled = study.prepared(build, "ws", 8, 2.0)
    for (name, a), (_, b) in zip(base.named_parameters(), doubled.named_parameters()):
        torch.testing.assert_close(b, 2 * a if name.endswith("condensed") else a, rtol=0, atol=0)
    first, rest = study.groups(base, 0.01, 3.0)
    assert first["lr"] == pytest.approx(0.03) and rest["lr"] == 0.01 and first["params"]
    assert sorted(map(id, first["params"] + rest["params"])) == sorted(map(id, base.parameters()))
    assert study.main(["--only", "mnist1d", "--quick", "--out", str(tmp_path), "--tag", "t"]) == 0
    rows = json.loads((tmp_path / "condensed_init_t.json").read_text())["rows"]
    assert [r["candidate"] for r in rows if r["compression"] == 8] == [c[0] for c in study.CANDIDATES]
    for r in rows:
        assert len(r["val_error_by_setting"]) in (3, 4, 5) and r["first_last_loss"][1] < r["first_last_loss"][0], r
