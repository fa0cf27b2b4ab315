"""The accuracy-budget study in one table and one plot: plain vs WSNet vs HashNet vs the plain
network narrowed to the same size, at 4x / 10x / 45x model ratios, on the synthetic audio set
(SoundNet), MNIST-1D (its 1D CNN) and Fashion-MNIST (the seed's 5-layer CNN), each compressed model
with the default allocation and its own searched lr and weight decay, 3 seeds.

No training: accuracy, parameters and bytes come from the committed runs listed in STUDY. Each
row's architecture is rebuilt (untrained: the work does not depend on the weights) to count its
multiply-adds per sample (wsnet_ext.summary) and to time batch-1 latency on one thread, every model
of a data set interleaved in this process with its plain network (benchmarks/timing). A row whose
rebuilt model does not hold the run's parameter count keeps its run's latency and has no
multiply-adds. Run it on a quiet machine.

    python benchmarks/study.py                    # writes benchmarks/results/study/study_<date>.{md,json,png}
    python benchmarks/study.py --source-latency   # the runs' own latency, no timing here
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.allocations import allocation_kwargs  # noqa: E402
from benchmarks.narrowed import narrowed, params  # noqa: E402
from benchmarks.timing import one_thread_latency_ms  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
AUDIO_CLIP = (1, 1, 22050 * 5)  # one 5 s clip of the synthetic set at 22.05 kHz

# (data set, target model ratio, result file under results/, the rows it gives: (variant, allocation))
DEFAULT = "by_params_fast"
STUDY = [
    ("audio", 4, "audio/audio_synthetic_4x_30ep_3seeds_2026-12-06.json", None),
    ("audio", 10, "audio/audio_synthetic_10x_30ep_3seeds_2026-12-06.json", None),
    ("audio", 45, "audio/audio_synthetic_45x_30ep_3seeds_2026-12-06.json", None),
    ("mnist1d", 4, "accuracy/accuracy_mnist1d_allocation_merged_2026-12-05.json",
     {("plain", None), ("narrow", DEFAULT), ("hashed", DEFAULT), ("ws", DEFAULT)}),
    # at 10x the default WSNet is the 8-sums row (since session 20; docs/design.md §7)
    ("mnist1d", 10, "accuracy/accuracy_mnist1d_10x_2026-12-06.json",
     {("plain", None), ("narrow", DEFAULT), ("hashed", DEFAULT)}),
    ("mnist1d", 10, "accuracy/accuracy_mnist1d_10x_sums8_2026-12-06.json", {("ws", DEFAULT + "+sums8")}),
    ("mnist1d", 45, "accuracy/accuracy_mnist1d_45x_2026-12-06.json", None),
    ("fashion_cnn", 4, "accuracy/accuracy_fashion_cnn_allocation_2026-12-06.json",
     {("plain", None), ("narrow", DEFAULT), ("hashed", DEFAULT), ("ws", DEFAULT)}),
    ("fashion_cnn", 10, "accuracy/accuracy_fashion_cnn_allocation_2026-12-06.json",
     {("narrow", DEFAULT), ("hashed", DEFAULT), ("ws", DEFAULT)}),
    ("fashion_cnn", 45, "accuracy/accuracy_fashion_cnn_allocation_2026-12-06.json",
     {("narrow", DEFAULT), ("hashed", DEFAULT), ("ws", DEFAULT)}),
]
LABELS = {"plain": "plain", "narrow": "plain, narrowed", "hashed": "HashNet", "ws": "WSNet"}
TITLES = {"audio": "audio (SoundNet, synthetic, 10 classes)", "mnist1d": "MNIST-1D (1D CNN)",
          "fashion_cnn": "Fashion-MNIST (5-layer CNN)"}


def _architectures():
    """{data set: (build(variant, ratio, allocation), narrow(width), widest, narrowest, example)}."""
    from benchmarks import bench_accuracy
    exps = {e.name: e for e in bench_accuracy.experiments(argparse.Namespace(
        mnist_dir=None, cifar10_dir=None, fashion_mnist_dir=None))}
    soundnet = wsnet_ext.models.soundnet
    found = {"audio": (lambda v, k, **how: soundnet(10, v, k, **how), lambda w: soundnet(10, width=w), 1.0, 0.02,
                       torch.zeros(AUDIO_CLIP))}
    for name, shape in (("mnist1d", (1, 1, 40)), ("fashion_cnn", (1, 1, 28, 28))):
        e = exps[name]
        found[name] = (e.build, lambda w, e=e: e.narrow(int(w)), e.width, 1, torch.zeros(shape))
    return found


def rebuilt(arch, row: dict, variant: str, allocation: str | None):
    """The untrained model of a row, or None where the build does not hold the row's parameters."""
    build, narrow, widest, narrowest, _ = arch
    if variant == "plain":
        model = build("plain", None)
    elif variant == "narrow":
        model, _ = narrowed(narrow, row["params"], widest, narrowest)
    else:
        model = build(variant, row["compression"], **allocation_kwargs(allocation))
    return model if params(model) == row["params"] else None


