"""The seed's Table 1 on data that exists here: the plain network, its HashedNets and its WSNet
version at equal compression, 20% of the training set held out for validation, the model of the
best validation epoch tested, 3 seeds, mean +- std test error.

    python benchmarks/bench_accuracy.py                    # every experiment with data here
    python benchmarks/bench_accuracy.py --only mnist1d      # one experiment
    python benchmarks/bench_accuracy.py --quick             # CI smoke run (< 2 minutes)
    python benchmarks/bench_accuracy.py --only mnist --mnist-dir ~/data/mnist
    python benchmarks/bench_accuracy.py --only cifar10 --cifar10-dir ~/data/cifar-10-batches-py
    python benchmarks/bench_accuracy.py --only fashion_mlp,fashion_cnn --quantized   # Debian's Fashion-MNIST

Writes benchmarks/results/accuracy_<tag>.{json,md,png}."""

from __future__ import annotations

import argparse
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

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SEED_TABLE1 = {  # test error % of the seed's Table 1 (CIFAR-10 / MNIST), for the README
    "cifar10": {"plain": 14.91, ("hashed", 16): 21.42, ("hashed", 64): 30.79, ("ws", 16): 17.82, ("ws", 64): 23.59},
    "mnist": {"plain": 1.37, ("hashed", 8): 1.43, ("hashed", 64): 2.41, ("ws", 8): 1.29, ("ws", 64): 1.97},
}


@dataclass
class Experiment:
    name: str
    load: callable          # seed -> (train, val, test)
    build: callable         # (variant, compression) -> model
    compressions: tuple
    epochs: int
    lr: float
    batch_size: int
    needs: str | None = None  # the --*-dir option it reads its files from


def experiments(args) -> list[Experiment]:
    m = wsnet_ext.models
    return [
        Experiment("mnist1d", lambda seed: datasets.mnist1d(seed), lambda v, k: m.cnn1d(10, v, k),
                   (4, 8, 16), 40, 1e-2, 100),
        Experiment("digits_mlp", lambda seed: datasets.digits(seed), lambda v, k: m.mlp(64, 10, v, k),
                   (8, 64), 40, 1e-3, 64),
        Experiment("digits_cnn", lambda seed: datasets.digits(seed),
                   lambda v, k: m.cnn5(10, v, k, in_channels=1, width=32, image_size=8), (16, 64), 40, 1e-3, 64),
        Experiment("mnist", lambda seed: datasets.mnist(args.mnist_dir, seed), lambda v, k: m.mlp(784, 10, v, k),
                   (8, 64), 20, 1e-3, 128, needs="mnist_dir"),
        # Fashion-MNIST with the seed's two protocols: HashNet's 784-1000-10 net at 8x / 64x and
        # the 5-layer CNN at 16x / 64x (found at Debian's path, or --fashion-mnist-dir)
        Experiment("fashion_mlp", lambda seed: datasets.fashion_mnist(args.fashion_mnist_dir, seed),
                   lambda v, k: m.mlp(784, 10, v, k), (8, 64), 20, 1e-3, 128, needs="fashion_mnist_dir"),
        Experiment("fashion_cnn", lambda seed: datasets.fashion_mnist(args.fashion_mnist_dir, seed),
                   lambda v, k: m.cnn5(10, v, k, in_channels=1, width=32, image_size=28), (16, 64), 12, 1e-3,
                   128, needs="fashion_mnist_dir"),
        Experiment("cifar10", lambda seed: datasets.cifar10(args.cifar10_dir, seed), lambda v, k: m.cnn5(10, v, k),
                   (16, 64), 30, 1e-3, 128, needs="cifar10_dir"),
    ]


def model_stats(model) -> dict:
    s = wsnet_ext.summary(model)
    compressed = [r for r in s.layers if r.type.startswith(("WS", "Hashed"))]
    return {"params": s.total_params, "plain_params": s.total_plain_params, "model_compression": s.compactness,
            "bytes": wsnet_ext.model_bytes(model), "plain_float32_bytes": 4 * s.total_plain_params,
            "layer_compression": [round(r.compactness, 3) for r in compressed],
            "plain_layers": [r.name for r in s.layers if not r.type.startswith(("WS", "Hashed"))]}


def subset(split, count):
    return tuple(t[:count] for t in split)


