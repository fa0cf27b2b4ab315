"""One training step (forward, backward, SGD step) of wsnet_ext.models.soundnet, plain against
WSNet, eager, under torch.compile and (CUDA) replayed as one CUDA graph, with, on CUDA, WSNet as a
user gets it (auto: our kernels or cuDNN per layer and direction, wsnet_ext/paths.py) beside each
forced path (our kernels; the materialized filter on cuDNN; the opt-in strip forward and fused
backward), in one process on the same batch: median step time (interleaved), the share of the
step spent in our ops (profiler), the three costliest ops, peak memory, and the WSNet model's
speed-up over the plain one.

    python benchmarks/bench_soundnet_step.py                      # CPU: batch 4; CUDA where present: batch 64
    python benchmarks/bench_soundnet_step.py --device cpu --batch 2 --seconds 1 --modes eager --quick

Writes benchmarks/results/soundnet_step/soundnet_step_<device>_<tag>.{json,md}."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wsnet_ext  # noqa: E402
from benchmarks.outputs import devices_for, results_tag, write_json_and_markdown  # noqa: E402
from benchmarks.peak_memory import peak_extra_bytes  # noqa: E402
from benchmarks.timing import interleaved_medians  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "soundnet_step")
RATE = 22050
OUR_NAMES = "wsnet"  # our ops (wsnet_ext::...) and our CUDA kernels (wsnet::...), as the profiler lists them
COMPILED_GRAPH = re.compile(r"## Call CompiledFxGraph \w+ ##")


def variants(device: torch.device) -> dict:
    """name -> (model variant, switches while it runs)"""
    out = {"plain": ("plain", {}), "wsnet": ("ws", {})}  # on CUDA "wsnet" is auto: what a user gets
    if device.type == "cuda":
        out["wsnet (our kernels)"] = ("ws", {"cuda_path": "kernels"})
        out["wsnet (materialized, cuDNN)"] = ("ws", {"cuda_path": "materialized"})
        out["wsnet (strips + fused, opt-in)"] = ("ws", {"cuda_path": "kernels", "cuda_forward": "prefer_strips",
                                                        "cuda_adjoint": "prefer_fused"})
    return out


def make_step(model, x, y, mode: str, switches: dict):
    """One training step; mode eager, compile, or graph (CUDA: the whole step captured once in a
    CUDA graph after a warm-up on a side stream, then replayed)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model) if mode == "compile" else model

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()
        return loss
    if mode != "graph":
        return step
    side = torch.cuda.Stream(x.device)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with wsnet_ext.switches.override(**switches), torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream(x.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    # each graph on a capture stream of its own: PyTorch keys cuBLAS workspaces by capture stream,
    # and a graph destroyed on a shared stream (a failed capture, say) frees the workspace that
    # the graphs captured before it on that stream still use (pytorch/pytorch#193402: an illegal
    # memory access at their next replay)
    capture = torch.cuda.Stream(x.device)
    with wsnet_ext.switches.override(**switches), torch.cuda.graph(graph, stream=capture):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return lambda: (graph.replay(), capture)[0]


def profile_shares(step, device: torch.device, switches: dict) -> dict:
    """Share of the step's self time (device time on CUDA) in our ops, and the 3 costliest ops."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with wsnet_ext.switches.override(**switches), torch.profiler.profile(activities=activities) as prof:
        for _ in range(2):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [(e.key, getattr(e, attr, 0) or 0) for e in prof.key_averages()]
    total = sum(t for _, t in events) or 1
    ours = sum(t for k, t in events if OUR_NAMES in k)
    top = sorted(events, key=lambda e: -e[1])[:3]
    return {"our_share": ours / total, "top_ops": [(k, t / total) for k, t in top]}


def run(device: torch.device, batch: int, seconds: float, compression: float, modes: list, quick: bool) -> dict:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, int(seconds * RATE), generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    steps, switches_of, rows = {}, {}, []
    failed = {}
    for mode in modes:
        for name, (variant, switches) in variants(device).items():
            torch.manual_seed(0)
            model = wsnet_ext.models.soundnet(10, variant, None if variant == "plain" else compression,
                                              allocate="uniform").to(device)
            key = f"{name} / {mode}"
            try:
                steps[key] = make_step(model, x, y, mode, switches)
            except RuntimeError as error:  # a capture that fails is reported (now and in the table), not fatal
                failed[key] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
                print(f"{key}: failed: {failed[key]}", flush=True)
                continue
            switches_of[key] = switches
    for key, step in steps.items():  # warm-up (and compile) each, under its own switches
        with wsnet_ext.switches.override(**switches_of[key]):
            step()
            step()

    def under_switches(key):
        def call():
            with wsnet_ext.switches.override(**switches_of[key]):
                return steps[key]()
        return call
    rounds = dict(min_rounds=2, max_rounds=3, budget_s=1.0) if quick else dict(min_rounds=5, budget_s=20.0)
    timed = interleaved_medians({k: under_switches(k) for k in steps}, device, **rounds)
    for key in steps:
        row = {"step": key, **timed[key], **profile_shares(steps[key], device, switches_of[key])}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            under_switches(key)()
            torch.cuda.synchronize(device)
            row["peak_bytes"] = torch.cuda.max_memory_allocated(device)
        else:
            row["peak_bytes"] = peak_extra_bytes(under_switches(key))
        plain = timed.get(f"plain / {key.split(' / ')[1]}")
        row["speedup_vs_plain"] = plain["median_s"] / timed[key]["median_s"] if plain else None
        rows.append(row)
    return {"batch": batch, "seconds": seconds, "compression": compression, "rows": rows, "failed": failed}


def markdown(result: dict, meta: dict) -> str:
    lines = [f"# SoundNet training step on {meta['machine']} ({meta['when']})", "",
             f"batch {result['batch']}, {result['seconds']} s of {RATE} Hz audio, WSNet at {result['compression']}x, "
             f"torch {meta['torch']}, {meta['threads']} threads; interleaved medians.", "",
             "| step | median ms | vs plain | our ops' share | costliest ops | peak MB |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        top = ", ".join(f"{COMPILED_GRAPH.sub('compiled graph', k)} {s:.0%}" for k, s in r["top_ops"])
        peak = f"{r['peak_bytes'] / 2**20:.0f}" if r.get("peak_bytes") is not None else "-"
        speedup = f"{r['speedup_vs_plain']:.2f}x" if r["speedup_vs_plain"] else "-"
        lines.append(f"| {r['step']} | {r['median_s'] * 1e3:.1f} | {speedup} | "
                     f"{r['our_share']:.0%} | {top} | {peak} |")
    lines += [f"| {key} | failed: {why} | | | | |" for key, why in result.get("failed", {}).items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--batch", type=int, default=None, help="default: 4 on CPU, 64 on CUDA")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--compression", type=float, default=10.0)
    parser.add_argument("--modes", default=None, help="eager, compile, graph (CUDA only); default: eager,compile "
                        "on CPU, and graph too on CUDA")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tag", default=None)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    modes = args.modes.split(",") if args.modes else None
    if modes is not None and (not modes or any(m not in ("eager", "compile", "graph") for m in modes)):
        raise SystemExit(f"--modes expects some of eager, compile, graph, got {args.modes!r}")
    devices = devices_for(args.device)
    tag = results_tag(args.tag, args.quick)
    os.makedirs(args.out, exist_ok=True)
    for device in devices:
        batch = args.batch or (64 if device.type == "cuda" else 4)
        meta = {"when": datetime.datetime.now().isoformat(timespec="minutes"), "torch": torch.__version__,
                "threads": torch.get_num_threads(), "build": wsnet_ext.build_info(),
                "machine": torch.cuda.get_device_name(device) if device.type == "cuda"
                else platform.processor() or platform.machine()}
        device_modes = modes or (["eager", "compile", "graph"] if device.type == "cuda" else ["eager", "compile"])
        if device.type == "cpu" and "graph" in device_modes:
            raise SystemExit("--modes graph needs CUDA")
        result = run(device, batch, args.seconds, args.compression, device_modes, args.quick)
        stem = os.path.join(args.out, f"soundnet_step_{device.type}_{tag}")
        write_json_and_markdown(stem, {"meta": meta, **result}, markdown(result, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
