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
from benchmarks.accuracy.tuning import Setting, search
from benchmarks.allocations import allocation_kwargs
from benchmarks.narrowed import narrowed, params
from benchmarks.timing import one_thread_latency_ms

from .decode import Decoded


KINDS = ("plain", "narrow", "ws", "hashed")  # the trained variants (ws8: a trained ws model, 8-bit)


@dataclass
class Recipe:
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    eval_batch: int = 32
    seed: int = 0
    time_shift: float = 0.0      # random circular shift of each training clip, up to this share of its length
    tune: bool = False           # search lr x weight decay per variant on the first test fold's validation fold
    lr_scales: tuple = (1 / 3, 1.0, 3.0)
    weight_decays: tuple = (0.0, 1e-4)
    tune_epochs: int | None = None  # epochs of each search run (default: epochs)


def time_shift(max_share: float):
    """Each clip rolled by its own random offset in [-max_share, max_share] of its length: what audio
    classifiers train with so that an event's position in the clip is not learned."""
    def augment(x, generator):
        most = int(max_share * x.shape[-1])
        if most < 1:
            return x
        shifts = torch.randint(-most, most + 1, (x.shape[0],), generator=generator)
        index = (torch.arange(x.shape[-1])[None, :] - shifts[:, None]) % x.shape[-1]
        return torch.gather(x, -1, index[:, None, :].expand_as(x))
    return augment


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


def variants(num_classes: int, compressions, policies=("spatial",), allocations=("uniform",),
             kinds=KINDS):
    """(name, target compression, WSNet sampling policy, allocation, builder) of every trained
    variant: WSNet once per policy (wsnet_ext.convert.choose_sampling) and allocation. 'uniform':
    every compressed layer at the target; HashNet is built at the ratio the first policy's WSNet
    model reached on the same layers, so both hold the same number of parameters (the paper's
    'equal size'). 'by_params': the target is the whole model's ratio, spent by layer size
    (wsnetify / hashify allocate='by_params'), for WSNet and HashNet alike. 'narrow': the plain
    network with fewer channels, as many parameters as the first WSNet model at that target.
    `kinds`: which of plain, narrow, ws and hashed to run (e.g. only the new ones, to be merged
    with an earlier run's rows by --merge)."""
    soundnet = wsnet_ext.models.soundnet
    runs = [("plain", None, None, None, lambda: soundnet(num_classes))]
    for k in compressions:
        # the plain network narrowed to the first WSNet model's parameters (every layer's channels
        # scaled by one width factor)
        budget = params(soundnet(num_classes, "ws", k, policy=policies[0], **allocation_kwargs(allocations[0])))
        _, width = narrowed(lambda w: soundnet(num_classes, width=w), budget, 1.0, 0.02)
        runs.append(("narrow", k, None, None, lambda width=width: soundnet(num_classes, width=width)))
        for allocation in allocations:
            how = allocation_kwargs(allocation)
            for policy in policies:
                runs.append(("ws", k, policy, allocation, lambda k=k, policy=policy, how=how:
                             soundnet(num_classes, "ws", k, policy=policy, **how)))
            if allocation == "uniform":
                ratio = compressed_ratio(soundnet(num_classes, "ws", k, policy=policies[0], allocate="uniform"))
                runs.append(("hashed", k, None, allocation, lambda ratio=ratio: soundnet(num_classes, "hashed", ratio,
                                                                                         allocate="uniform")))
            else:
                runs.append(("hashed", k, None, allocation, lambda k=k, how=how: soundnet(num_classes, "hashed", k, **how)))
    return [run for run in runs if run[0] in kinds]


def sampling(model) -> list | None:
    """(sample_stride, channel_repeat) of each WSNet layer, None for a model without any."""
    found = [(m.sample_stride, m.channel_repeat) for m in model.modules() if isinstance(m, wsnet_ext.convert.WS_TYPES)]
    return found or None