def _row_allocation(variant: str, row: dict) -> str | None:
    if variant == "plain":
        return None
    return row.get("allocation") or ("uniform" if variant != "narrow" else DEFAULT)


def study_rows(study=STUDY, results: str = RESULTS, time_latency: bool = True) -> list[dict]:
    """One dict per model and ratio of `study`, by data set, ratio and model (plain once per data
    set, from the first file that has it); files not found are skipped with a note on stderr.
    time_latency: time the rebuilt models here (`retime`), else keep the runs' latency."""
    archs, rows, models, plain_seen = _architectures(), [], [], set()
    for dataset, target, path, wanted in study:
        full = os.path.join(results, path)
        if not os.path.exists(full):
            print(f"study: {path} not found, its rows are left out", file=sys.stderr)
            continue
        with open(full) as f:
            source = json.load(f)
        for row in source["rows"]:
            variant = row["variant"]
            allocation = _row_allocation(variant, row)
            if variant not in LABELS or (wanted is not None and (variant, allocation) not in wanted):
                continue
            if variant != "plain" and row["compression"] != target:
                continue
            if variant == "plain":
                if dataset in plain_seen:
                    continue
                plain_seen.add(dataset)
            elif wanted is None and allocation not in (DEFAULT, None) and variant != "narrow":
                continue
            audio = "accuracy_mean" in row
            accuracies = (list(row["fold_accuracy"].values()) if audio
                          else [100 - e for e in row["test_errors"]])
            model = rebuilt(archs[dataset], row, variant, allocation)
            summary = wsnet_ext.summary(model, archs[dataset][4]) if model is not None else None
            models.append(model)
            rows.append({
                "dataset": dataset, "target": None if variant == "plain" else target, "model": LABELS[variant],
                "allocation": allocation if variant in ("ws", "hashed") else None,
                "accuracy_mean": row["accuracy_mean"] if audio else 100 - row["test_error_mean"],
                "accuracy_std": row["accuracy_std"] if audio else row["test_error_std"], "runs": len(accuracies),
                "params": row["params"], "model_ratio": row["model_ratio"] if audio else row["model_compression"],
                "bytes": row["bytes"], "macs": summary.macs if summary else None,
                "latency_ms": row.get("latency_ms"), "x_plain": row.get("latency_vs_plain"),
                "latency_from": "run", "source": path})
    if time_latency:
        retime(rows, models, archs)
    datasets, labels = list(dict.fromkeys(d for d, *_ in study)), list(LABELS.values())
    return sorted(rows, key=lambda r: (datasets.index(r["dataset"]), r["target"] or 0, labels.index(r["model"])))


def retime(rows: list[dict], models: list, archs: dict) -> None:
    """Batch-1 latency on one thread of each data set's rebuilt models (None: not rebuilt, kept
    as its run measured it), interleaved in this process, and the speed over that set's plain."""
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = {k: m.eval() for k, (r, m) in enumerate(zip(rows, models)) if r["dataset"] == dataset and m is not None}
        plain = next((k for k in mine if rows[k]["model"] == "plain"), None)
        if plain is None:
            continue
        with torch.no_grad():
            latency = one_thread_latency_ms(mine, archs[dataset][4])
        for k, ms in latency.items():
            rows[k].update(latency_ms=ms, x_plain=latency[plain] / ms, latency_from="here")


