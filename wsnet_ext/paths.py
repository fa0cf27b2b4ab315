"""Which path computes ws_conv1d, per device, dtype, shape and direction (docs/design.md, "Paths").

On the CPU our kernels always run (they beat oneDNN on the materialized filter: the SoundNet step
is 1.44x plain eager). On CUDA each direction (forward; backward) takes either our kernels or the
materialized path — sample the filter, cuDNN's convolution, col2im back into the condensed filter
(wsnet_ext/_materialized.py) — whichever is faster for the shape:

1. the switches first: cuda_path=kernels / materialized forces both directions; a kernel forced by
   cuda_forward or cuda_adjoint puts that direction on our kernels;
2. with torch.backends.cudnn.benchmark on, a choice timed on this process's first eager call with
   the shape (as cuDNN does), cached per process; never timed while a CUDA graph is captured or
   torch.compile traces (those use the cache, else the rule);
3. else the rule, calibrated on the measured H200 table of wsnet_ext/_cuda_measured.py: a layer
   of that table takes, per direction, our kernels where they measured at least MARGIN faster;
   another layer takes our kernels only for float32 without TF32 and a FLOP ratio of at least
   RATIO_FOR_KERNELS (only `long`, ratio 30, measured that far ahead: 2.7x forward, 5x backward);
   half types and TF32 convolutions take cuDNN (its tensor cores; our kernels compute in float32);
   float64 keeps our kernels (not measured).

`explain(model, example_input)` reports the choice and its reason for every WSConv1d of a model."""

from __future__ import annotations

import dataclasses
import statistics

import torch

from . import _switches
from ._cuda_measured import GEOMETRY, direction_times
from ._geometry import condensed_length, conv_out_length, resolve_padding

MARGIN = 1.05            # our kernels must measure this much faster to be chosen
RATIO_FOR_KERNELS = 20.0  # the FLOP ratio above which float32-exact layers take our kernels

KERNELS, CUDNN = "kernels", "cudnn"


