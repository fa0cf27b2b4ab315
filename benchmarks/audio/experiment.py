"""Cross-validation of the SoundNet-style network and its compressed versions on decoded audio.

For each test fold, the next fold (cyclically) is the validation fold that picks the best epoch,
and the remaining folds train. Whole folds, not a random 20%, because ESC-50 and UrbanSound8K
keep clips cut from one recording inside one fold: a random split would leak them. Every variant
sees the same folds, seed and recipe; within a fold the variants run one after the other, so
their step times are measured side by side on the same machine state."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
import torch

import wsnet_ext
from benchmarks.accuracy.train import error_rate, train

from .decode import Decoded


@dataclass
class Recipe:
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    eval_batch: int = 32
    seed: int = 0


def split(data: Decoded, test_fold: int, folds: list[int]):
    """(train, val, test) tensors (N, 1, T) for `test_fold`; validation is the next fold."""
    val_fold = folds[(folds.index(test_fold) + 1) % len(folds)]
    part = lambda mask: (torch.from_numpy(np.asarray(data.x[mask]))[:, None],  # noqa: E731
                         torch.from_numpy(data.y[mask]))
    test, val = data.fold == test_fold, data.fold == val_fold
    return part(~(test | val)), part(val), part(test), val_fold


def compressed_ratio(model) -> float:
    """Plain / held parameters over the compressed layers only (what HashNet must match)."""
    rows = [r for r in wsnet_ext.summary(model).layers if r.type.startswith(("WS", "Hashed"))]
    return sum(r.plain_params for r in rows) / sum(r.params for r in rows)


def variants(num_classes: int, compressions, policies=("spatial",)):
    """(name, target compression, WSNet sampling policy, builder) of every trained variant: WSNet
    once per policy (wsnet_ext.convert.choose_sampling). HashNet is built at the ratio the first
    policy's WSNet model reached on the same layers, so both hold the same number of parameters
    (the paper's 'equal size')."""
    soundnet = wsnet_ext.models.soundnet
    runs = [("plain", None, None, lambda: soundnet(num_classes))]
    for k in compressions:
        ratio = compressed_ratio(soundnet(num_classes, "ws", k, policy=policies[0]))
        for policy in policies:
            runs.append(("ws", k, policy, lambda k=k, policy=policy: soundnet(num_classes, "ws", k, policy=policy)))
        runs.append(("hashed", k, None, lambda ratio=ratio: soundnet(num_classes, "hashed", ratio)))
    return runs


def sampling(model) -> list | None:
    """(sample_stride, channel_repeat) of each WSNet layer, None for a model without any."""
    found = [(m.sample_stride, m.channel_repeat) for m in model.modules() if isinstance(m, wsnet_ext.convert.WS_TYPES)]
    return found or None


def model_stats(model) -> dict:
    s = wsnet_ext.summary(model)
    return {"params": s.total_params, "plain_params": s.total_plain_params, "model_ratio": s.compactness,
            "bytes": wsnet_ext.model_bytes(model), "plain_float32_bytes": 4 * s.total_plain_params,
            "layer_compression": [round(r.compactness, 2) for r in s.layers if r.type.startswith(("WS", "Hashed"))]}


def cross_validate(data: Decoded, num_classes: int, folds: list[int], test_folds: list[int], recipe: Recipe,
                   compressions, quantized: bool, progress: bool = True, log=print,
                   policies=("spatial",)) -> list[dict]:
    """One row per variant: accuracy per test fold, sizes, and the median training step time;
    with `quantized`, each trained WSNet model is also tested with 8-bit condensed filters."""
    runs = variants(num_classes, compressions, policies)
    results: dict[tuple, dict] = {}

    def record(fold, name, k, policy, model, accuracy, step_ms, best_epoch):
        row = results.setdefault((name, k, policy), {"variant": name, "compression": k, "policy": policy,
                                                     "fold_accuracy": {}, "step_ms": [], "best_epoch": {},
                                                     "sampling": sampling(model), **model_stats(model)})
        row["fold_accuracy"][fold] = accuracy
        if step_ms is not None:
            row["step_ms"].append(step_ms)
        row["best_epoch"][fold] = best_epoch

    for fold in test_folds:
        train_part, val_part, test_part, val_fold = split(data, fold, folds)
        log(f"fold {fold}: train {len(train_part[1])}, validation (fold {val_fold}) {len(val_part[1])}, "
            f"test {len(test_part[1])} clips")
        for name, k, policy, build in runs:
            torch.manual_seed(recipe.seed * 1000 + fold)
            model = build()
            result = train(model, (train_part, val_part, test_part), epochs=recipe.epochs, lr=recipe.lr,
                           weight_decay=recipe.weight_decay, batch_size=recipe.batch_size, seed=recipe.seed * 1000 + fold,
                           desc=f"fold {fold} {name} {k or ''} {policy or ''}", progress=progress, eval_batch=recipe.eval_batch)
            step_ms = 1e3 * statistics.median(result.epoch_seconds) / max(1, result.steps_per_epoch)
            record(fold, name, k, policy, model, 100 - result.test_error, step_ms, result.best_epoch)
            log(f"  {name:<6} {str(k or '-'):>4}x {policy or '':<8} accuracy {100 - result.test_error:6.2f}%  "
                f"best epoch {result.best_epoch + 1}/{recipe.epochs}  step {step_ms:7.1f} ms  "
                f"params {results[(name, k, policy)]['params']}")
            if name == "ws" and quantized:  # the paper's sampling + 8-bit weights, no retraining
                wsnet_ext.quantize_condensed(model, bits=8)
                accuracy = 100 - error_rate(model, *test_part, recipe.eval_batch)
                record(fold, "ws8", k, policy, model, accuracy, None, result.best_epoch)
                log(f"  {'ws8':<6} {k:>4}x {policy:<8} accuracy {accuracy:6.2f}%  "
                    f"bytes {results[('ws8', k, policy)]['bytes']}")
    rows = list(results.values())
    for row in rows:
        accuracies = list(row["fold_accuracy"].values())
        row["accuracy_mean"] = statistics.mean(accuracies)
        row["accuracy_std"] = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        row["step_ms_median"] = statistics.median(row["step_ms"]) if row["step_ms"] else None
        row["bytes_ratio"] = row["plain_float32_bytes"] / row["bytes"]
    return rows
