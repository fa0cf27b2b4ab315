"""The seed's Table 1 on data that exists here: the plain network, its HashedNets and its WSNet
version at equal compression, 20% of the training set held out for validation, the model of the
best validation epoch tested, 3 seeds, mean +- std test error.

The fair protocol: every variant gets the same search (lr = the experiment's base lr x 1/3, 1, 3;
weight decay 0, 1e-4; one run per setting on the first seed, with the experiment's epochs or its
shorter search budget; up to two more x3 lr steps while the winner sits on the grid's edge),
the setting with the lowest validation error is kept, then every seed
trains with it and is tested once. The chosen settings are in the table.

    python benchmarks/bench_accuracy.py                    # every experiment with data here
    python benchmarks/bench_accuracy.py --only mnist1d      # one experiment
    python benchmarks/bench_accuracy.py --quick             # CI smoke run (< 1 minute)
    python benchmarks/bench_accuracy.py --no-tune           # the fixed recipe: base lr, no weight decay
    python benchmarks/bench_accuracy.py --only mnist --mnist-dir ~/data/mnist
    python benchmarks/bench_accuracy.py --only cifar10 --cifar10-dir ~/data/cifar-10-batches-py
    python benchmarks/bench_accuracy.py --only fashion_mlp,fashion_cnn --quantized   # Debian's Fashion-MNIST
    python benchmarks/bench_accuracy.py --only fashion_cnn --variants hashed,ws --compressions 64 --tag part
    python benchmarks/bench_accuracy.py --merge results/accuracy_a.json results/accuracy_b.json --tag ab

Writes benchmarks/results/accuracy/accuracy_<tag>.{json,md,png}."""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.accuracy import data as datasets  # noqa: E402
from benchmarks.accuracy.train import error_rate, train  # noqa: E402
from benchmarks.accuracy.tuning import Setting, search  # noqa: E402
from benchmarks.allocations import allocation_kwargs, parse_allocations  # noqa: E402
from benchmarks.narrowed import narrowed, params  # noqa: E402
from benchmarks.timing import one_thread_latency_ms  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "accuracy")
SEED_TABLE1 = {  # test error % of the seed's Table 1 (CIFAR-10 / MNIST), for the README
    "cifar10": {"plain": 14.91, ("hashed", 16): 21.42, ("hashed", 64): 30.79, ("ws", 16): 17.82, ("ws", 64): 23.59},
    "mnist": {"plain": 1.37, ("hashed", 8): 1.43, ("hashed", 64): 2.41, ("ws", 8): 1.29, ("ws", 64): 1.97},
}


@dataclass
class Experiment:
    name: str
    load: callable          # seed -> (train, val, test)
    build: callable         # (variant, compression, **allocation keywords) -> model
    compressions: tuple
    epochs: int
    lr: float
    batch_size: int
    narrow: callable        # width -> the plain network with `width` channels (hidden units)
    width: int              # the plain network's width
    needs: str | None = None  # the --*-dir option it reads its files from
    tune_epochs: int | None = None  # the search's budget when a full run per setting is too long here


