"""The training-size protocol of bench_ws_conv1d.py (`--protocol training`): SoundNet's conv1-conv7
with WSNet sampling at batch 64 on 5 s of 22.05 kHz audio, and `long`, timed as kernels rather than
launches, beside cuDNN on the materialized filter with TF32 allowed and disallowed, in float32,
bfloat16 and float16.

On CUDA each contender's calls are captured in a CUDA graph over rotating input buffers whose total
exceeds twice the L2 cache, and the graph is replayed (events around the replays), so host and
launch overhead and a warm L2 do not flatter anyone; `cudnn.benchmark` is on. Where a graph cannot
be captured the row says `timing: eager`. Per row: time, speed-up over cuDNN, achieved GB/s and the
share of the memory floor (input + output + parameter bytes at the copy bandwidth measured in the
same run), achieved TFLOP/s against the float32 / TF32 / BF16 peaks. On the CPU (a smoke test, or a
smaller batch) the same rows are timed by interleaved medians."""

from __future__ import annotations

import contextlib
import statistics

import torch

import wsnet_ext
from benchmarks.contenders import materialized_conv1d, ws_conv1d
from benchmarks.shapes import Shape
from benchmarks.timing import interleaved_medians

BATCH = 64
# SoundNet (wsnet_ext.models.soundnet) on 110,250 samples; input lengths as the model gives them
# (tests/test_training_protocol.py checks them against the model).
TRAINING_SHAPES = [
    Shape("conv1", BATCH, 1, 16, 64, 2, 32, 110250, 8, 1),
    Shape("conv2", BATCH, 16, 32, 32, 2, 16, 6891, 4, 2),
    Shape("conv3", BATCH, 32, 64, 16, 2, 8, 431, 2, 4),
    Shape("conv4", BATCH, 64, 128, 8, 2, 4, 216, 2, 4),
    Shape("conv5", BATCH, 128, 256, 4, 2, 2, 109, 1, 4),
    Shape("conv6", BATCH, 256, 512, 4, 2, 2, 14, 1, 4),
    Shape("conv7", BATCH, 512, 1024, 4, 2, 2, 8, 1, 4),
    Shape("long", BATCH, 64, 128, 32, 1, 16, 16000, 4, 4),
]
# Dense peaks of an H200 SXM (TFLOP/s; GPU.md): float32 on CUDA cores, TF32 and BF16/FP16 tensor cores.
PEAKS_TFLOPS = {"float32": 67.0, "tf32": 495.0, "bf16": 990.0}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def with_batch(shape: Shape, batch: int) -> Shape:
    return Shape(shape.name, batch, shape.in_channels, shape.out_channels, shape.kernel_size, shape.stride,
                 shape.padding, shape.length, shape.sample_stride, shape.channel_repeat)


def floor_bytes(shape: Shape, element_bytes: int) -> int:
    """The memory floor of one forward: read the input and the parameters, write the output."""
    params = shape.condensed_channels * shape.condensed_len + shape.out_channels
    return element_bytes * (shape.batch * shape.in_channels * shape.length
                            + shape.batch * shape.out_channels * shape.out_len + params)


def achieved(shape: Shape, seconds: float, element_bytes: int, copy_gbps: float | None, ours: bool) -> dict:
    """GB/s over the floor's bytes, the floor's share of the time, and TFLOP/s of the method's own
    multiply-adds (ours: the integral-image work; cuDNN: the plain conv's)."""
    moved = floor_bytes(shape, element_bytes)
    flops = 2 * (shape.ws_macs() if ours else shape.plain_macs())
    out = {"gbps": moved / seconds / 1e9, "tflops": flops / seconds / 1e12, "floor_bytes": moved}
    out["floor_share"] = (moved / (copy_gbps * 1e9)) / seconds if copy_gbps else None
    out.update({f"share_of_{k}_peak": out["tflops"] / v for k, v in PEAKS_TFLOPS.items()})
    return out


def copy_bandwidth_gbps(device: torch.device, mib: int = 1024) -> float | None:
    """Device copy bandwidth (read + write bytes per second), median of 10 timed copies."""
    if device.type != "cuda":
        return None
    src = torch.empty(mib << 20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    times = []
    for _ in range(12):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * src.numel() / statistics.median(times[2:]) / 1e9


def l2_bytes(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 64 << 20))


