"""The audio benchmark (benchmarks/bench_audio.py) on synthetic data sets written in each layout:
the folds are the data set's own, decoding / resampling / cropping are right, the cache is used,
a short training run learns, the result files are written, and bad input names the file."""

import csv
import dataclasses
import json
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

soundfile = pytest.importorskip("soundfile", reason="soundfile is in requirements.txt")

from benchmarks import bench_audio  # noqa: E402
from benchmarks.audio import decode, layouts, synthetic  # noqa: E402

RATE = 22050


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """One small synthetic data set per layout (3 classes, short clips), written once."""
    root = tmp_path_factory.mktemp("audio")
    return {layout: synthetic.write(str(root / layout), layout, classes=3, clips_per_class=10, seconds=0.3, seed=1)
            for layout in layouts.LAYOUTS}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_esc50_folds_and_classes_are_the_metadata_files(tree):
    audio = layouts.load(tree["esc50"])  # detected from meta/esc50.csv
    assert audio.layout == "esc50" and audio.folds == [1, 2, 3, 4, 5]
    by_file = {os.path.basename(c.path): c for c in audio.clips}
    rows = read_csv(os.path.join(tree["esc50"], "meta", "esc50.csv"))
    assert len(by_file) == len(rows) == 30
    for row in rows:
        clip = by_file[row["filename"]]
        assert (clip.fold, clip.label) == (int(row["fold"]), int(row["target"]))
        assert audio.classes[clip.label] == row["category"]


def test_urbansound8k_folds_are_its_fold_folders(tree):
    audio = layouts.load(tree["urbansound8k"])
    assert audio.layout == "urbansound8k" and audio.folds == list(range(1, 11))
    rows = {r["slice_file_name"]: r for r in read_csv(os.path.join(tree["urbansound8k"], "metadata", "UrbanSound8K.csv"))}
    for clip in audio.clips:
        row = rows[os.path.basename(clip.path)]
        assert os.path.basename(os.path.dirname(clip.path)) == f"fold{row['fold']}" == f"fold{clip.fold}"
        assert clip.label == int(row["classID"]) and audio.classes[clip.label] == row["class"]


def test_folders_layout_gets_stratified_seeded_folds(tree):
    audio = layouts.load(tree["folders"], folds=5, seed=3)
    assert audio.layout == "folders" and audio.classes == sorted(list(synthetic.CLASSES)[:3])  # sorted names
    for clip in audio.clips:  # the class is the folder
        assert os.path.basename(os.path.dirname(clip.path)) == audio.classes[clip.label]
    for fold in audio.folds:  # 10 clips per class in 5 folds: 2 of each class in each fold
        labels = [c.label for c in audio.clips if c.fold == fold]
        assert sorted(labels) == [0, 0, 1, 1, 2, 2], (fold, labels)
    again = layouts.load(tree["folders"], folds=5, seed=3)
    other = layouts.load(tree["folders"], folds=5, seed=4)
    assert [c.fold for c in again.clips] == [c.fold for c in audio.clips]
    assert [c.fold for c in other.clips] != [c.fold for c in audio.clips]


def tone(rate, seconds, hz, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("rate,subtype,stereo", [(44100, "PCM_16", True), (8000, "FLOAT", False),
                                                 (48000, "PCM_24", False), (16000, "PCM_16", True)])
def test_a_tone_keeps_its_frequency_and_level_through_resampling(tmp_path, rate, subtype, stereo):
    signal = tone(rate, 1.5, 1000.0)
    data = np.stack([signal, 0.5 * signal], axis=1) if stereo else signal
    path = str(tmp_path / "tone.wav")
    soundfile.write(path, data, rate, subtype=subtype)
    out = decode.read_clip(path, RATE, RATE)  # 1 s window, centre of 1.5 s
    assert out.shape == (RATE,) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out * np.hanning(RATE)))
    assert abs(np.argmax(spectrum) - 1000) <= 1   # RATE samples of RATE Hz: 1 Hz bins
    level = 0.75 * 0.5 if stereo else 0.5                               # mono = mean of channels
    assert np.sqrt(np.mean(out ** 2)) == pytest.approx(level / np.sqrt(2), rel=0.02)


