"""Decoding an AudioSet into one array the model reads: every clip read with soundfile, averaged to
mono, resampled to the model's rate with soxr (a well-kept, high-quality resampler), then cropped
(centre) or zero-padded (end) to a fixed length, and cached on disk so a second run does not decode
again. The cache key covers the files (path, size, modification time), the rate and the length,
so a changed data set is decoded afresh; labels and folds are not in it (they come from the
AudioSet on every call), so runs that only draw other folds (the folders layout, per seed) share
one decoded copy."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .layouts import AudioSet

CACHE_VERSION = 2  # bump when decoding changes what it writes (2: labels and folds left out of the key)


class AudioError(ValueError):
    """A clip that cannot be used; the message names the file."""


def read_clip(path: str, rate: int, length: int) -> np.ndarray:
    """The clip at `path` as `length` float32 samples at `rate` Hz, mono."""
    import soundfile
    import soxr
    try:
        data, source_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile's errors carry no file name of their own
        raise AudioError(f"{path}: cannot be decoded as audio ({error})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: holds no audio (0 frames)")
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: holds non-finite samples (NaN or inf)")
    if source_rate != rate:
        mono = soxr.resample(mono, source_rate, rate, quality="HQ").astype(np.float32, copy=False)
    return fit_length(mono, length)


def fit_length(signal: np.ndarray, length: int) -> np.ndarray:
    """Centre crop a longer signal, zero-pad a shorter one at its end."""
    if len(signal) >= length:
        start = (len(signal) - length) // 2
        return np.ascontiguousarray(signal[start:start + length], dtype=np.float32)
    out = np.zeros(length, dtype=np.float32)
    out[:len(signal)] = signal
    return out


@dataclass
class Decoded:
    x: np.ndarray          # (clips, length) float32 (memory-mapped from the cache)
    y: np.ndarray          # (clips,) int64 class ids
    fold: np.ndarray       # (clips,) int64 folds
    paths: list[str]
    skipped: list[str]     # "path: why" for each clip left out (only with skip_unreadable)
    from_cache: bool
    cache_dir: str


def cache_key(audio: AudioSet, rate: int, length: int) -> str:
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, audio.layout, rate, length]).encode())
    for clip in audio.clips:
        st = os.stat(clip.path)
        digest.update(f"{clip.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def labels_and_folds(audio: AudioSet, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(class ids, folds) of the clips at `paths`, as `audio` assigns them now."""
    by_path = {clip.path: clip for clip in audio.clips}
    return (np.array([by_path[p].label for p in paths], dtype=np.int64),
            np.array([by_path[p].fold for p in paths], dtype=np.int64))


def decode(audio: AudioSet, rate: int, length: int, cache_root: str, skip_unreadable: bool = False,
           progress: bool = True) -> Decoded:
    """All clips of `audio` at `rate` Hz and `length` samples, from the cache when it holds them.
    An unreadable or empty clip raises AudioError naming it, unless `skip_unreadable`: then it is
    left out and listed in `skipped` (the benchmark prints and records the list)."""
    folder = os.path.join(cache_root, f"{audio.layout}-{rate}hz-{length}-{cache_key(audio, rate, length)}")
    meta_path = os.path.join(folder, "meta.json")
    if os.path.isfile(meta_path):  # written last: its presence means the arrays are complete
        with open(meta_path) as f:
            meta = json.load(f)
        y, fold = labels_and_folds(audio, meta["paths"])
        return Decoded(np.load(os.path.join(folder, "x.npy"), mmap_mode="r"), y, fold, meta["paths"],
                       meta["skipped"], True, folder)
    os.makedirs(folder, exist_ok=True)
    x = np.lib.format.open_memmap(os.path.join(folder, "x.partial.npy"), mode="w+", dtype=np.float32,
                                  shape=(len(audio.clips), length))
    kept, skipped = [], []
    for clip in tqdm(audio.clips, desc=f"decoding {audio.layout}", unit="clip", disable=not progress):
        try:
            x[len(kept)] = read_clip(clip.path, rate, length)
        except AudioError as error:
            if not skip_unreadable:
                raise
            skipped.append(str(error))
            continue
        kept.append(clip)
    if not kept:
        raise AudioError(f"no clip of {audio.root} could be decoded; first problem: {skipped[0]}")
    x.flush()
    del x
    x_path = os.path.join(folder, "x.npy")
    if skipped:  # rewrite without the unused tail
        full = np.load(os.path.join(folder, "x.partial.npy"), mmap_mode="r")
        np.save(x_path, np.asarray(full[:len(kept)]))
        del full
        os.remove(os.path.join(folder, "x.partial.npy"))
    else:
        os.replace(os.path.join(folder, "x.partial.npy"), x_path)
    paths = [c.path for c in kept]
    y, fold = labels_and_folds(audio, paths)
    with open(meta_path + ".partial", "w") as f:
        json.dump({"paths": paths, "skipped": skipped, "rate": rate, "length": length, "layout": audio.layout}, f)
    os.replace(meta_path + ".partial", meta_path)
    return Decoded(np.load(x_path, mmap_mode="r"), y, fold, paths, skipped, False, folder)