def model_stats(model) -> dict:
    s = wsnet_ext.summary(model)
    return {"params": s.total_params, "plain_params": s.total_plain_params, "model_ratio": s.compactness,
            "bytes": wsnet_ext.model_bytes(model), "plain_float32_bytes": 4 * s.total_plain_params,
            "layer_compression": [round(r.compactness, 2) for r in s.layers if r.type.startswith(("WS", "Hashed"))]}


def inference_latency(runs, clip_length: int, quantized: bool, rounds: int = 4, calls: int = 10) -> dict:
    """p50 ms of one clip (batch 1) on one thread, per run key ('ws8' too with `quantized`), the
    variants interleaved (benchmarks/timing.one_thread_latency_ms). The work does not depend on the
    weights, so fresh models of each variant are timed, after training, on a quiet machine."""
    models = {}
    for name, k, policy, allocation, build in runs:
        torch.manual_seed(0)
        models[(name, k, policy, allocation)] = build().eval()
        if name == "ws" and quantized:
            models[("ws8", k, policy, allocation)] = wsnet_ext.quantize_condensed(build().eval(), bits=8)
    return one_thread_latency_ms(models, torch.randn(1, 1, clip_length), rounds, calls)


def choose_settings(data: Decoded, folds: list[int], fold: int, runs, recipe: Recipe, progress: bool, log) -> dict:
    """The fair protocol (benchmarks/accuracy/tuning.search): per variant, lr x weight decay
    searched on `fold`'s validation fold (the test fold is never looked at); {run key: Setting}."""
    train_part, val_part, test_part, _ = split(data, fold, folds)
    augment = time_shift(recipe.time_shift) if recipe.time_shift else None
    chosen = {}
    for name, k, policy, allocation, build in runs:
        def attempt(setting, build=build):
            torch.manual_seed(recipe.seed * 1000 + fold)
            result = train(build(), (train_part, val_part, test_part), epochs=recipe.tune_epochs or recipe.epochs,
                           lr=setting.lr, weight_decay=setting.weight_decay, batch_size=recipe.batch_size,
                           seed=recipe.seed * 1000 + fold, progress=progress, eval_batch=recipe.eval_batch,
                           augment=augment, desc=f"search {name} {k or ''} {setting.key()}")
            return result.val_error, None
        best, val_errors, _ = search(recipe.lr, recipe.lr_scales, recipe.weight_decays, attempt)
        chosen[(name, k, policy, allocation)] = best
        log(f"  search {name:<6} {str(k or '-'):>4}x {allocation or '':<9} chose {best.key()}  "
            f"(validation errors {', '.join(f'{key} {v:.1f}' for key, v in val_errors.items())})")
    return chosen