def test_crop_is_centred_and_padding_is_zeros_at_the_end(tmp_path):
    ramp = np.linspace(-1, 1, 3000, dtype=np.float32)
    long_path, short_path = str(tmp_path / "long.wav"), str(tmp_path / "short.wav")
    soundfile.write(long_path, ramp, RATE, subtype="FLOAT")       # no resampling: samples exact
    soundfile.write(short_path, ramp[:700], RATE, subtype="FLOAT")
    np.testing.assert_array_equal(decode.read_clip(long_path, RATE, 1000), ramp[1000:2000])
    short = decode.read_clip(short_path, RATE, 1000)
    np.testing.assert_array_equal(short[:700], ramp[:700])
    assert not short[700:].any()


def test_second_run_reads_the_cache_and_a_changed_file_is_decoded_again(tree, tmp_path, monkeypatch):
    audio = layouts.load(tree["folders"])
    first = decode.decode(audio, RATE, 4000, str(tmp_path), progress=False)
    assert not first.from_cache and first.x.shape == (30, 4000)
    assert [os.path.basename(p) for p in first.paths] == [os.path.basename(c.path) for c in audio.clips]
    x = np.array(first.x)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(soundfile, "read", no_decoding)
    second = decode.decode(audio, RATE, 4000, str(tmp_path), progress=False)
    assert second.from_cache
    np.testing.assert_array_equal(np.asarray(second.x), x)
    np.testing.assert_array_equal(second.y, first.y)
    np.testing.assert_array_equal(second.fold, first.fold)
    # other folds over the same clips (the folders layout draws them per seed): the same decoded
    # copy, with the folds of this call
    refolded = dataclasses.replace(audio, clips=[dataclasses.replace(c, fold=6 - c.fold) for c in audio.clips])
    fourth = decode.decode(refolded, RATE, 4000, str(tmp_path), progress=False)
    assert fourth.from_cache and fourth.cache_dir == first.cache_dir
    np.testing.assert_array_equal(fourth.fold, 6 - first.fold)
    np.testing.assert_array_equal(fourth.y, first.y)
    monkeypatch.undo()
    os.utime(audio.clips[0].path, ns=(0, 12345))   # the data set changed: a new key
    third = decode.decode(audio, RATE, 4000, str(tmp_path), progress=False)
    assert not third.from_cache and third.cache_dir != first.cache_dir


def test_quick_mode_on_esc50_layout_writes_results(tree, tmp_path):
    out = tmp_path / "out"
    assert bench_audio.main(["--data", tree["esc50"], "--quick", "--quantized", "--seconds", "0.3",
                             "--cache", str(tmp_path / "cache"), "--out", str(out), "--tag", "t", "--no-progress"]) == 0
    result = json.loads((out / "audio_t.json").read_text())
    assert (out / "audio_t.md").read_text().count("| WSNet") == 2 and (out / "audio_t.png").stat().st_size > 0
    meta, rows = result["meta"], result["rows"]
    assert meta["layout"] == "esc50" and meta["test_folds"] == [1] and meta["clips"] == 30
    assert {(r["variant"], r["compression"]) for r in rows} == {("plain", None), ("narrow", 10), ("ws", 10), ("ws8", 10),
                                                                ("hashed", 10)}
    ws, ws8, hashed, narrow = (next(r for r in rows if r["variant"] == v) for v in ("ws", "ws8", "hashed", "narrow"))
    # the default allocation (by_params_fast): each tool spends the same budget its own way
    assert abs(hashed["params"] / ws["params"] - 1) < 0.05 and ws["allocation"] == hashed["allocation"] == "by_params_fast"
    assert 0.9 < narrow["params"] / ws["params"] <= 1.0 and narrow["model_ratio"] >= ws["model_ratio"]  # the narrowed baseline
    assert 10 <= ws["model_ratio"] <= 11.5 and ws8["bytes"] < 0.4 * ws["bytes"]
    assert all(len(r["fold_accuracy"]) == 1 for r in rows)


def test_urbansound8k_layout_runs_its_own_folds(tree, tmp_path):
    out = tmp_path / "out"
    assert bench_audio.main(["--data", tree["urbansound8k"], "--quick", "--test-folds", "3,10", "--seconds", "0.3",
                             "--compressions", "4", "--cache", str(tmp_path / "c"), "--out", str(out), "--tag", "u",
                             "--no-progress"]) == 0
    result = json.loads((out / "audio_u.json").read_text())
    assert result["meta"]["test_folds"] == [3, 10] and result["meta"]["folds"] == list(range(1, 11))
    assert all(sorted(r["fold_accuracy"]) == ["10", "3"] for r in result["rows"])


