"""Two builds of wsnet_ext compared on the same layers: their ops share one namespace, so they
cannot run in one process; instead processes of the two builds alternate (A, B, A, B, ...), each
timing ws_conv1d's forward, its forward+backward and the materialized conv1d (a reference for how
fast the machine is in that process) with interleaved medians. Prints per-layer medians over the
processes and the ratio ours / conv1d, which machine-speed drift between processes cancels out of.

    python benchmarks/bench_build_ab.py --a /path/to/checkout_a --b /path/to/checkout_b \\
        [--shapes conv3,conv5] [--processes 6] [--budget 2] [--out FILE.json]

A checkout is a folder whose wsnet_ext/ holds a built library (setup.py build_ext --inplace)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_process(shapes: list[str], budget: float) -> dict:
    import torch

    import wsnet_ext
    from benchmarks.contenders import materialized_conv1d
    from benchmarks.shapes import SHAPES, make_inputs
    from benchmarks.timing import interleaved_medians

    out = {"wsnet_ext": wsnet_ext.__file__}
    for s in SHAPES:
        if s.name not in shapes:
            continue
        x, c, b, gy = make_inputs(s, "cpu")
        leaves = [t.clone().requires_grad_() for t in (x, c, b)]
        kw = dict(kernel_size=s.kernel_size, sample_stride=s.sample_stride,
                  channel_repeat=s.channel_repeat, stride=s.stride, padding=s.padding)

        def forward():
            with torch.no_grad():
                wsnet_ext.ws_conv1d(x, c, b, **kw)

        def train():
            for leaf in leaves:
                leaf.grad = None
            wsnet_ext.ws_conv1d(*leaves, **kw).backward(gy)

        def conv1d():
            with torch.no_grad():
                materialized_conv1d(x, c, b, s)

        times = interleaved_medians({"forward": forward, "forward_backward": train, "conv1d": conv1d},
                                    torch.device("cpu"), min_rounds=9, budget_s=budget)
        out[s.name] = {name: t["median_s"] for name, t in times.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--shapes", default="conv3,conv5")
    parser.add_argument("--processes", type=int, default=6, help="per build")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per layer per process")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = args.shapes.split(",")
    if args.child:
        print(json.dumps(one_process(shapes, args.budget)))
        return
    runs = {"a": [], "b": []}
    for _ in range(args.processes):
        for key in ("a", "b"):
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([getattr(args, key), HERE]))
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--a", args.a,
                                   "--b", args.b, "--shapes", args.shapes, "--budget", str(args.budget)],
                                  env=env, check=True, capture_output=True, text=True, cwd="/")
            runs[key].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"A = {runs['a'][0]['wsnet_ext']}\nB = {runs['b'][0]['wsnet_ext']}")
    print("| layer | what | A median us | B median us | B / A | A / conv1d | B / conv1d |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for name in shapes:
        for what in ("forward", "forward_backward"):
            med = {k: statistics.median(r[name][what] for r in runs[k]) * 1e6 for k in runs}
            rel = {k: statistics.median(r[name][what] / r[name]["conv1d"] for r in runs[k]) for k in runs}
            summary[f"{name}/{what}"] = {"a_us": med["a"], "b_us": med["b"], "a_over_conv1d": rel["a"],
                                         "b_over_conv1d": rel["b"]}
            print(f"| {name} | {what} | {med['a']:.0f} | {med['b']:.0f} | {med['b'] / med['a']:.3f} | "
                  f"{rel['a']:.3f} | {rel['b']:.3f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"a": args.a, "b": args.b, "runs": runs, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
