"""The condensed filters' own knobs (accuracy issue, item 3): does WSNet trail HashNet because of
how its condensed filters start (init scale) or how fast they learn (their lr against the other
parameters')? Every candidate gets the fair protocol's search (tuning.search: lr grid on seed
0, extended past its edge, lowest validation error), then --seeds seeds, each tested once; HashNet, searched the same way,
is the reference row.

    python benchmarks/bench_condensed_init.py                    # MNIST-1D 8x/16x, digits CNN 64x
    python benchmarks/bench_condensed_init.py --only mnist1d --quick

Candidates: the default (nn.Conv1d's uniform +-1/sqrt(M*L), docs/design.md §5), that init scaled
by 0.5 and 2, and the condensed filters' lr scaled by 1/3 and 3 (the rest keep the searched lr).
Writes benchmarks/results/accuracy/condensed_init_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.accuracy.results import write  # noqa: E402
from benchmarks.accuracy.train import train  # noqa: E402
from benchmarks.accuracy.tuning import search  # noqa: E402
from benchmarks.bench_sampling_policy import EXPERIMENTS  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "accuracy")
BASE_LR = {"mnist1d": 1e-2, "digits_cnn": 1e-3, "fashion_mlp": 1e-3}
CANDIDATES = [  # (name, variant, init scale of the condensed filters, lr scale of the condensed filters)
    ("HashNet", "hashed", 1.0, 1.0), ("WSNet default", "ws", 1.0, 1.0), ("WSNet init x0.5", "ws", 0.5, 1.0),
    ("WSNet init x2", "ws", 2.0, 1.0), ("WSNet condensed lr x1/3", "ws", 1.0, 1 / 3),
    ("WSNet condensed lr x3", "ws", 1.0, 3.0)]


def prepared(build, variant, k, init_scale):
    model = build(variant, k, "spatial" if variant == "ws" else None)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, wsnet_ext.convert.WS_TYPES):
                layer.condensed.mul_(init_scale)
    return model


def groups(model, lr, condensed_lr_scale):
    """Two optimizer groups: the condensed filters at lr x scale, everything else at lr."""
    condensed = [m.condensed for m in model.modules() if isinstance(m, wsnet_ext.convert.WS_TYPES)]
    ids = {id(p) for p in condensed}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": condensed, "lr": lr * condensed_lr_scale}, {"params": rest, "lr": lr}]


def run(name, seeds, quick, log=print) -> list[dict]:
    load, build, compressions, epochs, batch = EXPERIMENTS[name]
    epochs = 2 if quick else epochs
    cache = {}

    def data(seed):
        if seed not in cache:
            d = load(seed)
            cache[seed] = tuple(tuple(t[:400] for t in part) for part in d) if quick else d
        return cache[seed]

    def fit(candidate, k, lr, weight_decay, seed):
        _, variant, init_scale, lr_scale = candidate
        torch.manual_seed(seed)
        model = prepared(build, variant, k, init_scale)
        return train(model, data(seed), epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch, seed=seed,
                     progress=False, param_groups=groups(model, lr, lr_scale))

    rows = []
    for k in compressions:
        for candidate in CANDIDATES:
            def attempt(setting, candidate=candidate, k=k):
                result = fit(candidate, k, setting.lr, setting.weight_decay, seeds[0])
                return result.val_error, result

            best, val_errors, first = search(BASE_LR[name], (1 / 3, 1.0, 3.0), (0.0,), attempt)
            results = [first] + [fit(candidate, k, best.lr, best.weight_decay, seed) for seed in seeds[1:]]
            errors = [r.test_error for r in results]
            row = {"experiment": name, "compression": k, "candidate": candidate[0], "variant": candidate[1],
                   "init_scale": candidate[2], "condensed_lr_scale": candidate[3], "lr": best.lr,
                   "val_error_by_setting": val_errors, "test_errors": errors,
                   "test_error_mean": statistics.mean(errors),
                   "test_error_std": statistics.stdev(errors) if len(errors) > 1 else 0.0,
                   "first_last_loss": (results[0].losses[0], results[0].losses[-1])}
            rows.append(row)
            log(f"{name} {k}x {candidate[0]:<24} lr {best.lr:.2g}  test error {row['test_error_mean']:.2f} "
                f"+- {row['test_error_std']:.2f}", flush=True)
    return rows


def markdown(rows, meta) -> str:
    lines = [f"# The condensed filters' init scale and lr ({meta['when']})", "",
             f"torch {meta['torch']}, seeds {meta['seeds']}, {'QUICK' if meta['quick'] else 'full'} run, "
             f"{meta['seconds']} s. Each row: lr searched on seed {meta['seeds'][0]} over the experiment's base lr "
             "x (1/3, 1, 3), extended up to 2 more x3 steps past an edge winner (tuning.search), no weight decay; test error % of the best validation epoch, mean +- std.", "",
             "| experiment | compression | candidate | chosen lr | test error % |", "|---|---|---|---|---|"]
    lines += [f"| {r['experiment']} | {r['compression']}x | {r['candidate']} | {r['lr']:.2g} | "
              f"{r['test_error_mean']:.2f} +- {r['test_error_std']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="mnist1d,digits_cnn")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="400 samples, 2 epochs, 1 seed")
    p.add_argument("--tag", default=None)
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args(argv)
    names = args.only.split(",")
    unknown = [n for n in names if n not in BASE_LR]
    if unknown:
        p.error(f"--only expects names of {sorted(BASE_LR)}, got {unknown}")
    seeds = [0] if args.quick else list(range(args.seeds))
    began = time.time()
    rows = [r for n in names for r in run(n, seeds, args.quick)]
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "seeds": seeds,
            "quick": args.quick, "seconds": round(time.time() - began)}
    write(args.out, "condensed_init", args.tag or ("quick" if args.quick else "full"), meta, rows, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