def experiments(args) -> list[Experiment]:
    m = wsnet_ext.models

    def cnn5(in_channels, image_size):
        return {"build": lambda v, k, **how: m.cnn5(10, v, k, in_channels=in_channels, width=32,
                                                     image_size=image_size, **how),
                "narrow": lambda w: m.cnn5(10, in_channels=in_channels, width=w, image_size=image_size), "width": 32}

    def mlp(in_features):
        return {"build": lambda v, k, **how: m.mlp(in_features, 10, v, k, **how),
                "narrow": lambda w: m.mlp(in_features, 10, hidden=w), "width": 1000}

    return [
        Experiment("mnist1d", lambda seed: datasets.mnist1d(seed), lambda v, k, **how: m.cnn1d(10, v, k, **how),
                   (4, 8, 16), 40, 1e-2, 100, lambda w: m.cnn1d(10, width=w), 64),
        Experiment("digits_mlp", lambda seed: datasets.digits(seed), **mlp(64), compressions=(8, 64), epochs=40,
                   lr=1e-3, batch_size=64),
        Experiment("digits_cnn", lambda seed: datasets.digits(seed), **cnn5(1, 8), compressions=(16, 64), epochs=40,
                   lr=1e-3, batch_size=64),
        Experiment("mnist", lambda seed: datasets.mnist(args.mnist_dir, seed), **mlp(784), compressions=(8, 64),
                   epochs=20, lr=1e-3, batch_size=128, needs="mnist_dir"),
        # Fashion-MNIST with the seed's two protocols: HashNet's 784-1000-10 net at 8x / 64x and
        # the 5-layer CNN at 16x / 64x (found at Debian's path, or --fashion-mnist-dir)
        Experiment("fashion_mlp", lambda seed: datasets.fashion_mnist(args.fashion_mnist_dir, seed), **mlp(784),
                   compressions=(8, 64), epochs=20, lr=1e-3, batch_size=128, needs="fashion_mnist_dir",
                   tune_epochs=10),
        Experiment("fashion_cnn", lambda seed: datasets.fashion_mnist(args.fashion_mnist_dir, seed), **cnn5(1, 28),
                   compressions=(16, 64), epochs=12, lr=1e-3, batch_size=128, needs="fashion_mnist_dir",
                   tune_epochs=3),
        Experiment("cifar10", lambda seed: datasets.cifar10(args.cifar10_dir, seed), **cnn5(3, 32),
                   compressions=(16, 64), epochs=30, lr=1e-3, batch_size=128, needs="cifar10_dir"),
    ]


def builder(exp: Experiment, variant: str, compression, allocation):
    """A zero-argument builder of a row's model. 'narrow': the plain network with the most channels
    whose parameters do not exceed those of WSNet at `compression` under `allocation` (its width is
    searched once, here, so the seed alone decides the weights)."""
    if variant == "narrow":
        budget = params(builder(exp, "ws", compression, allocation)())
        _, width = narrowed(lambda w: exp.narrow(int(w)), budget, exp.width, 1)
        return functools.partial(exp.narrow, int(width))
    how = allocation_kwargs(allocation) if allocation else {}
    return lambda: exp.build(variant, compression, **how)


def row_allocation(row: dict):
    """The row's budget allocation ('uniform' for compressed rows of runs that predate the option)."""
    if row["variant"] in ("plain", "narrow"):
        return None
    return row.get("allocation") or "uniform"


def row_key(row: dict) -> tuple:
    return row["experiment"], row["variant"], row["compression"], row_allocation(row)


def model_stats(model, plain_params: int) -> dict:
    """Sizes of a trained model; its ratios count against the full plain network's `plain_params`
    (a narrowed network's own layers are all plain)."""
    s = wsnet_ext.summary(model)
    compressed = [r for r in s.layers if r.type.startswith(("WS", "Hashed"))]
    return {"params": s.total_params, "plain_params": plain_params, "model_compression": plain_params / s.total_params,
            "bytes": wsnet_ext.model_bytes(model), "plain_float32_bytes": 4 * plain_params,
            "layer_compression": [round(r.compactness, 3) for r in compressed],
            "plain_layers": [r.name for r in s.layers if not r.type.startswith(("WS", "Hashed"))]}


def subset(split, count):
    return tuple(t[:count] for t in split)


@dataclass
class Tuning:
    """The fair protocol's grid (benchmarks/accuracy/tuning.py): lr = base lr x each scale, each weight decay."""
    lr_scales: tuple = (1 / 3, 1.0, 3.0)
    weight_decays: tuple = (0.0, 1e-4)
    extend: int = 2  # more lr steps past the grid's edge while the winner sits on it (tuning.search)


