"""What the tests share: the definition of WSConv1d every kernel is compared against, the option
grid, test data, and the test-only host models of the CUDA strip kernels (built here on demand)."""

import functools
import glob
import itertools
import os
import random
import zlib

import torch
import torch.nn.functional as F

import wsnet_ext
from wsnet_ext._geometry import resolve_padding

HERE = os.path.dirname(os.path.abspath(__file__))
# the sources of the test-only host models: the checkout's csrc/ beside tests/ (CI copies both
# next to an installed wheel), or WSNET_CSRC
CSRC = os.environ.get("WSNET_CSRC", os.path.join(os.path.dirname(HERE), "csrc"))

# SoundNet's layers as the training protocol runs them (batch 64; benchmarks/training_protocol.py):
# name: (M, N, L, S, C, stride, pad, T)
TRAINING = {
    "conv1": (1, 16, 64, 8, 1, 2, 32, 110250), "conv2": (16, 32, 32, 4, 2, 2, 16, 6891),
    "conv3": (32, 64, 16, 2, 4, 2, 8, 431), "conv4": (64, 128, 8, 2, 4, 2, 4, 216),
    "conv5": (128, 256, 4, 1, 4, 2, 2, 109), "conv6": (256, 512, 4, 1, 4, 2, 2, 14),
    "conv7": (512, 1024, 4, 1, 4, 2, 2, 8), "long": (64, 128, 32, 4, 4, 1, 16, 16000),
}


# ---- the definition (docs/design.md §2) ----

def reference_weight(condensed, out_channels, kernel_size, sample_stride, channel_repeat):
    """W[n, m, l] = condensed[m % Mc, n*S + l], built slice by slice (docs/design.md §2)."""
    mc = condensed.shape[0]
    in_channels = mc * channel_repeat
    return torch.stack([
        torch.stack([condensed[m % mc, n * sample_stride: n * sample_stride + kernel_size]
                     for m in range(in_channels)])
        for n in range(out_channels)])


def reference_conv1d(x, condensed, bias, *, kernel_size, sample_stride, channel_repeat=1, stride=1,
                     padding=0, dilation=1):
    """The definition: conv1d on the sampled filter, autograd through the sampling."""
    n = (condensed.shape[1] - kernel_size) // sample_stride + 1
    w = reference_weight(condensed, n, kernel_size, sample_stride, channel_repeat)
    return F.conv1d(x, w, bias, stride=stride, padding=padding, dilation=dilation)


def tolerance(dtype):
    """(rtol, atol) against a float64 reference, relative to the output's scale."""
    return {torch.float64: (1e-10, 1e-10), torch.float32: (2e-5, 2e-5),
            torch.bfloat16: (2e-2, 2e-2), torch.float16: (4e-3, 4e-3)}[dtype]


def assert_close_scaled(actual, expected, dtype):
    """Compare with tolerances scaled by the largest magnitude of `expected`."""
    rtol, atol = tolerance(dtype)
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual.to(expected.dtype), expected, rtol=rtol, atol=atol * scale)


def assert_same_nonfinite(actual, expected):
    """NaN, +Inf and -Inf in the same places; the finite values close."""
    assert torch.equal(torch.isnan(actual), torch.isnan(expected))
    assert torch.equal(torch.isposinf(actual), torch.isposinf(expected))
    assert torch.equal(torch.isneginf(actual), torch.isneginf(expected))
    finite = torch.isfinite(expected)
    torch.testing.assert_close(actual[finite], expected[finite])


# ---- the grid of every option, and random cases on it ----

SAMPLE_STRIDES = (1, 2, 3, 7)
REPEATS = (1, 2, 4)
STRIDES = (1, 2, 3)
DILATIONS = (1, 2, 3)
PADDINGS = (0, 2, "same", "valid")
GRID = [case for case in itertools.product(SAMPLE_STRIDES, REPEATS, STRIDES, DILATIONS, PADDINGS)
        if not (case[4] == "same" and case[2] != 1)]
GRID_IDS = ["S{}-C{}-s{}-d{}-p{}".format(*case) for case in GRID]


