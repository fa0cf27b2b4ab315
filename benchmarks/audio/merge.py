"""Several runs of the audio benchmark as one table (bench_audio.py --merge): the same variants
trained on more test folds or seeds pooled into one accuracy per variant, and variants added by a
later run (--variants ws,hashed) put beside the earlier ones. Runs merge only when they trained
the same way on the same data; a variant must hold the same parameters in every run, and no
(fold, seed) may be counted twice. Variants may differ in lr and weight decay (each its own
recipe, e.g. the narrowed network at the lr its search chose), but unless every run searched
(--tune), a variant's runs must share one: runs that reuse the lr and weight decay a search chose
(other seeds of a --tune run) pool with it. Latency is measured again, all rows in one process
(experiment.add_latency), since the runs' own timings come from different machine states."""

from __future__ import annotations

import json
import os
import time

import wsnet_ext
from benchmarks.narrowed import params

from . import experiment

# what must be equal for accuracies of two runs to be pooled
# (lr and weight decay are checked per variant, in merged)
SAME = ("data", "layout", "clips", "classes", "rate", "seconds", "folds", "epochs", "time_shift", "batch_size",
        "torch")


def load(paths: list[str]) -> list[tuple[str, dict]]:
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append((path, json.load(f)))
    first_path, first = runs[0]
    for path, run in runs[1:]:
        for key in SAME:
            if run["meta"].get(key) != first["meta"].get(key):
                raise SystemExit(f"--merge: {path} has {key}={run['meta'].get(key)!r} but {first_path} has "
                                 f"{first['meta'].get(key)!r}; only runs trained the same way merge")
    return runs


def merged(paths: list[str], measure_latency: bool = True) -> tuple[list[dict], dict]:
    runs = load(paths)
    all_searched = all(run["meta"].get("tuned") for _, run in runs)
    seeds = sorted({run["meta"]["seed"] for _, run in runs})
    rows: dict[tuple, dict] = {}
    for path, run in runs:
        seed = run["meta"]["seed"]
        for source in run["rows"]:
            key = experiment.row_key(source)
            label = (lambda fold: fold) if len(seeds) == 1 else (lambda fold: f"{fold}/seed{seed}")
            row = rows.get(key)
            if row is None:
                row = rows[key] = {k: v for k, v in source.items() if k not in ("fold_accuracy", "step_ms", "best_epoch")}
                row.update(fold_accuracy={}, step_ms=[], best_epoch={}, settings=[])
            elif row["params"] != source["params"]:
                raise SystemExit(f"--merge: {key} holds {source['params']} parameters in {path} but {row['params']} "
                                 "in an earlier file; they are different models")
            for fold, accuracy in source["fold_accuracy"].items():
                if label(fold) in row["fold_accuracy"]:
                    raise SystemExit(f"--merge: {key} fold {fold} (seed {seed}) appears twice ({path})")
                row["fold_accuracy"][label(fold)] = accuracy
                row["best_epoch"][label(fold)] = source["best_epoch"][fold]
            row["step_ms"] += source["step_ms"]
            setting = [source["lr"], source["weight_decay"]]
            if setting not in row["settings"]:
                if row["settings"] and not all_searched:
                    raise SystemExit(f"--merge: {key} trained with lr {setting[0]:g}, weight decay {setting[1]:g} in "
                                     f"{path} but {row['settings'][0][0]:g}, {row['settings'][0][1]:g} in an earlier "
                                     "file; a variant's runs must share its recipe")
                row["settings"].append(setting)
    metas = [run["meta"] for _, run in runs]
    meta = dict(metas[0], when=time.strftime("%Y-%m-%d %H:%M"), seeds=seeds,
                test_folds=sorted({f for m in metas for f in m["test_folds"]}),
                policies=list(dict.fromkeys(p for m in metas for p in m["policies"])),
                allocations=list(dict.fromkeys(a for m in metas for a in m["allocations"])),
                seconds_total=sum(m["seconds_total"] for m in metas),
                sources=[{"file": os.path.basename(p), "test_folds": m["test_folds"], "seed": m["seed"],
                          "allocations": m["allocations"], "variants": m.get("variants")} for (p, _), m in zip(runs, metas)])
    meta["tuned"] = all_searched
    if not all_searched and any(m.get("tuned") for m in metas):  # searched runs and runs that reuse their choice
        meta["searched_in"] = [os.path.basename(p) for (p, _), m in zip(runs, metas) if m.get("tuned")]
    out = list(rows.values())
    if len({tuple(setting) for row in out for setting in row["settings"]}) > 1 and not all_searched:
        meta["recipe_per_variant"] = True
    if measure_latency:
        compressions = sorted({r["compression"] for r in out if r["compression"] is not None})
        trained = [run for run in experiment.variants(meta["classes"], compressions, meta["policies"], meta["allocations"])
                   if run[:4] in rows]
        quantized = any(r["variant"] == "ws8" for r in out)
        missing = {key for key in rows if key[0] != "ws8"} - {run[:4] for run in trained}
        if missing:
            raise SystemExit(f"--merge: cannot rebuild {sorted(missing, key=str)} to time them")
        for run in trained:  # the timed model must be the trained one (an allocation's rule may have changed since)
            rebuilt = params(run[4]())
            if rebuilt != rows[run[:4]]["params"]:
                raise SystemExit(f"--merge: {run[:4]} rebuilt today holds {rebuilt} parameters, the run's model "
                                 f"{rows[run[:4]]['params']}; its latency cannot be measured again")
        experiment.add_latency(out, trained, meta["classes"], int(round(meta["seconds"] * meta["rate"])), quantized)
    experiment.summarize(out, params(wsnet_ext.models.soundnet(meta["classes"])))
    return out, meta