def test_allocation_tuning_and_time_shift_reach_the_rows(tree, tmp_path):
    out = tmp_path / "out"
    assert bench_audio.main(["--data", tree["esc50"], "--quick", "--seconds", "0.3", "--allocate", "uniform,by_params",
                             "--time-shift", "0.5", "--tune", "--tune-epochs", "1", "--cache", str(tmp_path / "c"),
                             "--out", str(out), "--tag", "a", "--no-progress"]) == 0
    result = json.loads((out / "audio_a.json").read_text())
    rows = {(r["variant"], r["allocation"]): r for r in result["rows"]}
    assert set(rows) == {("plain", None), ("narrow", None), ("ws", "uniform"), ("hashed", "uniform"), ("ws", "by_params"),
                         ("hashed", "by_params")}
    assert result["meta"]["tuned"] and result["meta"]["time_shift"] == 0.5
    grid = {1e-3 * s for s in (1 / 3, 1.0, 3.0, 9.0, 27.0, 1 / 9, 1 / 27)}
    assert all(any(abs(r["lr"] - g) < 1e-12 for g in grid) and r["weight_decay"] in (0.0, 1e-4) for r in rows.values())
    for variant in ("ws", "hashed"):  # by_params: the whole model's ratio, within 15% above 10x
        assert 10 <= rows[(variant, "by_params")]["model_ratio"] <= 11.5, rows[(variant, "by_params")]
    assert "by_params" in (out / "audio_a.md").read_text()


def test_a_channel_sums_floor_in_an_allocation_name_reaches_the_wsnet_model():
    from benchmarks.allocations import allocation_kwargs, parse_allocations
    from benchmarks.audio import experiment
    assert allocation_kwargs("by_params_fast:6.7+sums16") == {"allocate": "by_params_fast", "heavy_compactness": 6.7,
                                                              "min_channel_sums": 16}
    assert parse_allocations("by_params_fast+sums16, uniform") == ["by_params_fast+sums16", "uniform"]
    runs = {(name, allocation): build for name, _, _, allocation, build in
            experiment.variants(10, [45], allocations=["by_params_fast+sums16", "by_params_fast+sums1"])}
    repeats = {allocation: [m.channel_repeat for m in runs[("ws", allocation)]().modules() if hasattr(m, "channel_repeat")]
               for allocation in ("by_params_fast+sums16", "by_params_fast+sums1")}
    assert repeats["by_params_fast+sums1"][-1] == 64 and repeats["by_params_fast+sums16"][-1] == 32  # conv7: 512 inputs


def test_time_shift_rolls_each_clip_by_its_own_offset():
    from benchmarks.audio.experiment import time_shift
    x = torch.arange(3 * 50, dtype=torch.float32).reshape(3, 1, 50)
    shifted = time_shift(0.2)(x, torch.Generator().manual_seed(0))
    offsets = []
    for clip, out in zip(x, shifted):
        matches = [k for k in range(-10, 11) if torch.equal(torch.roll(clip, k, -1), out)]
        assert len(matches) == 1
        offsets.append(matches[0])
    assert len(set(offsets)) > 1 and time_shift(0.0)(x, None) is x


def test_short_training_learns_the_synthetic_task_well_above_chance(tmp_path):
    """10 classes (chance 10%), 20 clips each, 1 s; 10 epochs on folds 3-5, tested on fold 1."""
    root = synthetic.write(str(tmp_path / "data"), "folders", classes=10, clips_per_class=20, seconds=1.0, seed=0)
    out = tmp_path / "out"
    assert bench_audio.main(["--data", root, "--epochs", "10", "--compressions", "10", "--test-folds", "1",
                             "--seconds", "1", "--cache", str(tmp_path / "c"), "--out", str(out), "--tag", "l",
                             "--no-progress"]) == 0
    rows = {r["variant"]: r for r in json.loads((out / "audio_l.json").read_text())["rows"]}
    assert rows["plain"]["accuracy_mean"] >= 40, rows["plain"]
    assert rows["hashed"]["accuracy_mean"] >= 40, rows["hashed"]
    assert rows["ws"]["accuracy_mean"] >= 20, rows["ws"]
    assert all(r["step_ms_median"] > 0 and r["latency_ms"] > 0 for r in rows.values())
    assert rows["plain"]["latency_vs_plain"] == 1.0
    assert "latency ms (batch 1, 1 thread)" in (out / "audio_l.md").read_text()


# Bad input: a clear error naming the file, never a silent skip.

