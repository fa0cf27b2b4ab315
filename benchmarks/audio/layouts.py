"""The three on-disk layouts the audio benchmark reads, as one `AudioSet`: every clip's path, its
class and its fold.

- esc50: the ESC-50 release (`audio/*.wav`, `meta/esc50.csv` with columns filename, fold, target,
  category): its own 5 folds (clips cut from one recording share a fold, so folds never leak).
- urbansound8k: `audio/fold1..10/*.wav` and `metadata/UrbanSound8K.csv` (slice_file_name, fold,
  classID, class): its own 10 folds.
- folders: one sub-folder per class of audio files; stratified folds with a fixed seed
  (scikit-learn's StratifiedKFold), since such a tree has none of its own.

Every problem names the file or folder: a missing metadata file, a listed clip that is not on
disk, a class folder without audio. Files that are not audio are listed in `AudioSet.ignored`
(reported by the benchmark), never dropped silently."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

LAYOUTS = ("esc50", "urbansound8k", "folders")


@dataclass(frozen=True)
class Clip:
    path: str
    label: int
    fold: int   # 1-based, as ESC-50 and UrbanSound8K number them


@dataclass
class AudioSet:
    layout: str
    root: str
    classes: list[str]
    clips: list[Clip]
    folds: list[int]
    ignored: list[str] = field(default_factory=list)  # files seen but not audio

    def describe(self) -> str:
        return (f"{self.layout} at {self.root}: {len(self.clips)} clips, {len(self.classes)} classes, "
                f"folds {self.folds}" + (f", {len(self.ignored)} non-audio files ignored" if self.ignored else ""))


def audio_extensions() -> set[str]:
    """File extensions libsndfile reads here (WAV, FLAC, OGG, AIFF, ... as soundfile reports them)."""
    import soundfile
    formats = {name.lower() for name in soundfile.available_formats()}
    aliases = {"aiff": {"aif", "aiff"}, "ogg": {"ogg", "oga", "opus"}, "mpeg": {"mp3"}}
    return {ext for name in formats for ext in aliases.get(name, {name})}


def detect(root: str) -> str:
    """The layout of `root`: ESC-50 or UrbanSound8K by their metadata file, else class folders."""
    if os.path.isfile(os.path.join(root, "meta", "esc50.csv")):
        return "esc50"
    if os.path.isfile(os.path.join(root, "metadata", "UrbanSound8K.csv")):
        return "urbansound8k"
    return "folders"


def load(root: str, layout: str = "auto", folds: int = 5, seed: int = 0) -> AudioSet:
    """The clips of the data set at `root`; `folds` and `seed` only shape the folders layout."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data expects a directory, got {root!r} (not a directory)")
    if layout == "auto":
        layout = detect(root)
    if layout == "esc50":
        return _from_csv(root, "esc50", os.path.join("meta", "esc50.csv"), ("filename", "fold", "target", "category"),
                         lambda row: os.path.join("audio", row["filename"]))
    if layout == "urbansound8k":
        return _from_csv(root, "urbansound8k", os.path.join("metadata", "UrbanSound8K.csv"),
                         ("slice_file_name", "fold", "classID", "class"),
                         lambda row: os.path.join("audio", f"fold{row['fold']}", row["slice_file_name"]))
    if layout == "folders":
        return _from_folders(root, folds, seed)
    raise ValueError(f"layout expects one of {('auto',) + LAYOUTS}, got {layout!r}")


def _from_csv(root, layout, meta_name, columns, relpath) -> AudioSet:
    """ESC-50 / UrbanSound8K: (file, fold, class id, class name) per row of the metadata csv."""
    meta = os.path.join(root, meta_name)
    if not os.path.isfile(meta):
        raise FileNotFoundError(f"{layout} layout expects its metadata file {meta} (not found)")
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    name_col, fold_col, id_col, class_col = columns
    missing = [c for c in columns if not rows or c not in rows[0]]
    if missing:
        raise ValueError(f"{meta}: expects columns {list(columns)}, lacks {missing}" + ("" if rows else " (no rows)"))
    names: dict[int, str] = {}
    clips = []
    for line, row in enumerate(rows, start=2):
        try:
            fold, label = int(row[fold_col]), int(row[id_col])
        except ValueError:
            raise ValueError(f"{meta} line {line}: {fold_col} and {id_col} expect integers, got "
                             f"{row[fold_col]!r} and {row[id_col]!r}") from None
        if names.setdefault(label, row[class_col]) != row[class_col]:
            raise ValueError(f"{meta} line {line}: class id {label} is {names[label]!r} above and "
                             f"{row[class_col]!r} here")
        path = os.path.join(root, relpath(row))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{meta} line {line} lists {path}, which does not exist")
        clips.append(Clip(path, label, fold))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{meta}: class ids expect 0..{len(names) - 1}, got {sorted(names)}")
    return AudioSet(layout, root, [names[i] for i in range(len(names))], clips, sorted({c.fold for c in clips}))


def _from_folders(root, folds, seed) -> AudioSet:
    """One sub-folder per class (sorted names are the class ids), stratified seeded folds."""
    from sklearn.model_selection import StratifiedKFold
    extensions = audio_extensions()
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if len(classes) < 2:
        raise ValueError(f"folders layout expects at least 2 class folders in {root}, found {classes}")
    paths, labels, ignored = [], [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        found = 0
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for file in sorted(filenames):
                full = os.path.join(dirpath, file)
                if os.path.splitext(file)[1].lower().lstrip(".") in extensions:
                    paths.append(full)
                    labels.append(label)
                    found += 1
                elif not file.startswith("."):
                    ignored.append(full)
        if found == 0:
            raise ValueError(f"class folder {folder} holds no audio file (expects one of "
                             f"{sorted(extensions)})")
    counts = [labels.count(k) for k in range(len(classes))]
    if min(counts) < folds:
        smallest = classes[counts.index(min(counts))]
        raise ValueError(f"folds={folds} expects at least {folds} clips per class; class folder "
                         f"{os.path.join(root, smallest)} has {min(counts)}")
    fold_of = [0] * len(paths)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(paths, labels), start=1):
        for i in test:
            fold_of[i] = k
    clips = [Clip(p, y, f) for p, y, f in zip(paths, labels, fold_of)]
    return AudioSet("folders", root, classes, clips, list(range(1, folds + 1)), ignored)