def run_case(*, batch, mc, repeat, length, out_channels, kernel_size, sample_stride, stride, padding,
             dilation, bias, dtype, seed, grad=True, device="cpu"):
    """ws_conv1d and its gradients on random data against the definition in float64."""
    gen = torch.Generator().manual_seed(seed)
    lc = kernel_size + (out_channels - 1) * sample_stride
    x = torch.randn(batch, mc * repeat, length, generator=gen, dtype=torch.float64)
    cond = torch.randn(mc, lc, generator=gen, dtype=torch.float64)
    b = torch.randn(out_channels, generator=gen, dtype=torch.float64) if bias else None
    options = dict(kernel_size=kernel_size, sample_stride=sample_stride, channel_repeat=repeat,
                   stride=stride, padding=padding, dilation=dilation)
    leaves_ref = [t.clone().requires_grad_(grad) for t in (x, cond)] + ([b.clone().requires_grad_(grad)] if bias else [])
    leaves = [t.detach().to(device, dtype).requires_grad_(grad) for t in leaves_ref]
    expected = reference_conv1d(*leaves_ref[:2], leaves_ref[2] if bias else None, **options)
    actual = wsnet_ext.ws_conv1d(*leaves[:2], leaves[2] if bias else None, **options)
    assert actual.shape == expected.shape and actual.dtype == dtype and actual.device.type == device
    assert_close_scaled(actual.cpu(), expected, dtype)
    if grad:
        gy = torch.randn(expected.shape, generator=gen, dtype=torch.float64)
        expected_grads = torch.autograd.grad(expected, leaves_ref, gy)
        actual_grads = torch.autograd.grad(actual, leaves, gy.to(device, dtype))
        for a, e in zip(actual_grads, expected_grads):
            assert_close_scaled(a.cpu(), e, dtype)
    return actual


def reference_grads(x, condensed, grad_output, options):
    """(grad_input, grad_condensed) by autograd through the definition (no bias)."""
    leaves = [t.clone().requires_grad_() for t in (x, condensed)]
    y = reference_conv1d(*leaves, None, **options)
    return torch.autograd.grad(y, leaves, grad_output)


def make_case(seed, *, batch, mc, repeat, length, out_channels, kernel_size, sample_stride, bias,
              dtype=torch.float32):
    """((x, condensed, bias) in float64, the same cast to dtype)."""
    gen = torch.Generator().manual_seed(seed)
    lc = kernel_size + (out_channels - 1) * sample_stride
    x = torch.randn(batch, mc * repeat, length, generator=gen, dtype=torch.float64)
    cond = torch.randn(mc, lc, generator=gen, dtype=torch.float64)
    b = torch.randn(out_channels, generator=gen, dtype=torch.float64) if bias else None
    cast = [t.to(dtype) if t is not None else None for t in (x, cond, b)]
    return (x, cond, b), cast


# ---- small fixed cases: extreme values, gradcheck / opcheck ----

EXTREME_OPTIONS = dict(kernel_size=5, sample_stride=2, channel_repeat=2, stride=2, padding=2, dilation=1)


