"""Training-step time of the accuracy suite's networks in their plain, WSNet and HashedNets
variants (same process, same batch, interleaved medians): is each baseline fast enough to be fair
in time as well?

    python benchmarks/bench_model_steps.py [--batch 128] [--compressions 8,64] [--only mlp]

Writes benchmarks/results/hashed/model_steps_<tag>.{json,md} and prints the table."""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.timing import interleaved_medians, write_timing_results  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "hashed")


def networks(compression: float):
    """name -> (builder(variant), input shape)"""
    return {
        "mlp 784-1000-10": (lambda v: wsnet_ext.models.mlp(784, 10, v, None if v == "plain" else compression,
                                                                   allocate="uniform"), (1, 28, 28)),
        "cnn5 (28x28, width 32)": (lambda v: wsnet_ext.models.cnn5(10, v, None if v == "plain" else compression,
                                                                    in_channels=1, width=32, image_size=28, allocate="uniform"),
                                   (1, 28, 28)),
        "cnn1d (MNIST-1D)": (lambda v: wsnet_ext.models.cnn1d(10, v, None if v == "plain" else compression,
                                                                      allocate="uniform"), (1, 40)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--compressions", default="8", help="comma-separated, e.g. 8,64")
    parser.add_argument("--only", default="", help="networks whose name starts with this (mlp, cnn5, cnn1d)")
    parser.add_argument("--tag", default=datetime.date.today().isoformat())
    args = parser.parse_args()
    compressions = [float(c) for c in args.compressions.split(",")]
    rows = []
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}; one Adam "
             "training step (forward, backward, update), interleaved medians (benchmarks/timing.py)", "",
             "| network | compression | plain ms | WSNet ms | HashNet ms | WSNet / plain | HashNet / plain |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for compression in compressions:
        for name, (build, shape) in networks(compression).items():
            if not name.startswith(args.only):
                continue
            torch.manual_seed(0)
            x = torch.randn(args.batch, *shape)
            y = torch.randint(0, 10, (args.batch,))
            steps = {}
            for variant in ("plain", "ws", "hashed"):
                model = build(variant)
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

                def step(model=model, optimizer=optimizer):
                    optimizer.zero_grad(set_to_none=True)
                    torch.nn.functional.cross_entropy(model(x), y).backward()
                    optimizer.step()
                steps[variant] = step
            times = interleaved_medians(steps, torch.device("cpu"), min_rounds=9, budget_s=4.0)
            ms = {k: v["median_s"] * 1e3 for k, v in times.items()}
            rows.append({"network": name, "batch": args.batch, "compression": compression,
                         **{f"{k}_ms": v for k, v in ms.items()}})
            lines.append(f"| {name} | {compression:g} | {ms['plain']:.2f} | {ms['ws']:.2f} | {ms['hashed']:.2f} | "
                         f"{ms['ws'] / ms['plain']:.2f} | {ms['hashed'] / ms['plain']:.2f} |")
            print(lines[-1], flush=True)
    write_timing_results(RESULTS, f"model_steps_{args.tag}", rows, "Training-step time: plain vs WSNet vs HashedNets", lines)

if __name__ == "__main__":
    main()