def input_sets(shape: Shape, device, dtype, l2: int, seed: int = 0) -> list:
    """Enough copies of (x, cond, bias, gy) that one round through them exceeds 2x the L2 cache."""
    gen = torch.Generator().manual_seed(seed)
    per_set = floor_bytes(shape, torch.finfo(dtype).bits // 8)
    count = max(1, min(16, -(-2 * l2 // max(per_set, 1))))
    sets = []
    for _ in range(count):
        x = torch.randn(shape.batch, shape.in_channels, shape.length, generator=gen)
        cond = (torch.rand(shape.condensed_channels, shape.condensed_len, generator=gen) * 2 - 1)
        cond /= (shape.in_channels * shape.kernel_size) ** 0.5
        bias = torch.randn(shape.out_channels, generator=gen) * 0.1
        gy = torch.randn(shape.batch, shape.out_channels, shape.out_len, generator=gen)
        sets.append([t.to(device, dtype) for t in (x, cond, bias, gy)])
    return sets


def graph_seconds(step, sets, device, replays: int = 7) -> tuple[float, str]:
    """Median seconds per call: the calls over all input sets captured in one CUDA graph and
    replayed; eager event timing where capture fails (the row then says so)."""
    def one_round():
        for s in sets:
            step(*s)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            one_round()  # warm-up: cuDNN's algorithm search, allocator, our kernels' attributes
    torch.cuda.current_stream(device).wait_stream(side)
    torch.cuda.synchronize(device)
    timing = "cuda graph"
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            one_round()
        run = graph.replay
    except Exception as error:  # noqa: BLE001  (reported in the row, timed eagerly instead)
        timing = f"eager ({type(error).__name__})"
        torch.cuda.synchronize(device)
        run = one_round
    samples = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1e3 / len(sets))
    return statistics.median(samples), timing


@contextlib.contextmanager
def tf32_allowed(allowed: bool):
    """TF32 for cuDNN convolutions and cuBLAS matmuls, through the current API where torch has it."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(cudnn, "conv") and hasattr(cudnn.conv, "fp32_precision"):
        before = (cudnn.conv.fp32_precision, matmul.fp32_precision)
        cudnn.conv.fp32_precision = matmul.fp32_precision = "tf32" if allowed else "ieee"
        try:
            yield
        finally:
            cudnn.conv.fp32_precision, matmul.fp32_precision = before
        return
    before = (cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.allow_tf32 = matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = before


# The largest relative error (max |error| / max |reference|, output and gradients, against float64
# on the materialized filter) each kind of row may show; a row above it is marked in the table.
TOLERANCE = {"float32": 2e-5, "tf32": 5e-3, "bfloat16": 2e-2, "float16": 4e-3}


def contenders(shape: Shape, dtype_name: str, strips_fit: bool, device: torch.device) -> dict:
    """name -> (switches for ours or None for cuDNN, TF32 allowed, ours?). "wsnet_ext auto" is what
    a user gets (on CUDA paths.py picks per direction); the others (CUDA only) force our kernels."""
    out = {"wsnet_ext auto": ({}, True, True)}
    if device.type == "cuda":
        out.update({"wsnet_ext auto (no TF32)": ({}, False, True),
                    "wsnet_ext kernels": ({"cuda_path": "kernels"}, True, True),
                    "wsnet_ext kernels, fused backward": ({"cuda_path": "kernels", "cuda_adjoint": "prefer_fused"},
                                                          True, True)})
    if strips_fit:
        out["wsnet_ext strips"] = ({"cuda_path": "kernels", "cuda_forward": "strips"}, True, True)
        if dtype_name == "float32":
            out["wsnet_ext strips (no TF32)"] = ({"cuda_path": "kernels", "cuda_forward": "strips"}, False, True)
    if dtype_name != "float32":
        out.pop("wsnet_ext auto (no TF32)", None)
    out["cuDNN (materialized, TF32)"] = (None, True, False)
    if dtype_name == "float32":
        out["cuDNN (materialized, no TF32)"] = (None, False, False)
    return out


def float64_reference(shape: Shape, x, cond, bias, gy) -> list:
    """Output and gradients of the definition in float64 (materialized filter)."""
    leaves = [t.detach().double().requires_grad_() for t in (x, cond, bias)]
    y = materialized_conv1d(*leaves, shape)
    return [y.detach()] + list(torch.autograd.grad(y, leaves, gy.double()))


def relative_errors(fn, shape: Shape, x, cond, bias, gy, reference) -> float:
    leaves = [t.detach().requires_grad_() for t in (x, cond, bias)]
    y = fn(*leaves, shape)
    got = [y.detach()] + list(torch.autograd.grad(y, leaves, gy))
    return max(((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-30)).item() for a, b in zip(got, reference))


def strips_fit(shape: Shape, device, dtype) -> bool:
    """Whether the opt-in strip kernel takes this shape (it raises 'does not fit' otherwise)."""
    if device.type != "cuda":
        return False
    x, cond, bias, _ = input_sets(with_batch(shape, 1), device, dtype, 0)[0]
    try:
        with wsnet_ext.switches.override(cuda_forward="strips"):
            ws_conv1d(x, cond, bias, shape)
        return True
    except RuntimeError as error:
        if "does not fit" in str(error):
            return False
        raise


def bench_row(shape: Shape, device, dtype_name: str, copy_gbps, quick: bool) -> dict:
    dtype = DTYPES[dtype_name]
    sets = input_sets(shape, device, dtype, l2_bytes(device))
    element = torch.finfo(dtype).bits // 8
    torch.backends.cudnn.benchmark = True
    row = {"shape": dict(vars(shape)), "dtype": dtype_name, "input_sets": len(sets), "forward": {},
           "forward_backward": {}, "errors": {}}
    row["shape"]["name"], row["shape"]["batch"] = shape.name, shape.batch
    reference = float64_reference(shape, *sets[0])
    for name, (switches, tf32, ours) in contenders(shape, dtype_name, strips_fit(shape, device, dtype), device).items():
        fn = ws_conv1d if ours else materialized_conv1d
        overrides = switches if ours else {}

        def forward(x, cond, bias, gy, fn=fn):
            with torch.no_grad():
                return fn(x, cond, bias, shape)

        def train(x, cond, bias, gy, fn=fn):
            leaves = [t.detach().requires_grad_() for t in (x, cond, bias)]
            fn(*leaves, shape).backward(gy)

        with tf32_allowed(tf32), wsnet_ext.switches.override(**overrides):
            row["errors"][name] = relative_errors(fn, shape, *sets[0], reference)
            precision = dtype_name if dtype_name != "float32" else ("tf32" if tf32 else "float32")
            row.setdefault("tolerance", {})[name] = TOLERANCE[precision]
            for kind, step in (("forward", forward), ("forward_backward", train)):
                if device.type == "cuda":
                    seconds, timing = graph_seconds(step, sets, device, replays=3 if quick else 7)
                    entry = {"median_s": seconds, "timing": timing}
                else:
                    timed = interleaved_medians({name: lambda: step(*sets[0])}, device, min_rounds=2 if quick else 5,
                                                max_rounds=3 if quick else 20, budget_s=0.2 if quick else 2.0)[name]
                    entry = dict(timed, timing="cpu interleaved medians")
                if kind == "forward":
                    entry.update(achieved(shape, entry["median_s"], element, copy_gbps, ours))
                row[kind][name] = entry
    for kind in ("forward", "forward_backward"):
        base = row[kind].get("cuDNN (materialized, TF32)")
        for entry in row[kind].values():
            entry["speedup_vs_cudnn_tf32"] = base["median_s"] / entry["median_s"] if base else None
    return row


def markdown(rows: list, meta: dict) -> str:
    lines = [f"# ws_conv1d, training-size protocol on {meta['machine']} ({meta['when']})", "",
             f"torch {meta['torch']}, copy bandwidth {meta['copy_gbps'] or 0:.0f} GB/s, L2 rotated over "
             "input sets; kernel time by CUDA-graph replay unless the row says otherwise.", "",
             "Error: the largest relative error of the output and the three gradients against float64 on "
             "the materialized filter (random bias); **over** marks a row above its precision's tolerance "
             "(float32 2e-5, TF32 5e-3, bfloat16 2e-2, float16 4e-3). TF32 rows that are float32-exact "
             "(our default kernels) are held to the TF32 tolerance only.", "",
             "| layer | dtype | contender | fwd µs | vs cuDNN TF32 | GB/s | floor share | TFLOP/s | fwd+bwd µs | vs cuDNN | error | timing |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for name, f in row["forward"].items():
            fb = row["forward_backward"].get(name, {})
            share = f"{f['floor_share']:.0%}" if f.get("floor_share") else "-"
            error = row.get("errors", {}).get(name)
            limit = row.get("tolerance", {}).get(name)
            flag = "" if error is None or limit is None or error <= limit else " **over**"
            error_text = f"{error:.1e}{flag}" if error is not None else "-"
            lines.append(
                f"| {row['shape']['name']} b{row['shape']['batch']} | {row['dtype']} | {name} | "
                f"{f['median_s'] * 1e6:.1f} | {f['speedup_vs_cudnn_tf32'] or 0:.2f}x | {f['gbps']:.0f} | {share} | "
                f"{f['tflops']:.2f} | {fb.get('median_s', 0) * 1e6:.1f} | {fb.get('speedup_vs_cudnn_tf32') or 0:.2f}x | "
                f"{error_text} | {f['timing']} |")
    return "\n".join(lines) + "\n"