def extreme_data(seed=0, length=3000):
    """(x, condensed, bias) in float64 for EXTREME_OPTIONS."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, length, generator=gen, dtype=torch.float64)
    cond = torch.randn(2, 5 + 7 * 2, generator=gen, dtype=torch.float64)
    bias = torch.randn(8, generator=gen, dtype=torch.float64)
    return x, cond, bias


FORWARD = torch.ops.wsnet_ext.ws_conv1d_forward.default
BACKWARD = torch.ops.wsnet_ext.ws_conv1d_backward.default
OP_CONFIGS = [
    # batch, M, C, T, N, L, S, stride, padding, dilation, bias
    (2, 4, 2, 17, 3, 3, 2, 1, [1, 1], 1, True),
    (1, 3, 1, 23, 4, 4, 1, 2, [0, 0], 2, False),
    (3, 2, 2, 11, 2, 2, 3, 3, [2, 1], 1, True),
    (0, 2, 1, 9, 5, 3, 1, 1, [1, 1], 1, True),
]


def op_args(config, requires_grad=False, device="cpu"):
    """The forward op's arguments for one of OP_CONFIGS, random float64 tensors."""
    batch, m, c, t, n, k, s_samp, stride, padding, dilation, bias = config
    gen = torch.Generator().manual_seed(batch * 100 + t)
    lc = k + (n - 1) * s_samp

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device).requires_grad_(requires_grad)
    return (rand(batch, m, t), rand(m // c, lc), rand(n) if bias else None, k, s_samp, c, stride, padding, dilation)


# ---- TF32 ----

def tf32(t):
    """Round float32 to TF32 (10 mantissa bits, to nearest, ties away from zero): what
    cvt.rna.tf32.f32 does (checked against hand-derived values on the CPU and against the card's
    instruction in tests/test_cuda_strips.py)."""
    bits = t.to(torch.float32).view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


# ---- the host models of the CUDA strip kernels (csrc/strips/host_model/, test-only) ----

FMA, TF32, TF32X3 = 0, 1, 2  # the strip kernels' precisions (csrc/strips/ws_conv1d_strips.h)
STRIP_STATS = ["To", "R", "strips", "lines", "ring", "shared_bytes", "unwritten", "output_errors",
               "fragment_errors", "nonfinite_strips", "filters", "groups", "window"]
ADJOINT_STATS = ["Ru", "strips", "lines", "ring", "shared_bytes", "grid", "unwritten", "nonfinite_blocks",
                 "fragment_errors"]


@functools.cache
def host_models():
    """The host models' ops (torch.ops.wsnet_host_models), built from csrc/strips/host_model/ with
    torch.utils.cpp_extension on first use (ninja keeps the build between runs) and loaded. They
    are not part of the package: a test run from an installed wheel builds them from the sources
    at CSRC. WSNET_HOST_MODEL_FLAGS adds compiler and linker flags (scripts/sanitize.sh: ASan)."""
    from torch.utils import cpp_extension
    sources = sorted(glob.glob(os.path.join(CSRC, "strips", "host_model", "*.cpp")))
    assert sources, f"no host model sources under {CSRC} (set WSNET_CSRC to the checkout's csrc/)"
    flags = os.environ.get("WSNET_HOST_MODEL_FLAGS", "").split()
    name = "wsnet_host_models" + (f"_{zlib.crc32(' '.join(flags).encode()):08x}" if flags else "")  # a build per flag set
    cpp_extension.load(name=name, sources=sources, extra_include_paths=[CSRC],
                       extra_cflags=["-O2", "-DTORCH_TARGET_VERSION=0x020a000000000000"] + flags,
                       extra_ldflags=flags, is_python_module=False, verbose=False)
    return torch.ops.wsnet_host_models


def strip_shared_limit(device=0):
    """The strip kernels' shared memory per block on a CUDA device, by the kernels' own formula
    (strip_shared_limit_for, csrc/strips/ws_conv1d_strips.h)."""
    props = torch.cuda.get_device_properties(device)
    return host_models().strip_shared_limit(props.shared_memory_per_block_optin,
                                            props.shared_memory_per_multiprocessor)


def run_strip_model(x, cond, bias, *, kernel_size, sample_stride, channel_repeat, stride, padding, dilation,
                    precision, shared_limit=96 * 1024, multiprocessors=132):
    """(output, stats) of the strip forward's host model."""
    pads = list(resolve_padding(padding, kernel_size, dilation, stride))
    y, stats = host_models().ws_conv1d_strip_model(x, cond, bias, kernel_size, sample_stride, channel_repeat,
                                                   stride, pads, dilation, precision, shared_limit, multiprocessors)
    return y, dict(zip(STRIP_STATS, stats.tolist()))


def run_adjoint_model(gy, x, cond, *, kernel_size, sample_stride, channel_repeat, stride, padding, dilation,
                      mask=(True, True, True), precision=None, shared_limit=96 * 1024, max_grid=264):
    """(grad_input, grad_condensed, stats) of the fused backward's host model; precision None:
    tensor cores (3xTF32) where Mc >= 8, else CUDA-core FMAs (the kernel's pick)."""
    pads = list(resolve_padding(padding, kernel_size, dilation, stride))
    if precision is None:
        precision = TF32X3 if cond.shape[0] >= 8 else FMA
    gx, gc, stats = host_models().ws_conv1d_strip_adjoint_model(
        gy, x, cond, kernel_size, sample_stride, channel_repeat, stride, pads, dilation, list(mask), precision,
        shared_limit, max_grid)
    return gx, gc, dict(zip(ADJOINT_STATS, stats.tolist()))


def strip_grid_case(case, precision):
    """A random strip-kernel case for one GRID entry: (seed, make_case spec, options, host model limits)."""
    sample_stride, repeat, stride, dilation, padding = case
    rng = random.Random(zlib.crc32(repr((case, precision)).encode()))
    kernel_size = rng.choice([1, 2, 3, 5, 8])
    needed = dilation * (kernel_size - 1) + 1
    mc = rng.choice([1, 3, 5]) if precision == FMA else rng.choice([8, 11, 16])
    spec = dict(batch=rng.choice([1, 3]), mc=mc, repeat=repeat, length=needed + rng.choice([0, 7, 40, 300]),
                out_channels=rng.choice([1, 5, 6, 13]), kernel_size=kernel_size, sample_stride=sample_stride,
                bias=rng.random() < 0.5)
    options = dict(kernel_size=kernel_size, sample_stride=sample_stride, channel_repeat=repeat, stride=stride,
                   padding=padding, dilation=dilation)
    # small shared memory and few multiprocessors in turn: many short strips, or few long ones
    limits = dict(shared_limit=rng.choice([24 * 1024, 96 * 1024]), multiprocessors=rng.choice([1, 132]))
    return rng.randrange(1 << 30), spec, options, limits