def final_settings(exp: Experiment, variant, compression, build, tuning, seed, epochs, data, log):
    """The setting this variant's test seeds use, the validation error of each candidate, and the
    search's trained (model, result) when it can stand for the first seed (same seed and epochs)."""
    if tuning is None:
        return Setting(exp.lr, 0.0), None, None
    search_epochs = min(epochs, exp.tune_epochs or epochs)

    def attempt(setting):
        torch.manual_seed(seed)
        model = build()
        result = train(model, data, epochs=search_epochs, lr=setting.lr, weight_decay=setting.weight_decay,
                       batch_size=exp.batch_size, seed=seed, progress=False)
        log(f"  search {exp.name} {variant} {compression or '-'}x {setting.key()}: validation error "
            f"{result.val_error:.2f}% ({search_epochs} epochs)")
        return result.val_error, (model, result)

    best, val_errors, trained = search(exp.lr, tuning.lr_scales, tuning.weight_decays, attempt, tuning.extend)
    return best, {"epochs": search_epochs, "seed": seed, "val_error": val_errors}, \
        (trained if search_epochs == epochs else None)


def run_experiment(exp: Experiment, seeds, quick: bool, quantized: bool = False, tuning: Tuning | None = None,
                   variants=None, compressions=None, allocations=("uniform",), log=print) -> list[dict]:
    """Every variant over the seeds, each with its own setting from the same search (`tuning`; None:
    the experiment's fixed lr, no weight decay): plain; per compression the plain network narrowed
    to the first allocation's WSNet parameters, then HashNet and WSNet under each allocation. With
    `quantized`, each trained WSNet model is also tested with its condensed filters in 8 bits
    (variant 'ws8', no retraining: the paper's sampling + quantization)."""
    runs = [("plain", None, None)] + [run for k in (compressions or exp.compressions) for run in
                                      [("narrow", k, allocations[0])] +
                                      [(v, k, a) for a in allocations for v in ("hashed", "ws")]]
    runs = [(v, k, a) for v, k, a in runs if variants is None or v in variants]
    epochs = 3 if quick else exp.epochs
    loaded = {}

    def data(seed):
        if seed not in loaded:
            d = exp.load(seed)
            loaded[seed] = (subset(d[0], 512), subset(d[1], 256), subset(d[2], 256)) if quick else d
        return loaded[seed]

    rows = []
    full_plain = params(exp.build("plain", None))  # what every row's ratio counts against
    fresh = {}  # row_key -> an untrained model of the row, for the latency
    for variant, compression, allocation in runs:
        build = builder(exp, variant, compression, allocation)
        setting, search, searched = final_settings(exp, variant, compression, build, tuning, seeds[0], epochs,
                                                   data(seeds[0]), log)
        results = {variant: []} if not (quantized and variant == "ws") else {"ws": [], "ws8": []}
        stats, first_last, epoch_seconds = {}, None, []
        for seed in seeds:
            if searched is not None and seed == seeds[0]:
                model, result = searched  # the search already trained this seed with this setting
            else:
                torch.manual_seed(seed)
                model = build()
                result = train(model, data(seed), epochs=epochs, lr=setting.lr, weight_decay=setting.weight_decay,
                               batch_size=exp.batch_size, seed=seed,
                               desc=f"{exp.name} {variant} {compression or ''} {allocation or ''} seed {seed}")
            stats[variant] = model_stats(model, full_plain)
            results[variant].append(result.test_error)
            first_last = (result.losses[0], result.losses[-1])
            epoch_seconds += result.epoch_seconds
            if "ws8" in results:
                wsnet_ext.quantize_condensed(model, bits=8)
                results["ws8"].append(error_rate(model, *data(seed)[2]))
                stats["ws8"] = model_stats(model, full_plain)
        for name, errors in results.items():
            rows.append({"experiment": exp.name, "variant": name, "compression": compression,
                         "allocation": allocation if variant != "plain" else None,
                         "test_error_mean": statistics.mean(errors),
                         "test_error_std": statistics.stdev(errors) if len(errors) > 1 else 0.0,
                         "test_errors": errors, "seeds": list(seeds), "first_last_loss": first_last,
                         "lr": setting.lr, "weight_decay": setting.weight_decay, "search": search,
                         "epochs": epochs, "epoch_seconds_median": statistics.median(epoch_seconds), **stats[name],
                         **({"width": build.args[0]} if variant == "narrow" else {})})
            fresh[row_key(rows[-1])] = fresh_model(build, name)
            log(f"{exp.name:<11} {name:<6} {str(compression or '-'):>4}x {allocation or '':<14} test error "
                f"{rows[-1]['test_error_mean']:.2f} +- {rows[-1]['test_error_std']:.2f}%  {setting.key()}  "
                f"params {stats[name]['params']}  bytes {stats[name]['bytes']}  model compression "
                f"{stats[name]['model_compression']:.2f}  epoch {rows[-1]['epoch_seconds_median']:.2f} s", flush=True)
    attach_latency(rows, fresh, data(seeds[0])[2][0][:1], quick)
    return rows