@dataclasses.dataclass(frozen=True)
class Conv1dCall:
    """Everything the choice depends on: device, dtype, TF32 intent and the shape."""
    device_type: str
    device_index: int | None
    dtype: torch.dtype
    tf32: bool
    batch: int
    in_channels: int
    out_channels: int
    length: int
    kernel_size: int
    sample_stride: int
    channel_repeat: int
    stride: int
    pads: tuple
    dilation: int

    @property
    def out_len(self) -> int:
        return conv_out_length(self.length, self.pads[0] + self.pads[1], self.dilation, self.kernel_size, self.stride)

    def flop_ratio(self) -> float:
        """Multiply-adds of a plain conv1d over those of the integral image (docs/design.md §2
        "Cost": B*T_out*N*M*L against B*Tp*Lc*Mc)."""
        plain = self.out_len * self.out_channels * self.in_channels * self.kernel_size
        lc = condensed_length(self.kernel_size, self.out_channels, self.sample_stride)
        ws = (self.length + self.pads[0] + self.pads[1]) * lc * (self.in_channels // self.channel_repeat)
        return plain / max(ws, 1)

    def geometry(self) -> tuple:
        pad = self.pads[0] if self.pads[0] == self.pads[1] else None
        return (self.in_channels, self.out_channels, self.kernel_size, self.sample_stride, self.channel_repeat,
                self.stride, pad, self.dilation)


@dataclasses.dataclass(frozen=True)
class Choice:
    forward: str   # "kernels" or "cudnn"
    backward: str
    reason: str


_timed: dict = {}  # Conv1dCall -> Choice, from timing (cudnn.benchmark)


def _rule(call: Conv1dCall) -> Choice:
    if call.dtype == torch.float64:
        return Choice(KERNELS, KERNELS, "rule: float64 (not measured; no tensor cores on either side, and the "
                      "integral image needs fewer multiply-adds)")
    if call.dtype != torch.float32:
        return Choice(CUDNN, CUDNN, f"rule: {str(call.dtype).replace('torch.', '')} takes cuDNN's tensor cores "
                      "(our kernels compute it in float32 on CUDA cores)")
    for name, geometry in GEOMETRY.items():
        if geometry == call.geometry():
            times = direction_times(name, call.tf32)
            paths = {d: KERNELS if cudnn >= MARGIN * ours else CUDNN for d, (ours, cudnn) in times.items()}
            detail = ", ".join(f"{d} ours {ours:.0f} vs cuDNN {cudnn:.0f} us" for d, (ours, cudnn) in times.items())
            tf32 = "TF32" if call.tf32 else "no TF32"
            return Choice(paths["forward"], paths["backward"], f"measured: SoundNet {name} on an H200 ({tf32}): {detail}")
    ratio = call.flop_ratio()
    if not call.tf32 and ratio >= RATIO_FOR_KERNELS:
        return Choice(KERNELS, KERNELS, f"rule: float32 without TF32 and FLOP ratio {ratio:.1f} >= "
                      f"{RATIO_FOR_KERNELS:g} (measured: 'long', ratio 30, 2.7x forward and 5x backward)")
    why = "TF32 convolutions" if call.tf32 else f"FLOP ratio {ratio:.1f} < {RATIO_FOR_KERNELS:g}"
    return Choice(CUDNN, CUDNN, f"rule: {why}: cuDNN on the materialized filter measured faster")


def choose(call: Conv1dCall) -> Choice:
    """The path of each direction for `call` (see the module's docstring for the order)."""
    if call.device_type != "cuda":
        return Choice(KERNELS, KERNELS, "CPU: our kernels")
    switches = _switches.current()
    if switches["cuda_path"] != "auto":
        path = KERNELS if switches["cuda_path"] == "kernels" else CUDNN
        return Choice(path, path, f"forced: cuda_path={switches['cuda_path']}")
    forced_forward = switches["cuda_forward"] != "auto"
    forced_backward = switches["cuda_adjoint"] != "auto"
    base = _timed.get(call) or _rule(call)
    if forced_forward or forced_backward:
        return Choice(KERNELS if forced_forward else base.forward, KERNELS if forced_backward else base.backward,
                      f"forced: cuda_forward={switches['cuda_forward']}, cuda_adjoint={switches['cuda_adjoint']}; "
                      f"otherwise {base.reason}")
    return base


def call_of(x: torch.Tensor, condensed: torch.Tensor, options) -> Conv1dCall:
    """The Conv1dCall of ws_conv1d(x (B, M, T), condensed, *options), options as the op takes them."""
    kernel_size, sample_stride, channel_repeat, stride, pads, dilation = options
    n = (condensed.shape[1] - kernel_size) // sample_stride + 1
    # PyTorch's TF32 intent as ws_conv1d read it just before (follow_torch_tf32, on each eager CUDA
    # call; under torch.compile what the last eager call read: torch.backends is not traceable)
    tf32 = x.device.type == "cuda" and _switches.current()["torch_allow_tf32"] == "1"
    return Conv1dCall(x.device.type, x.device.index, x.dtype, tf32, int(x.shape[0]), int(x.shape[1]), int(n),
                      int(x.shape[2]), kernel_size, sample_stride, channel_repeat, stride, tuple(pads), dilation)


def _time_ms(fn, repeats: int = 5) -> float:
    """Median milliseconds of fn() on the current CUDA stream (events), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def time_paths(call: Conv1dCall, x, condensed, bias, options, timer=_time_ms) -> Choice:
    """Times our kernels against the materialized path, each direction on its own, on these very
    tensors (detached; results discarded) and caches the faster per direction for `call`."""
    from ._materialized import conv_backward, conv_forward
    from ._ops import _backward, _forward

    with torch.no_grad():
        x, condensed = x.detach(), condensed.detach()
        bias = bias.detach() if bias is not None else None
        y = _forward(x, condensed, bias, *options)
        grad = torch.randn_like(y)
        mask = [True, True, bias is not None]
        times = {
            "forward": (timer(lambda: _forward(x, condensed, bias, *options)),
                        timer(lambda: conv_forward(x, condensed, bias, *options))),
            "backward": (timer(lambda: _backward(grad, x, condensed, *options, mask)),
                         timer(lambda: conv_backward(grad, x, condensed, *options, mask))),
        }
    paths = {d: KERNELS if cudnn >= MARGIN * ours else CUDNN for d, (ours, cudnn) in times.items()}
    detail = ", ".join(f"{d} ours {ours * 1e3:.0f} vs cuDNN {cudnn * 1e3:.0f} us" for d, (ours, cudnn) in times.items())
    choice = Choice(paths["forward"], paths["backward"], f"timed (cudnn.benchmark): {detail}")
    _timed[call] = choice
    return choice


def should_time(call: Conv1dCall) -> bool:
    """Time on first use: on CUDA, with cudnn.benchmark on, not yet timed, no switch forcing a path,
    not while torch.compile traces or a CUDA graph is being captured."""
    if call.device_type != "cuda" or not torch.backends.cudnn.benchmark or call in _timed:
        return False
    switches = _switches.current()
    if any(switches[name] != "auto" for name in ("cuda_path", "cuda_forward", "cuda_adjoint")):
        return False
    capturing = torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()
    return not torch.compiler.is_compiling() and not capturing


def forget_timings() -> None:
    """Drops the timed choices (e.g. after changing clocks or drivers)."""
    _timed.clear()


@dataclasses.dataclass
class PathReport:
    layer: str
    call: Conv1dCall
    choice: Choice

    def __str__(self) -> str:
        c = self.call
        return (f"{self.layer}: ({c.batch}, {c.in_channels}, {c.length}) -> {c.out_channels} filters, L {c.kernel_size}, "
                f"S {c.sample_stride}, C {c.channel_repeat}, stride {c.stride} on {c.device_type} {str(c.dtype)[6:]}: "
                f"forward {self.choice.forward}, backward {self.choice.backward} ({self.choice.reason})")


def explain(model: torch.nn.Module, example_input: torch.Tensor, *, device=None, dtype=None) -> list[PathReport]:
    """Which path each WSConv1d of `model` takes for `example_input`, and why, as if it ran on
    `device` in `dtype` (default: the example's). Runs the model once on the example (eval mode, no
    grad, training flags restored) to see each layer's input shape; nothing is timed. print() each
    report, or read .choice."""
    from .conv1d import WSConv1d

    device = torch.device(device) if device is not None else example_input.device
    dtype = dtype or example_input.dtype
    seen = []

    def record(name):
        def hook(module, args):
            x = args[0] if args[0].dim() == 3 else args[0].unsqueeze(0)
            pads = module.padding if isinstance(module.padding, str) else module.padding[0]
            pads = resolve_padding(pads, module.kernel_size[0], module.dilation[0], module.stride[0])
            tf32 = _switches.torch_conv_tf32() if device.type == "cuda" else False
            call = Conv1dCall(device.type, device.index, dtype, tf32, int(x.shape[0]), module.in_channels,
                              module.out_channels, int(x.shape[2]), module.kernel_size[0], module.sample_stride,
                              module.channel_repeat, module.stride[0], tuple(pads), module.dilation[0])
            seen.append(PathReport(name, call, choose(call)))
        return hook

    layers = [(name or type(m).__name__, m) for name, m in model.named_modules() if isinstance(m, WSConv1d)]
    handles = [m.register_forward_pre_hook(record(name)) for name, m in layers]
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()  # no side effects: batch norm's running statistics stay as they are
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    return seen
