"""The WSNet paper's main experiment in one command: a SoundNet-style 1D CNN on raw audio, plain, as
WSNet at several compactness levels (optionally with 8-bit condensed filters) and as HashNet at
the same sizes, cross-validated on the data set's own folds.

    python benchmarks/bench_audio.py --data ~/data/ESC-50-master --quantized      # ESC-50: 5 folds
    python benchmarks/bench_audio.py --data ~/data/UrbanSound8K                    # 10 folds
    python benchmarks/bench_audio.py --data ~/my_sounds --layout folders --folds 5 # a folder per class
    python benchmarks/bench_audio.py --synthetic /tmp/synth_audio --quick          # synthetic, minutes
    python benchmarks/bench_audio.py --merge a.json b.json --tag ab               # runs pooled, one table

The layout is detected from the metadata files unless --layout says. Audio is decoded once (mono,
resampled to --rate with soxr, centre-cropped or zero-padded to --seconds) and cached under
--cache. Writes benchmarks/results/audio/audio_<tag>.{json,md,png}."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.allocations import parse_allocations  # noqa: E402
from benchmarks.audio import decode, experiment, layouts, report, synthetic  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "audio")
SECONDS = {"esc50": 5.0, "urbansound8k": 4.0, "folders": 5.0}   # the data sets' clip lengths
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "wsnet_ext", "audio")


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="the data set's root folder")
    p.add_argument("--layout", default="auto", choices=("auto",) + layouts.LAYOUTS)
    p.add_argument("--folds", type=int, default=5, help="folders layout: stratified folds (default 5)")
    p.add_argument("--test-folds", default=None, help="comma-separated folds to test (default: all)")
    p.add_argument("--rate", type=int, default=22050, help="model sample rate (SoundNet: 22050)")
    p.add_argument("--seconds", type=float, default=None, help="clip length (default: esc50 5, urbansound8k 4, folders 5)")
    p.add_argument("--compressions", default="4,10,45", help="WSNet/HashNet per-layer targets (default 4,10,45)")
    p.add_argument("--quantized", action="store_true", help="also test each WSNet model with 8-bit condensed filters")
    p.add_argument("--policy", default="spatial",
                   help="WSNet (S, C) policy per layer, or a comma-separated list to compare: spatial, balanced, channel")
    p.add_argument("--allocate", default="by_params_fast",
                   help="comma-separated budget allocations: uniform (every layer at the target), by_params "
                        "(the target as the whole model's ratio, spent by layer size), by_params_fast (by_params, the "
                        "layers doing most multiply-adds at least at sqrt of the target; wsnetify's default), "
                        "by_params_fast:H (... at least at H); any of them +sumsK: no WSNet layer keeps fewer "
                        "than K channel sums (wsnetify's min_channel_sums); default by_params_fast")
    p.add_argument("--variants", default=",".join(experiment.KINDS),
                   help="comma-separated kinds to train: plain, narrow, ws, hashed (default all; e.g. ws,hashed to "
                        "add allocations to an earlier run with --merge)")
    p.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                   help="write one table from the rows of earlier runs' JSON files (same data and recipe): "
                        "accuracies pooled over their folds and seeds, latency measured again")
    p.add_argument("--time-shift", type=float, default=0.0,
                   help="train on clips rolled by a random offset up to this share of their length (e.g. 0.5)")
    p.add_argument("--tune", action="store_true",
                   help="search lr x weight decay per variant on the first test fold's validation fold")
    p.add_argument("--tune-epochs", type=int, default=None, help="epochs of each search run (default --epochs)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=DEFAULT_CACHE, help=f"decoded-audio cache (default {DEFAULT_CACHE})")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="leave out clips that cannot be decoded (listed in the results) instead of stopping")
    p.add_argument("--quick", action="store_true", help="smoke run: first test fold, 2 epochs, compression 10")
    p.add_argument("--synthetic", metavar="DIR", help="first write a synthetic data set to DIR and use it as --data")
    p.add_argument("--synthetic-clips", type=int, default=40, help="synthetic clips per class (default 40, 10 classes)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--tag", default=None)
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args(argv)
    if args.merge:
        return args
    if bool(args.data) == bool(args.synthetic):
        p.error("give exactly one of --data DIR and --synthetic DIR")
    if args.quick:
        args.epochs = min(args.epochs, 2)
        if args.compressions == p.get_default("compressions"):
            args.compressions = "10"
    try:
        args.compressions = [float(c) if "." in c else int(c) for c in args.compressions.split(",")]
    except ValueError:
        p.error(f"--compressions expects comma-separated numbers, got {args.compressions!r}")
    if any(c < 1 for c in args.compressions):
        p.error(f"--compressions expects numbers >= 1, got {args.compressions}")
    try:
        args.allocate = parse_allocations(args.allocate)
    except ValueError as e:
        p.error(str(e))
    args.variants = args.variants.split(",")
    if not args.variants or any(x not in experiment.KINDS for x in args.variants):
        p.error(f"--variants expects kinds of {experiment.KINDS}, got {args.variants}")
    if not 0 <= args.time_shift <= 1:
        p.error(f"--time-shift expects a share in [0, 1], got {args.time_shift}")
    from wsnet_ext.convert import POLICIES
    args.policy = args.policy.split(",")
    if not args.policy or any(x not in POLICIES for x in args.policy):
        p.error(f"--policy expects names of {POLICIES}, got {args.policy}")
    return args


def write(rows: list[dict], meta: dict, stem: str, title: str) -> None:
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    table = report.markdown(rows, meta)
    with open(stem + ".md", "w") as f:
        f.write(table)
    report.plot(rows, stem + ".png", title)
    print(table)
    print(f"wrote {stem}.json, .md, .png")


def main(argv=None) -> int:
    args = parse(argv)
    if args.merge:
        from benchmarks.audio.merge import merged
        rows, meta = merged(args.merge)
        os.makedirs(args.out, exist_ok=True)
        write(rows, meta, os.path.join(args.out, f"audio_{args.tag or 'merged'}"),
              f"{meta['layout']}: {meta['clips']} clips, {meta['classes']} classes, {len(meta['sources'])} runs")
        return 0
    began = time.time()
    progress = not args.no_progress
    if args.synthetic:
        layout = "folders" if args.layout == "auto" else args.layout
        if not os.path.isdir(args.synthetic) or not os.listdir(args.synthetic):
            print(f"writing a synthetic {layout} data set to {args.synthetic}", flush=True)
            synthetic.write(args.synthetic, layout, clips_per_class=args.synthetic_clips,
                            seconds=args.seconds or SECONDS[layout], seed=args.seed)
        args.data = args.synthetic
    audio = layouts.load(args.data, args.layout, folds=args.folds, seed=args.seed)
    print(audio.describe(), flush=True)
    for path in audio.ignored:
        print(f"  ignored (not audio): {path}")
    seconds = args.seconds or SECONDS[audio.layout]
    data = decode.decode(audio, args.rate, int(round(seconds * args.rate)), args.cache, args.skip_unreadable, progress)
    print(f"{'read the cache' if data.from_cache else 'decoded and cached'}: {data.cache_dir}", flush=True)
    for problem in data.skipped:
        print(f"  left out: {problem}")
    test_folds = audio.folds[:1] if args.quick else audio.folds
    if args.test_folds:
        test_folds = [int(f) for f in args.test_folds.split(",")]
        unknown = sorted(set(test_folds) - set(audio.folds))
        if unknown:
            raise SystemExit(f"--test-folds expects folds of {audio.folds}, got {unknown}")
    recipe = experiment.Recipe(args.epochs, args.lr, args.weight_decay, args.batch_size, seed=args.seed,
                               time_shift=args.time_shift, tune=args.tune, tune_epochs=args.tune_epochs)
    rows = experiment.cross_validate(data, len(audio.classes), audio.folds, test_folds, recipe, args.compressions,
                                     args.quantized, progress, policies=args.policy, allocations=args.allocate,
                                     kinds=args.variants)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "data": f"{audio.layout} at {audio.root}",
            "layout": audio.layout, "clips": len(data.y), "classes": len(audio.classes), "class_names": audio.classes,
            "rate": args.rate, "seconds": seconds, "folds": audio.folds, "test_folds": test_folds,
            "epochs": args.epochs, "policies": args.policy, "allocations": args.allocate,
            "variants": args.variants,
            "time_shift": args.time_shift, "tuned": args.tune, "tune_epochs": args.tune_epochs, "lr": args.lr, "weight_decay": args.weight_decay, "batch_size": args.batch_size,
            "seed": args.seed, "quick": args.quick, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "skipped": data.skipped, "ignored": audio.ignored, "from_cache": data.from_cache,
            "seconds_total": time.time() - began}
    tag = args.tag or ("quick" if args.quick else audio.layout)
    os.makedirs(args.out, exist_ok=True)
    write(rows, meta, os.path.join(args.out, f"audio_{tag}"), f"{audio.layout}: {len(data.y)} clips, {len(audio.classes)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