def fresh_model(build, name: str):
    """An untrained model of a row (`build`: its variant's builder; 'ws8': WSNet's, with 8-bit
    condensed filters), in eval mode."""
    model = build().eval()
    return wsnet_ext.quantize_condensed(model, bits=8) if name == "ws8" else model


def attach_latency(rows, models: dict, example, quick: bool = False) -> None:
    """Each row's batch-1 latency on one thread (models keyed by row_key, all interleaved; the work
    does not depend on the weights) and plain's over it."""
    latency = one_thread_latency_ms(models, example, rounds=2 if quick else 4, calls=3 if quick else 10)
    plain = next((t for key, t in latency.items() if key[1] == "plain"), None)
    for row in rows:
        row["latency_ms"] = latency[row_key(row)]
        row["latency_vs_plain"] = plain / row["latency_ms"] if plain else None


def add_latency(rows, args) -> None:
    """Latency for rows of earlier runs that lack it: fresh models of each row's experiment, variant
    and compression, on one input of the experiment's test split."""
    known = {e.name: e for e in experiments(args)}
    for name in dict.fromkeys(r["experiment"] for r in rows):
        group = [r for r in rows if r["experiment"] == name]
        exp = known[name]
        models = {row_key(r): fresh_model(builder(exp, "ws" if r["variant"] == "ws8" else r["variant"],
                                                  r["compression"], r.get("allocation") or row_allocation(r)),
                                          r["variant"]) for r in group}
        attach_latency(group, models, exp.load(group[0]["seeds"][0])[2][0][:1])


def setting_text(r) -> str:
    """The row's lr and weight decay; '(fixed)' without a search, '(edge)' when the search chose
    its smallest or largest lr, where a wider grid might have chosen otherwise."""
    if r.get("lr") is None:
        return "-"
    text = f"{r['lr']:.2g}, {r['weight_decay']:g}"
    if not r.get("search"):
        return text + " (fixed)"
    lrs = [float(key.split(",")[0].removeprefix("lr=")) for key in r["search"]["val_error"]]  # after extension
    at_edge = len(set(lrs)) > 1 and any(abs(r["lr"] / x - 1) < 1e-6 for x in (min(lrs), max(lrs)))
    return text + (" (edge)" if at_edge else "")


def latency_text(r) -> str:
    """'p50 ms | x faster than plain', or '- | -' for rows measured before latency was recorded."""
    if r.get("latency_ms") is None:
        return "- | -"
    return f"{r['latency_ms']:.3f} | {r['latency_vs_plain']:.2f}" if r.get("latency_vs_plain") else f"{r['latency_ms']:.3f} | -"


