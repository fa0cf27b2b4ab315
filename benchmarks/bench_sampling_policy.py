"""Why WSNet trails HashNet, measured: at equal compactness, the ways wsnetify can split each
layer's compactness between filter overlap (sample_stride S) and channel repeats (C), against
HashNet and the plain network, each with its own learning rate chosen on the validation split
(the fair protocol), with the median training epoch time of each.

    python benchmarks/bench_sampling_policy.py                         # MNIST-1D 8x/16x, Fashion-MNIST MLP 64x
    python benchmarks/bench_sampling_policy.py --only mnist1d --seeds 3 --lrs 3e-3,1e-2,3e-2

For each experiment and compression: every candidate (HashNet; WSNet under each policy of
wsnet_ext.convert.POLICIES) trains once per learning rate on seed 0, the learning rate with the
lowest validation error is kept, then the candidate trains on --seeds seeds and is tested once
per seed. Writes benchmarks/results/accuracy/sampling_policy_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.accuracy import data as datasets  # noqa: E402
from benchmarks.accuracy.results import write  # noqa: E402
from benchmarks.accuracy.train import train  # noqa: E402
from wsnet_ext.convert import POLICIES  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "accuracy")
M = wsnet_ext.models
EXPERIMENTS = {  # name: (loader(seed), builder(variant, k, policy), compressions, epochs, batch)
    "mnist1d": (datasets.mnist1d, lambda v, k, p: M.cnn1d(10, v, k, policy=p, allocate="uniform"), (8, 16), 40, 100),
    "fashion_mlp": (lambda seed: datasets.fashion_mnist(None, seed), lambda v, k, p: M.mlp(784, 10, v, k, policy=p, allocate="uniform"),
                    (64,), 10, 128),
    "digits_cnn": (datasets.digits, lambda v, k, p: M.cnn5(10, v, k, in_channels=1, width=32, image_size=8, policy=p,
                                                                 allocate="uniform"),
                   (64,), 40, 64),
}


ORDERS = ("rows", "columns", "patches")


def reorder(data, order: str):
    """Images (N, 1, H, W) rearranged so that the network's Flatten reads them in `order`: row by
    row (as stored), column by column, or 4x4 patch by patch. Plain and HashNet layers do not
    care about the order of their inputs; WSLinear does, since neighbouring output units read
    windows of the flattened input shifted by S positions (docs/design.md §3)."""
    def one(x):
        if order == "rows":
            return x
        if order == "columns":
            return x.transpose(-1, -2).contiguous()
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 4, 4, w // 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)
    return tuple((one(x), y) for x, y in data)


def sampling_of(model) -> list:
    return [(type(m).__name__, m.sample_stride if isinstance(m.sample_stride, int) else m.sample_stride[0],
             m.channel_repeat) for m in model.modules() if isinstance(m, wsnet_ext.convert.WS_TYPES)]


def run(name, lrs, seeds, quick, orders=("rows",), log=print) -> list[dict]:
    load, build, compressions, epochs, batch = EXPERIMENTS[name]
    epochs = 2 if quick else epochs
    data_by_seed = {}

    def data(seed, order="rows"):
        if seed not in data_by_seed:
            d = load(seed)
            data_by_seed[seed] = tuple(tuple(t[:400] for t in part) for part in d) if quick else d
        return reorder(data_by_seed[seed], order)

    rows = []
    for k in compressions:
        images = data(0)[0][0].dim() == 4 and isinstance(build("plain", None, None)[0], torch.nn.Flatten)  # an MLP
        candidates = ([("plain", None, "rows")] if k == compressions[0] else []) + [("hashed", None, "rows")] + \
            [("ws", p, "rows") for p in POLICIES] + [("ws", "spatial", o) for o in orders if images and o != "rows"]
        for variant, policy, order in candidates:
            search = {}
            for lr in lrs:  # model selection on validation, seed 0
                torch.manual_seed(0)
                r = train(build(variant, k, policy), data(0, order), epochs=epochs, lr=lr, batch_size=batch, seed=0,
                          progress=False)
                search[lr] = r.val_error
            lr = min(search, key=search.get)
            errors, epoch_seconds = [], []
            for seed in seeds:
                torch.manual_seed(seed)
                model = build(variant, k, policy)
                result = train(model, data(seed, order), epochs=epochs, lr=lr, batch_size=batch, seed=seed, progress=False)
                errors.append(result.test_error)
                epoch_seconds += result.epoch_seconds
            s = wsnet_ext.summary(model)
            row = {"experiment": name, "compression": k, "variant": variant, "policy": policy, "order": order, "lr": lr,
                   "val_error_by_lr": search, "test_errors": errors, "test_error_mean": statistics.mean(errors),
                   "test_error_std": statistics.stdev(errors) if len(errors) > 1 else 0.0,
                   "epoch_seconds_median": statistics.median(epoch_seconds), "params": s.total_params, "model_compression": s.compactness,
                   "sampling": sampling_of(model) if variant == "ws" else None}
            rows.append(row)
            log(f"{name} {k}x {variant:<6} {policy or '':<8} {order:<7} lr {lr:g}  test error {row['test_error_mean']:.2f} "
                f"+- {row['test_error_std']:.2f}  epoch {row['epoch_seconds_median']:.2f} s  params {row['params']}  "
                f"(S, C) {row['sampling']}", flush=True)
    return rows


def markdown(rows, meta) -> str:
    lines = [f"# Sampling policy vs HashNet at equal compactness ({meta['when']})", "",
             f"torch {meta['torch']}; learning rate per candidate chosen on validation (seed 0) from "
             f"{meta['lrs']}; then seeds {meta['seeds']}, test error % mean +- std. (S, C) per WSNet layer.", "",
             "| experiment | compression | variant | policy | input order | chosen lr | test error % | epoch s | params | "
             "(S, C) per layer |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sc = ", ".join(f"({s}, {c})" for _, s, c in r["sampling"]) if r["sampling"] else "-"
        lines.append(f"| {r['experiment']} | {r['compression']} | {r['variant']} | {r['policy'] or '-'} | {r['order']} | "
                     f"{r['lr']:g} | "
                     f"{r['test_error_mean']:.2f} +- {r['test_error_std']:.2f} | {r['epoch_seconds_median']:.2f} | "
                     f"{r['params']} | {sc} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="mnist1d,fashion_mlp")
    p.add_argument("--lrs", default="1e-3,3e-3,1e-2")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--orders", default=",".join(ORDERS),
                   help="image experiments: flatten orders tried for WSNet's default policy (rows, columns, patches)")
    p.add_argument("--quick", action="store_true", help="400 samples, 2 epochs, 1 seed")
    p.add_argument("--tag", default=None)
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args(argv)
    names = args.only.split(",")
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        p.error(f"--only expects names of {sorted(EXPERIMENTS)}, got {unknown}")
    lrs = [float(x) for x in args.lrs.split(",")]
    seeds = [0] if args.quick else list(range(args.seeds))
    began = time.time()
    orders = args.orders.split(",")
    if any(o not in ORDERS for o in orders):
        p.error(f"--orders expects names of {ORDERS}, got {orders}")
    rows = [r for n in names for r in run(n, lrs, seeds, args.quick, orders)]
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "lrs": lrs, "seeds": seeds, "orders": orders,
            "quick": args.quick, "seconds": round(time.time() - began)}
    write(args.out, "sampling_policy", args.tag or ("quick" if args.quick else "full"), meta, rows, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