def cross_validate(data: Decoded, num_classes: int, folds: list[int], test_folds: list[int], recipe: Recipe,
                   compressions, quantized: bool, progress: bool = True, log=print,
                   policies=("spatial",), allocations=("uniform",), kinds=KINDS) -> list[dict]:
    """One row per variant: accuracy per test fold, sizes, the median training step time and the
    batch-1 inference latency on one thread (inference_latency); with `quantized`, each trained WSNet model is also tested with 8-bit condensed filters. With
    recipe.tune, each variant's lr and weight decay come from choose_settings on the first test
    fold; else every variant trains with recipe.lr and recipe.weight_decay."""
    runs = variants(num_classes, compressions, policies, allocations, kinds)
    results: dict[tuple, dict] = {}
    settings = choose_settings(data, folds, test_folds[0], runs, recipe, progress, log) if recipe.tune else {}
    augment = time_shift(recipe.time_shift) if recipe.time_shift else None

    def record(fold, name, k, policy, allocation, model, accuracy, step_ms, best_epoch, setting):
        row = results.setdefault((name, k, policy, allocation), {
            "variant": name, "compression": k, "policy": policy, "allocation": allocation, "fold_accuracy": {},
            "step_ms": [], "best_epoch": {}, "sampling": sampling(model), "lr": setting.lr,
            "weight_decay": setting.weight_decay, "tuned": recipe.tune, **model_stats(model)})
        row["fold_accuracy"][fold] = accuracy
        if step_ms is not None:
            row["step_ms"].append(step_ms)
        row["best_epoch"][fold] = best_epoch

    for fold in test_folds:
        train_part, val_part, test_part, val_fold = split(data, fold, folds)
        log(f"fold {fold}: train {len(train_part[1])}, validation (fold {val_fold}) {len(val_part[1])}, "
            f"test {len(test_part[1])} clips")
        for name, k, policy, allocation, build in runs:
            setting = settings.get((name, k, policy, allocation), Setting(recipe.lr, recipe.weight_decay))
            torch.manual_seed(recipe.seed * 1000 + fold)
            model = build()
            result = train(model, (train_part, val_part, test_part), epochs=recipe.epochs, lr=setting.lr,
                           weight_decay=setting.weight_decay, batch_size=recipe.batch_size,
                           seed=recipe.seed * 1000 + fold, augment=augment,
                           desc=f"fold {fold} {name} {k or ''} {policy or ''}", progress=progress, eval_batch=recipe.eval_batch)
            step_ms = 1e3 * statistics.median(result.epoch_seconds) / max(1, result.steps_per_epoch)
            record(fold, name, k, policy, allocation, model, 100 - result.test_error, step_ms, result.best_epoch, setting)
            log(f"  {name:<6} {str(k or '-'):>4}x {policy or '':<8} {allocation or '':<9} accuracy "
                f"{100 - result.test_error:6.2f}%  best epoch {result.best_epoch + 1}/{recipe.epochs}  "
                f"step {step_ms:7.1f} ms  params {results[(name, k, policy, allocation)]['params']}")
            if name == "ws" and quantized:  # the paper's sampling + 8-bit weights, no retraining
                wsnet_ext.quantize_condensed(model, bits=8)
                accuracy = 100 - error_rate(model, *test_part, recipe.eval_batch)
                record(fold, "ws8", k, policy, allocation, model, accuracy, None, result.best_epoch, setting)
                log(f"  {'ws8':<6} {k:>4}x {policy:<8} accuracy {accuracy:6.2f}%  "
                    f"bytes {results[('ws8', k, policy, allocation)]['bytes']}")
    rows = list(results.values())
    add_latency(rows, runs, num_classes, data.x.shape[-1], quantized)
    summarize(rows, params(wsnet_ext.models.soundnet(num_classes)))
    return rows


def add_latency(rows: list[dict], runs, num_classes: int, clip_length: int, quantized: bool) -> None:
    """Each row's batch-1 latency (inference_latency, in one process, the plain network timed
    beside them even when it is not among `runs`) and its speed-up over plain."""
    if not any(run[0] == "plain" for run in runs):
        runs = [("plain", None, None, None, lambda: wsnet_ext.models.soundnet(num_classes))] + list(runs)
    latency = inference_latency(runs, clip_length, quantized)
    plain_latency = next(v for key, v in latency.items() if key[0] == "plain")
    for row in rows:
        row["latency_ms"] = latency[row_key(row)]
        row["latency_vs_plain"] = plain_latency / row["latency_ms"]


def row_key(row: dict) -> tuple:
    return (row["variant"], row["compression"], row["policy"], row["allocation"])


def summarize(rows: list[dict], plain_params: int) -> None:
    """Accuracy mean and std over the folds, median step and bytes ratio of each row, in place; the
    narrowed network's ratios count against the full plain network's `plain_params`."""
    for row in rows:
        if row["variant"] == "narrow":
            row["plain_params"], row["plain_float32_bytes"] = plain_params, 4 * plain_params
            row["model_ratio"] = plain_params / row["params"]
        accuracies = list(row["fold_accuracy"].values())
        row["accuracy_mean"] = statistics.mean(accuracies)
        row["accuracy_std"] = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        row["step_ms_median"] = statistics.median(row["step_ms"]) if row["step_ms"] else None
        row["bytes_ratio"] = row["plain_float32_bytes"] / row["bytes"]