def markdown(rows: list[dict], when: str) -> str:
    lines = [f"# The accuracy-budget study in one table ({when})", "",
             "Accuracy of the best-validation epoch on the test split (audio: 5 folds x 3 seeds; MNIST-1D and "
             "Fashion-MNIST: 3 seeds; their test error turned into accuracy), each model with the lr and weight "
             "decay its own search chose, compressed models with the default allocation ('by_params_fast'; "
             "WSNet's floor on channel sums as the default takes it). Bytes: the saved model. Multiply-adds: per "
             "sample, counted on the rebuilt architecture (wsnet_ext.summary: WSConv1d's integral image, the "
             "other layers a plain op on their weight). Latency: batch 1, one thread, median, each data set's "
             "rebuilt models interleaved in one process with its plain network (\"(run's)\": the source run's "
             "own figure). Written by `python benchmarks/study.py` from the files named in the last column.", "",
             "| data set | target | model | accuracy % | params | model ratio | bytes | multiply-adds (M) "
             "| latency ms | x plain | source |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        macs = f"{r['macs'] / 1e6:.2f}" if r["macs"] is not None else "-"
        latency = f"{r['latency_ms']:.3f}" if r["latency_ms"] is not None else "-"
        speed = f"{r['x_plain']:.2f}" if r["x_plain"] else "-"
        latency += " (run's)" if r["latency_from"] == "run" and r["latency_ms"] is not None else ""
        lines.append(f"| {r['dataset']} | {str(r['target']) + 'x' if r['target'] else '-'} | {r['model']} | "
                     f"{r['accuracy_mean']:.2f} +- {r['accuracy_std']:.2f} ({r['runs']}) | {r['params']:,} | "
                     f"{r['model_ratio']:.1f} | {r['bytes']:,} | {macs} | {latency} | {speed} | "
                     f"`{os.path.basename(r['source'])}` |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str) -> None:
    """Per data set: accuracy against bytes (log) and against speed over plain (batch 1)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(2, len(datasets), figsize=(5 * len(datasets), 8), squeeze=False)
    markers = {"plain": "*", "plain, narrowed": "s", "HashNet": "^", "WSNet": "o"}
    for col, dataset in enumerate(datasets):
        for model, marker in markers.items():
            mine = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
            for ax, key in ((axes[0][col], "bytes"), (axes[1][col], "x_plain")):
                points = sorted((r for r in mine if r[key]), key=lambda r: r["target"] or 0)
                ax.errorbar([r[key] for r in points], [r["accuracy_mean"] for r in points],  # joined by ratio
                            yerr=[r["accuracy_std"] for r in points], fmt=marker + "-", lw=0.8, label=model, capsize=3)
                for r in points:
                    if r["target"]:
                        ax.annotate(f"{r['target']}x", (r[key], r["accuracy_mean"]), fontsize=7,
                                    xytext=(3, 3), textcoords="offset points")
        axes[0][col].set_xscale("log")
        axes[0][col].set_title(TITLES.get(dataset, dataset))
        axes[0][col].set_xlabel("bytes on disk")
        axes[1][col].set_xlabel("x faster than plain (batch 1, 1 thread)")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_ylabel("test accuracy %")
            ax.grid(alpha=0.3)
        axes[0][col].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(RESULTS, "study"))
    parser.add_argument("--tag", default=datetime.date.today().isoformat())
    parser.add_argument("--source-latency", action="store_true",
                        help="keep each run's own latency instead of timing the rebuilt models here")
    args = parser.parse_args()
    rows = study_rows(time_latency=not args.source_latency)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"study_{args.tag}")
    with open(stem + ".json", "w") as f:
        json.dump({"meta": {"when": when, "torch": torch.__version__}, "rows": rows}, f, indent=1)
    text = markdown(rows, when)
    with open(stem + ".md", "w") as f:
        f.write(text)
    plot(rows, stem + ".png")
    print(text)


if __name__ == "__main__":
    main()