def run_experiment(exp: Experiment, seeds, quick: bool, quantized: bool = False) -> list[dict]:
    """Every variant over the seeds; with `quantized`, each trained WSNet model is also tested with
    its condensed filters in 8 bits (variant 'ws8', no retraining: the paper's sampling + quantization)."""
    runs = [("plain", None)] + [(v, k) for k in exp.compressions for v in ("hashed", "ws")]
    rows = []
    for variant, compression in runs:
        results = {variant: ([], None)} if not (quantized and variant == "ws") else {"ws": ([], None), "ws8": ([], None)}
        first_last = None
        for seed in seeds:
            data = exp.load(seed)
            if quick:
                data = (subset(data[0], 512), subset(data[1], 256), subset(data[2], 256))
            torch.manual_seed(seed)
            model = exp.build(variant, compression)
            results[variant] = (results[variant][0], model_stats(model))
            result = train(model, data, epochs=3 if quick else exp.epochs, lr=exp.lr, batch_size=exp.batch_size,
                           seed=seed, desc=f"{exp.name} {variant} {compression or ''} seed {seed}")
            results[variant][0].append(result.test_error)
            first_last = (result.losses[0], result.losses[-1])
            if "ws8" in results:
                wsnet_ext.quantize_condensed(model, bits=8)
                results["ws8"][0].append(error_rate(model, *data[2]))
                results["ws8"] = (results["ws8"][0], model_stats(model))
        for name, (errors, stats) in results.items():
            rows.append({"experiment": exp.name, "variant": name, "compression": compression,
                         "test_error_mean": statistics.mean(errors),
                         "test_error_std": statistics.stdev(errors) if len(errors) > 1 else 0.0,
                         "test_errors": errors, "seeds": list(seeds), "first_last_loss": first_last, **stats})
            print(f"{exp.name:<11} {name:<6} {str(compression or '-'):>4}x  test error "
                  f"{rows[-1]['test_error_mean']:.2f} +- {rows[-1]['test_error_std']:.2f}%  "
                  f"params {stats['params']}  bytes {stats['bytes']}  model compression "
                  f"{stats['model_compression']:.2f}", flush=True)
    return rows


def markdown(rows, meta) -> str:
    lines = [f"# Accuracy: plain vs HashedNets vs WSNet ({meta['when']})", "",
             f"torch {meta['torch']}, seeds {meta['seeds']}, {'QUICK smoke run' if meta['quick'] else 'full run'}. "
             "Test error of the best-validation epoch, mean +- std over seeds; 'compression' is the target of "
             "each compressed layer, 'model' the achieved whole-model ratio (plain-layer parameters / ours).", "",
             "| experiment | variant | compression | test error % | params | model compression | bytes | "
             "bytes ratio vs plain float32 | compressed layers |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['experiment']} | {r['variant']} | {r['compression'] or '-'} | "
                     f"{r['test_error_mean']:.2f} +- {r['test_error_std']:.2f} | {r['params']} | "
                     f"{r['model_compression']:.2f} | {r['bytes']} | {r['plain_float32_bytes'] / r['bytes']:.1f} | "
                     f"{', '.join(f'{c:.1f}' for c in r['layer_compression']) or '-'} |")
    lines += ["", "WSNet < HashNet at equal compression:"]
    for exp in sorted({r["experiment"] for r in rows}):
        for k in sorted({r["compression"] for r in rows if r["experiment"] == exp and r["compression"]}):
            ws = next(r for r in rows if (r["experiment"], r["variant"], r["compression"]) == (exp, "ws", k))
            ha = next(r for r in rows if (r["experiment"], r["variant"], r["compression"]) == (exp, "hashed", k))
            verdict = "holds" if ws["test_error_mean"] < ha["test_error_mean"] else "does NOT hold"
            lines.append(f"- {exp} {k}x: WSNet {ws['test_error_mean']:.2f}% vs HashNet {ha['test_error_mean']:.2f}%: {verdict}")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = sorted({r["experiment"] for r in rows})
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        mine = [r for r in rows if r["experiment"] == name]
        plain = next(r for r in mine if r["variant"] == "plain")
        ax.axhline(plain["test_error_mean"], color="grey", linestyle="--", label="plain")
        for variant, marker in (("hashed", "s"), ("ws", "o"), ("ws8", "^")):
            pts = sorted((r["compression"], r["test_error_mean"], r["test_error_std"]) for r in mine if r["variant"] == variant)
            if not pts:
                continue
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], marker=marker,
                        capsize=3, label={"hashed": "HashNet", "ws": "WSNet", "ws8": "WSNet, 8-bit"}[variant])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("compression (x)")
        ax.set_ylabel("test error (%)")
        ax.set_title(name)
        ax.legend()
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
    parser.add_argument("--tag", default=None)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    if args.fashion_mnist_dir is None and os.path.isdir(datasets.FASHION_MNIST_DEBIAN):
        args.fashion_mnist_dir = datasets.FASHION_MNIST_DEBIAN
    chosen = [e for e in experiments(args)
              if (args.only is None or e.name in args.only.split(",")) and (e.needs is None or getattr(args, e.needs))]
    if args.only:
        missing = set(args.only.split(",")) - {e.name for e in chosen}
        if missing:
            raise SystemExit(f"unknown experiment or data directory not given: {sorted(missing)}")
    seeds = list(range(1 if args.quick else args.seeds))
    torch.set_num_threads(torch.get_num_threads())
    began = time.time()
    rows = [row for exp in chosen for row in run_experiment(exp, seeds, args.quick, args.quantized)]
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "seeds": seeds,
            "quick": args.quick, "seconds": round(time.time() - began, 1)}
    tag = args.tag or ("quick" if args.quick else "full")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"accuracy_{tag}")
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