def test_missing_metadata_file_is_named(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(FileNotFoundError, match=r"meta/esc50\.csv"):
        layouts.load(str(tmp_path), "esc50")
    with pytest.raises(FileNotFoundError, match=r"metadata/UrbanSound8K\.csv"):
        layouts.load(str(tmp_path), "urbansound8k")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        layouts.load(str(tmp_path / "nowhere"))


def test_metadata_listing_a_missing_clip_or_lacking_a_column_is_named(tree, tmp_path):
    import shutil
    root = shutil.copytree(tree["esc50"], tmp_path / "esc")
    victim = sorted(os.listdir(root / "audio"))[4]
    os.remove(root / "audio" / victim)
    with pytest.raises(FileNotFoundError, match=f"line .* lists .*{victim}.* does not exist"):
        layouts.load(str(root))
    (root / "meta" / "esc50.csv").write_text("filename,target\nx.wav,0\n")
    with pytest.raises(ValueError, match=r"esc50\.csv: expects columns .* lacks \['fold', 'category'\]"):
        layouts.load(str(root))


def test_unreadable_and_empty_audio_files_are_named(tmp_path):
    garbage, empty = tmp_path / "garbage.wav", tmp_path / "empty.wav"
    garbage.write_bytes(b"RIFF not really a wave file")
    soundfile.write(str(empty), np.zeros((0,), np.float32), 16000)
    with pytest.raises(decode.AudioError, match="garbage.wav: cannot be decoded"):
        decode.read_clip(str(garbage), RATE, 100)
    with pytest.raises(decode.AudioError, match=r"empty.wav: holds no audio \(0 frames\)"):
        decode.read_clip(str(empty), RATE, 100)


def test_unreadable_clip_stops_the_run_unless_skipped_and_then_it_is_listed(tree, tmp_path):
    import shutil
    root = shutil.copytree(tree["folders"], tmp_path / "f")
    bad = root / "chirp_up" / "chirp_up_0003.wav"
    bad.write_bytes(b"\x00" * 64)
    audio = layouts.load(str(root))
    with pytest.raises(decode.AudioError, match="chirp_up_0003.wav"):
        decode.decode(audio, RATE, 1000, str(tmp_path / "c"), progress=False)
    kept = decode.decode(audio, RATE, 1000, str(tmp_path / "c2"), skip_unreadable=True, progress=False)
    assert len(kept.y) == 29 and str(bad) not in kept.paths
    assert len(kept.skipped) == 1 and "chirp_up_0003.wav" in kept.skipped[0]


def test_class_folder_without_audio_is_named_and_other_files_are_reported(tree, tmp_path, capsys):
    import shutil
    root = shutil.copytree(tree["folders"], tmp_path / "f")
    (root / "tone_low" / "notes.txt").write_text("recorded at the lake")
    audio = layouts.load(str(root))
    assert audio.ignored == [str(root / "tone_low" / "notes.txt")]
    (root / "silence").mkdir()
    (root / "silence" / "README").write_text("nothing here")
    with pytest.raises(ValueError, match=r"class folder .*silence holds no audio file"):
        layouts.load(str(root))


def test_cli_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        bench_audio.main([])                                   # neither --data nor --synthetic
    with pytest.raises(SystemExit):
        bench_audio.main(["--data", str(tmp_path), "--compressions", "0.5"])
    with pytest.raises(ValueError, match="layout expects"):
        layouts.load(str(tmp_path), "wav_folders")


def test_merge_pools_folds_adds_variants_and_refuses_what_does_not_pool(tree, tmp_path):
    """Three runs: all variants on fold 1, the same on fold 2, and only WSNet with a new allocation
    (by_params_fast:3) on fold 1; --merge pools the folds of the shared variants, keeps the new one
    beside them and times every row again in one process."""
    out = tmp_path / "out"
    common = ["--data", tree["esc50"], "--quick", "--seconds", "0.3", "--cache", str(tmp_path / "c"), "--out", str(out),
              "--no-progress"]
    assert bench_audio.main(common + ["--test-folds", "1", "--tag", "f1"]) == 0
    assert bench_audio.main(common + ["--test-folds", "2", "--tag", "f2"]) == 0
    assert bench_audio.main(common + ["--test-folds", "1", "--variants", "ws", "--allocate", "by_params_fast:3",
                                      "--tag", "new"]) == 0
    runs = {t: json.loads((out / f"audio_{t}.json").read_text()) for t in ("f1", "f2", "new")}
    assert {r["variant"] for r in runs["new"]["rows"]} == {"ws"}          # --variants: only what was asked
    new_row = runs["new"]["rows"][0]
    assert new_row["allocation"] == "by_params_fast:3" and 2.7 <= new_row["layer_compression"][0] <= 3.6
    assert new_row["latency_ms"] > 0 and new_row["latency_vs_plain"] > 0  # plain timed beside it
    paths = [str(out / f"audio_{t}.json") for t in ("f1", "f2", "new")]
    assert bench_audio.main(["--merge", *paths, "--out", str(out), "--tag", "m"]) == 0
    merged = json.loads((out / "audio_m.json").read_text())
    rows = {(r["variant"], r["allocation"]): r for r in merged["rows"]}
    assert set(rows) == {("plain", None), ("narrow", None), ("ws", "by_params_fast"), ("hashed", "by_params_fast"),
                         ("ws", "by_params_fast:3")}
    for key, row in rows.items():
        sources = [r for run in ("f1", "f2") for r in runs[run]["rows"] if (r["variant"], r["allocation"]) == key]
        if key[1] == "by_params_fast:3":
            sources = [new_row]
        expected = {f: a for r in sources for f, a in r["fold_accuracy"].items()}
        assert row["fold_accuracy"] == expected
        assert row["accuracy_mean"] == pytest.approx(sum(expected.values()) / len(expected))
        assert row["latency_ms"] > 0
    assert sorted(rows[("ws", "by_params_fast")]["fold_accuracy"]) == ["1", "2"]
    assert rows[("plain", None)]["latency_vs_plain"] == 1.0 and merged["meta"]["test_folds"] == [1, 2]
    assert "Merged from" in (out / "audio_m.md").read_text()
    with pytest.raises(SystemExit, match="fold 1 .*appears twice"):
        bench_audio.main(["--merge", paths[0], paths[0], "--out", str(out)])
    # a variant may have its own lr (merged beside the others), but not two across its runs
    own = json.loads((out / "audio_new.json").read_text())
    own["meta"]["lr"] = own["rows"][0]["lr"] = 3e-3
    (out / "own_lr.json").write_text(json.dumps(own))
    assert bench_audio.main(["--merge", paths[0], paths[1], str(out / "own_lr.json"), "--out", str(out), "--tag", "own"]) == 0
    own_rows = {(r["variant"], r["allocation"]): r for r in json.loads((out / "audio_own.json").read_text())["rows"]}
    assert own_rows[("ws", "by_params_fast:3")]["settings"] == [[3e-3, own["rows"][0]["weight_decay"]]]
    assert own_rows[("plain", None)]["settings"] == [[runs["f1"]["meta"]["lr"], runs["f1"]["meta"]["weight_decay"]]]
    assert "each variant its own lr and weight decay" in (out / "audio_own.md").read_text()
    relearned = json.loads((out / "audio_f2.json").read_text())
    relearned["meta"]["lr"] = relearned["rows"][0]["lr"] = 3e-3
    (out / "relearned.json").write_text(json.dumps(relearned))
    with pytest.raises(SystemExit, match="trained with lr 0.003.* a variant's runs must share its recipe"):
        bench_audio.main(["--merge", paths[0], str(out / "relearned.json"), "--out", str(out)])
    # a searched run and runs that reuse what its search chose pool; a different lr does not
    searched = json.loads((out / "audio_f2.json").read_text())
    searched["meta"].update(tuned=True, tune_epochs=2)
    (out / "searched.json").write_text(json.dumps(searched))
    assert bench_audio.main(["--merge", paths[0], str(out / "searched.json"), "--out", str(out), "--tag", "s"]) == 0
    assert "what the searches in searched.json chose" in (out / "audio_s.md").read_text()
    searched["rows"][0]["lr"] = 3e-3
    (out / "searched_other.json").write_text(json.dumps(searched))
    with pytest.raises(SystemExit, match="a variant's runs must share its recipe"):
        bench_audio.main(["--merge", paths[0], str(out / "searched_other.json"), "--out", str(out)])
    other = json.loads((out / "audio_f2.json").read_text())
    other["meta"]["epochs"] = 7
    (out / "other.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="epochs=7 .* only runs trained the same way merge"):
        bench_audio.main(["--merge", paths[0], str(out / "other.json"), "--out", str(out)])
    for bad in ("by_params_fast:0.5", "by_params_fast+sums0", "by_params_fast+sumsx", "+sums16"):
        with pytest.raises(SystemExit):
            bench_audio.main(["--data", tree["esc50"], "--allocate", bad])
    with pytest.raises(SystemExit):
        bench_audio.main(["--data", tree["esc50"], "--variants", "ws,wide"])
