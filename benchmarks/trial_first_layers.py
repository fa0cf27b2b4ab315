"""A trial for the budget allocation (issue 26): SoundNet WSNet at 10x with the budget spent by
layer size ('by_params', which keeps conv1-conv3 plain), except that the first convolution(s) are
compressed as the uniform rule compresses them: the layers where WSNet saves the most time. Trains
each hybrid on one test fold of a data set with the audio experiment's recipe (the same seed as
bench_audio.py's runs on that fold), then times every model at batch 1 on one thread beside plain,
uniform and by_params. One fold, one seed: a pointer for the study, not a result on its own.

    python benchmarks/trial_first_layers.py --data /tmp/synth400

Writes benchmarks/results/audio/trial_first_layers_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.accuracy.train import train  # noqa: E402
from benchmarks.audio import decode, experiment, layouts  # noqa: E402
from benchmarks.outputs import results_tag, write_json_and_markdown  # noqa: E402
from benchmarks.timing import one_thread_latency_ms  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "audio")
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "wsnet_ext", "audio")
FIRST_CONVS = {"conv1": [0], "conv1-2": [0, 4]}  # indices of SoundNet's first convolutions


def hybrid(num_classes: int, compression: float, first: list[int]):
    """by_params, with the modules at `first` taken from the uniform model."""
    uniform = wsnet_ext.models.soundnet(num_classes, "ws", compression, allocate="uniform")
    model = wsnet_ext.models.soundnet(num_classes, "ws", compression, allocate="by_params")
    for index in first:
        model[index] = uniform[index]
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--fold", type=int, default=1)
    p.add_argument("--compression", type=float, default=10)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--tag", default=None)
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args(argv)
    audio = layouts.load(args.data, "auto", folds=5, seed=0)
    data = decode.decode(audio, 22050, int(round(args.seconds * 22050)), CACHE, False, False)
    parts = experiment.split(data, args.fold, audio.folds)[:3]
    classes, k = len(audio.classes), args.compression
    rows = []
    for name, first in FIRST_CONVS.items():
        torch.manual_seed(args.fold)  # bench_audio.py's seed for this fold (recipe seed 0)
        model = hybrid(classes, k, first)
        result = train(model, parts, epochs=args.epochs, lr=1e-3, weight_decay=1e-4, batch_size=32, seed=args.fold,
                       progress=False)
        s = wsnet_ext.summary(model)
        rows.append({"model": f"by_params, {name} as uniform", "accuracy": 100 - result.test_error,
                     "params": s.total_params, "model_ratio": s.compactness})
        print(rows[-1], flush=True)
    models = {"plain": wsnet_ext.models.soundnet(classes), "uniform": wsnet_ext.models.soundnet(classes, "ws", k, allocate="uniform"),
              "by_params": wsnet_ext.models.soundnet(classes, "ws", k, allocate="by_params"),
              **{f"by_params, {n} as uniform": hybrid(classes, k, f) for n, f in FIRST_CONVS.items()}}
    latency = one_thread_latency_ms({n: m.eval() for n, m in models.items()}, torch.randn(1, 1, data.x.shape[-1]))
    for row in rows:
        row["latency_ms"] = latency[row["model"]]
        row["x_faster_than_plain"] = latency["plain"] / row["latency_ms"]
    meta = {"when": datetime.datetime.now().isoformat(timespec="minutes"), "data": args.data, "fold": args.fold,
            "compression": k, "epochs": args.epochs, "latency_ms": latency, "torch": torch.__version__}
    lines = [f"# Trial: by_params with the first convolutions compressed ({meta['when']})", "",
             f"SoundNet WSNet {k:g}x on {args.data}, test fold {args.fold} only, {args.epochs} epochs, Adam lr 1e-3, "
             "weight decay 1e-4 (bench_audio.py's recipe and seed). Latency: one clip, batch 1, one CPU thread, p50, "
             "all models interleaved: " + ", ".join(f"{n} {v:.2f} ms" for n, v in latency.items()) + ".", "",
             "| model | accuracy % | params | model ratio | latency ms | x faster than plain |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['accuracy']:.2f} | {r['params']:,} | {r['model_ratio']:.1f} | {r['latency_ms']:.2f} | "
              f"{r['x_faster_than_plain']:.2f} |" for r in rows]
    os.makedirs(args.out, exist_ok=True)
    write_json_and_markdown(os.path.join(args.out, f"trial_first_layers_{results_tag(args.tag, False)}"),
                            {"meta": meta, "rows": rows}, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