def markdown(rows, meta) -> str:
    tuned = meta.get("tuning")
    protocol = ("Each variant's lr and weight decay were chosen by the same search: lr = the experiment's base lr "
                f"x {tuned['lr_scales']}, weight decay {tuned['weight_decays']}, extended by up to "
                f"{tuned.get('extend', 0)} more steps of the grid's ratio while the winner's lr is the grid's largest or smallest, one run per setting on seed "
                f"{meta['seeds'][0]}, lowest validation error wins (search epochs per row in the JSON), then "
                "every seed trains with it and is tested once; '(edge)' marks an lr at the grid's end." if tuned else
                "Fixed recipe: each experiment's lr, no weight decay, for every variant (no search).")
    lines = [f"# Accuracy: plain vs HashedNets vs WSNet ({meta['when']})", "",
             f"torch {meta['torch']}, seeds {meta['seeds']}, {'QUICK smoke run' if meta['quick'] else 'full run'}. "
             "Test error of the best-validation epoch, mean +- std over seeds; 'compression' is the target of "
             "each compressed layer, 'model' the achieved whole-model ratio (plain-layer parameters / ours). "
             + protocol
             + (f" Latency measured {meta['latency_measured']} on untrained models of the same architectures "
                "(--add-latency; the time does not depend on the weights), the accuracy from the runs listed in the JSON."
                if meta.get("latency_measured") else ""), ""]
    sources = meta.get("sources", [])  # a --merge of several runs
    lines += [f"- rows from `{m['file']}` ({m['when']}, seeds {m['seeds']}, "
              f"{'searched' if m.get('tuning') else 'fixed recipe'}, {m['seconds']:.0f} s)" for m in sources]
    lines += [""] * bool(sources) + [
             "| experiment | variant | compression | allocation | test error % | lr, weight decay | params | "
             "model compression | bytes | bytes ratio vs plain float32 | epoch s | latency ms (batch 1, 1 thread) | "
             "x faster | compressed layers |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by_key = {row_key(r): r for r in rows}
    for r in rows:
        epoch = r.get("epoch_seconds_median")
        lines.append(f"| {r['experiment']} | {r['variant']} | {r['compression'] or '-'} | {allocation_text(r, by_key)} | "
                     f"{r['test_error_mean']:.2f} +- {r['test_error_std']:.2f} | {setting_text(r)} | {r['params']} | "
                     f"{r['model_compression']:.2f} | {r['bytes']} | {r['plain_float32_bytes'] / r['bytes']:.1f} | "
                     f"{'-' if epoch is None else f'{epoch:.2f}'} | {latency_text(r)} | "
                     f"{', '.join(f'{c:.1f}' for c in r['layer_compression']) or '-'} |")
    lines += ["", "WSNet against HashNet (same allocation) and the narrowed plain network at the same target:"]
    for exp, _, k, allocation in sorted((key for key in by_key if key[1] == "ws"), key=str):
        ws = by_key[(exp, "ws", k, allocation)]
        for label, other in (("HashNet", by_key.get((exp, "hashed", k, allocation))),
                             ("narrowed plain", by_key.get((exp, "narrow", k, None)))):
            if other is None:
                continue
            verdict = "WSNet lower" if ws["test_error_mean"] < other["test_error_mean"] else "WSNet NOT lower"
            lines.append(f"- {exp} {k}x {allocation}: WSNet {ws['test_error_mean']:.2f}% vs {label} "
                         f"{other['test_error_mean']:.2f}%: {verdict}")
    return "\n".join(lines) + "\n"


def allocation_text(r, by_key: dict) -> str:
    """The row's allocation; a narrowed row's width and the WSNet model whose size it matches."""
    if r["variant"] == "narrow":
        ws = by_key.get((r["experiment"], "ws", r["compression"], r["allocation"]))
        above = ws is not None and r["params"] > ws["params"]  # even width 1 holds more
        return f"width {r['width']} (WSNet {r['allocation']}'s size{'; the narrowest is larger' if above else ''})"
    return row_allocation(r) or "-"


def plot(rows, path):
    """Per experiment: test error against the whole-model ratio each row reached (an allocation's
    target and what it reaches differ: uniform leaves plain layers out of it), and (where measured)
    against batch-1 latency."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = sorted({r["experiment"] for r in rows})
    x_axes = [("model_compression", "whole-model compression achieved (x)", 2)]
    if all(r.get("latency_ms") for r in rows):
        x_axes.append(("latency_ms", "latency, batch 1, 1 CPU thread (ms)", 10))
    fig, axes = plt.subplots(len(x_axes), len(names), figsize=(4.5 * len(names), 3.6 * len(x_axes)), squeeze=False)
    for row_axes, (key, xlabel, base) in zip(axes, x_axes):
        for ax, name in zip(row_axes, names):
            mine = [r for r in rows if r["experiment"] == name]
            for plain in (r for r in mine if r["variant"] == "plain"):
                if key == "model_compression":
                    ax.axhline(plain["test_error_mean"], color="grey", linestyle="--", label="plain")
                else:
                    ax.plot([plain[key]], [plain["test_error_mean"]], "k*", markersize=9, label="plain")
            lines = sorted({(r["variant"], row_allocation(r)) for r in mine if r["variant"] != "plain"}, key=str)
            for variant, allocation in lines:
                pts = sorted((r[key], r["test_error_mean"], r["test_error_std"]) for r in mine
                             if (r["variant"], row_allocation(r)) == (variant, allocation))
                name = {"hashed": "HashNet", "ws": "WSNet", "ws8": "WSNet, 8-bit", "narrow": "narrowed plain"}[variant]
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts],
                            marker={"hashed": "s", "ws": "o", "ws8": "^", "narrow": "x"}[variant], capsize=3,
                            label=name + (f" ({allocation})" if allocation and len(lines) > 3 else ""))
            ax.set_xscale("log", base=base)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("test error (%)")
            ax.set_title(name)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="comma-separated experiments (default: all with data)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs, data subsets")
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--cifar10-dir", default=None)
    parser.add_argument("--fashion-mnist-dir", default=None,
                        help=f"default: {datasets.FASHION_MNIST_DEBIAN} when present (apt-get install dataset-fashion-mnist)")
    parser.add_argument("--quantized", action="store_true",
                        help="also test every trained WSNet model with 8-bit condensed filters (rows 'ws8')")
    parser.add_argument("--no-tune", action="store_true",
                        help="skip the search: every variant trains with the experiment's fixed lr, no weight decay")
    parser.add_argument("--lr-scales", default=None, help="search grid: multiples of each experiment's base lr "
                        f"(default {','.join(f'{x:.3g}' for x in Tuning.lr_scales)}; --quick: 1,3)")
    parser.add_argument("--weight-decays", default=None,
                        help=f"search grid: weight decays (default {','.join(map(str, Tuning.weight_decays))}; --quick: 1e-4)")
    parser.add_argument("--variants", default=None,
                        help="comma-separated subset of plain,narrow,hashed,ws (default all; narrow: the plain network "
                             "with fewer channels, as many parameters as WSNet under the first --allocate)")
    parser.add_argument("--allocate", default="uniform",
                        help="comma-separated budget allocations for WSNet and HashNet: uniform (every compressed layer "
                             "at the target), by_params (the target as the whole model's ratio, spent by layer size), "
                             "by_params_fast (by_params, the layers doing most multiply-adds at least at sqrt of the "
                             "target), by_params_fast:H (... at least at H); default uniform")
    parser.add_argument("--compressions", default=None,
                        help="comma-separated targets to run instead of each experiment's own (numbers >= 1)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="no training: join the rows of earlier runs' JSON files into one table and plot")
    parser.add_argument("--add-latency", action="store_true",
                        help="with --merge: measure the batch-1 latency of every merged row again, on fresh models "
                             "of the same architectures (accuracy stays the earlier runs')")
    parser.add_argument("--tag", default=None)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    if args.fashion_mnist_dir is None and os.path.isdir(datasets.FASHION_MNIST_DEBIAN):
        args.fashion_mnist_dir = datasets.FASHION_MNIST_DEBIAN
    if args.add_latency and not args.merge:
        raise SystemExit("--add-latency works on the rows of --merge JSON files")
    if args.merge:
        rows, meta = merged(args.merge)
        if args.add_latency:
            add_latency(rows, args)
            meta["latency_measured"] = time.strftime("%Y-%m-%d %H:%M")
        return write(rows, meta, os.path.join(args.out, f"accuracy_{args.tag or 'merged'}"))
    chosen = [e for e in experiments(args)
              if (args.only is None or e.name in args.only.split(",")) and (e.needs is None or getattr(args, e.needs))]
    if args.only:
        missing = set(args.only.split(",")) - {e.name for e in chosen}
        if missing:
            raise SystemExit(f"unknown experiment or data directory not given: {sorted(missing)}")
    variants = parse_list(args.variants, str, "--variants", allowed={"plain", "narrow", "hashed", "ws"})
    try:
        allocations = parse_allocations(args.allocate)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    compressions = parse_list(args.compressions, float, "--compressions")
    if compressions and min(compressions) < 1:
        raise SystemExit(f"--compressions: expected numbers >= 1, got {args.compressions!r}")
    compressions = compressions and tuple(int(k) if k == int(k) else k for k in compressions)
    tuning = None if args.no_tune else Tuning(
        parse_list(args.lr_scales, float, "--lr-scales") or ((1.0, 3.0) if args.quick else Tuning.lr_scales),
        parse_list(args.weight_decays, float, "--weight-decays") or ((1e-4,) if args.quick else Tuning.weight_decays),
        1 if args.quick else Tuning.extend)
    seeds = list(range(1 if args.quick else args.seeds))
    torch.set_num_threads(torch.get_num_threads())
    began = time.time()
    rows = [row for exp in chosen
            for row in run_experiment(exp, seeds, args.quick, args.quantized, tuning, variants, compressions,
                                      allocations)]
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "seeds": seeds,
            "quick": args.quick, "allocations": allocations, "seconds": round(time.time() - began, 1),
            "tuning": None if tuning is None else {"lr_scales": [round(x, 4) for x in tuning.lr_scales],
                                                   "weight_decays": list(tuning.weight_decays),
                                                   "extend": tuning.extend}}
    return write(rows, meta, os.path.join(args.out, f"accuracy_{args.tag or ('quick' if args.quick else 'full')}"))


def parse_list(text, kind, name, allowed=None):
    if text is None:
        return None
    try:
        values = tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise SystemExit(f"{name}: expected comma-separated {kind.__name__} values, got {text!r}") from None
    if not values or (allowed and not set(values) <= allowed):
        raise SystemExit(f"{name}: expected values from {sorted(allowed) if allowed else kind.__name__}, got {text!r}")
    return values


def merged(paths) -> tuple[list, dict]:
    """The rows of several runs, one table: each run's meta is kept under 'sources'."""
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    metas = [r["meta"] for r in runs]
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "torch": metas[0]["torch"],
            "seeds": sorted({s for m in metas for s in m["seeds"]}), "quick": any(m["quick"] for m in metas),
            "seconds": sum(m["seconds"] for m in metas),
            "tuning": next((m["tuning"] for m in metas if m.get("tuning")), None),
            "sources": [dict(m, file=os.path.basename(p)) for m, p in zip(metas, paths)]}
    return [row for r in runs for row in r["rows"]], meta


def write(rows, meta, stem) -> int:
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    table = markdown(rows, meta)
    with open(stem + ".md", "w") as f:
        f.write(table)
    plot(rows, stem + ".png")
    print(table)
    print(f"wrote {stem}.json, .md, .png in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
