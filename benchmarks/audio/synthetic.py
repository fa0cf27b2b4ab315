"""Synthetic labelled audio written in any of the three layouts, for the tests, CI's quick run and
the committed example run: ten classes of tones, chirps, noise bursts and other sounds, each clip
with a random onset, length, gain and background noise (SNR -5 to 15 dB), at sample rates other than
the model's, mono or stereo, 16-bit or float WAV, shorter and longer than the model's window."""

from __future__ import annotations

import csv
import os

import numpy as np

RATES = (16000, 32000, 44100, 48000)   # never 22.05 kHz: every clip is resampled


def _tone(t, rng, low, high):
    return np.sin(2 * np.pi * rng.uniform(low, high) * t + rng.uniform(0, 2 * np.pi))


def _chirp(t, rng, f0, f1):
    f0, f1 = f0 * rng.uniform(0.9, 1.1), f1 * rng.uniform(0.9, 1.1)
    span = max(t[-1], 1e-3)
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * span)))


def _bursts(t, rng, rate):
    out = np.zeros_like(t)
    for _ in range(rng.integers(3, 7)):
        start, width = rng.integers(0, len(t)), int(rate * rng.uniform(0.05, 0.15))
        out[start:start + width] = rng.standard_normal(len(out[start:start + width]))
    return out


def _rumble(t, rng, rate):
    width = max(1, int(rate / 150))  # a moving average: most energy below ~150 Hz
    noise = np.convolve(rng.standard_normal(len(t) + width), np.ones(width) / np.sqrt(width), mode="valid")
    return noise[:len(t)]


def _siren(t, rng):
    centre, depth, speed = rng.uniform(800, 1000), rng.uniform(200, 350), rng.uniform(1, 3)
    phase = 2 * np.pi * (centre * t - depth / (2 * np.pi * speed) * np.cos(2 * np.pi * speed * t))
    return np.sin(phase)


def _harmonic(t, rng):
    f = rng.uniform(150, 250)
    return sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 7))


def _clicks(t, rng, rate):
    out = np.zeros_like(t)
    out[::max(1, int(rate / rng.uniform(8, 20)))] = 1.0
    return np.convolve(out, np.hanning(max(3, rate // 2000)), mode="same")


def _beeps(t, rng):
    gate = (np.sin(2 * np.pi * rng.uniform(2, 4) * t) > 0).astype(t.dtype)
    return gate * _tone(t, rng, 1000, 2000)


CLASSES = {  # name -> generator(t, rng, rate)
    "tone_low": lambda t, rng, rate: _tone(t, rng, 250, 330),
    "tone_high": lambda t, rng, rate: _tone(t, rng, 700, 900),
    "chirp_up": lambda t, rng, rate: _chirp(t, rng, 300, 3000),
    "chirp_down": lambda t, rng, rate: _chirp(t, rng, 3000, 300),
    "noise_burst": lambda t, rng, rate: _bursts(t, rng, rate),
    "rumble": lambda t, rng, rate: _rumble(t, rng, rate),
    "siren": lambda t, rng, rate: _siren(t, rng),
    "harmonic": lambda t, rng, rate: _harmonic(t, rng),
    "clicks": lambda t, rng, rate: _clicks(t, rng, rate),
    "beeps": lambda t, rng, rate: _beeps(t, rng),
}


def clip(name: str, seconds: float, rng: np.random.Generator, rate: int) -> np.ndarray:
    """One clip of class `name`, `seconds` long: the event (half to all of the clip, random
    onset) over white background noise at a random SNR of -5 to 15 dB, peak-normalized to 0.1-0.9."""
    n = max(1, int(round(seconds * rate)))
    event_n = max(1, int(n * rng.uniform(0.5, 1.0)))
    t = np.arange(event_n) / rate
    event = CLASSES[name](t, rng, rate)
    event = event / (np.sqrt(np.mean(event ** 2)) + 1e-9)
    out = np.zeros(n)
    onset = rng.integers(0, n - event_n + 1)
    out[onset:onset + event_n] = event * np.hanning(event_n) ** 0.1  # soft edges
    out += rng.standard_normal(n) * 10 ** (-rng.uniform(-5, 15) / 20)
    return out / (np.abs(out).max() + 1e-9) * rng.uniform(0.1, 0.9)


def _write(path: str, signal: np.ndarray, rate: int, rng: np.random.Generator) -> None:
    import soundfile
    if rng.random() < 0.3:  # stereo: the second channel a quieter copy
        signal = np.stack([signal, 0.5 * signal], axis=1)
    subtype = "PCM_16" if rng.random() < 0.5 else "FLOAT"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, signal.astype(np.float32), rate, subtype=subtype)


def write(root: str, layout: str, classes: int = 10, clips_per_class: int = 20, seconds: float = 5.0,
          seed: int = 0) -> str:
    """Writes a data set of `classes` (<= 10) x `clips_per_class` clips at `root` in `layout`
    ('esc50': 5 folds, 'urbansound8k': 10 folds, 'folders'); clip lengths 0.4-1.5x `seconds`."""
    names = list(CLASSES)[:classes]
    if not 2 <= classes <= len(CLASSES):
        raise ValueError(f"classes expects 2..{len(CLASSES)}, got {classes}")
    rng = np.random.default_rng(seed)
    folds = {"esc50": 5, "urbansound8k": 10}.get(layout)
    if folds is not None and clips_per_class < folds:
        raise ValueError(f"clips_per_class expects >= {folds} for layout {layout!r}, got {clips_per_class}")
    rows = []
    for label, name in enumerate(names):
        for i in range(clips_per_class):
            rate = int(rng.choice(RATES))
            signal = clip(name, seconds * rng.uniform(0.4, 1.5), rng, rate)
            fold = i % folds + 1 if folds else None
            if layout == "esc50":
                file = f"{fold}-{label * 1000 + i}-A-{label}.wav"
                rel = os.path.join("audio", file)
            elif layout == "urbansound8k":
                file = f"{label * 1000 + i}-{label}-0-0.wav"
                rel = os.path.join("audio", f"fold{fold}", file)
            elif layout == "folders":
                file, rel = None, os.path.join(name, f"{name}_{i:04d}.wav")
            else:
                raise ValueError(f"layout expects 'esc50', 'urbansound8k' or 'folders', got {layout!r}")
            _write(os.path.join(root, rel), signal, rate, rng)
            rows.append((file, fold, label, name, i))
    if layout == "esc50":
        _csv(os.path.join(root, "meta", "esc50.csv"), ["filename", "fold", "target", "category", "esc10", "src_file", "take"],
             [[f, fold, label, name, "False", label * 1000 + i, "A"] for f, fold, label, name, i in rows])
    elif layout == "urbansound8k":
        _csv(os.path.join(root, "metadata", "UrbanSound8K.csv"),
             ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"],
             [[f, label * 1000 + i, 0.0, seconds, 1, fold, label, name] for f, fold, label, name, i in rows])
    return root


def _csv(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
