"""Every CUDA path of ws_conv1d at SoundNet's training shapes (batch 64) against a float64
reference on the materialized filter, with a random nonzero bias and nothing after the layer to
absorb an error (the check that found the strip forward's bias bug on 2026-12-04); and several
models' training steps captured as CUDA graphs in one process, replayed interleaved (the crash of
that run). Skips without a GPU; scripts/gpu_check.sh runs it."""

import functools

import pytest
import torch
import torch.nn.functional as F

import wsnet_ext
from helpers import TRAINING

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# name: switches. Each forced kernel, each strip precision, the prefer_* switches, both backwards
# and the fused one, the materialized path and auto (what users get).
PATHS = {
    "auto": {},
    "materialized": {"cuda_path": "materialized"},
    "kernels": {"cuda_path": "kernels"},
    "lines": {"cuda_path": "kernels", "cuda_forward": "lines"},
    "stream": {"cuda_path": "kernels", "cuda_forward": "stream"},
    "tiles": {"cuda_path": "kernels", "cuda_forward": "tiles"},
    "direct": {"cuda_path": "kernels", "cuda_forward": "direct"},
    "strips 3xtf32": {"cuda_path": "kernels", "cuda_forward": "strips", "cuda_tf32": "0"},
    "strips tf32": {"cuda_path": "kernels", "cuda_forward": "strips", "cuda_tf32": "1"},
    "gather backward": {"cuda_path": "kernels", "cuda_adjoint": "gather"},
    "fused backward 3xtf32": {"cuda_path": "kernels", "cuda_adjoint": "fused", "cuda_tf32": "0"},
    "fused backward tf32": {"cuda_path": "kernels", "cuda_adjoint": "fused", "cuda_tf32": "1"},
    "prefer strips + fused": {"cuda_path": "kernels", "cuda_forward": "prefer_strips", "cuda_adjoint": "prefer_fused"},
}
TF32_TOLERANCE, FP32_TOLERANCE = 5e-3, 2e-5


@functools.lru_cache(maxsize=None)  # noqa: B019
def case(name):
    """Inputs (CPU, float64) and the float64 reference output and gradients, computed on the GPU
    with the filter sampled slice by slice (docs/design.md §2), autograd through the slicing."""
    m, n, k, s_, c, stride, pad, t = TRAINING[name]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, m, t, generator=g, dtype=torch.float64)
    cond = (torch.rand(m // c, k + (n - 1) * s_, generator=g, dtype=torch.float64) * 2 - 1) / (m * k) ** 0.5
    bias = torch.randn(n, generator=g, dtype=torch.float64) * 0.5 + 1.0
    leaves = [v.cuda().requires_grad_() for v in (x, cond, bias)]
    weight = torch.stack([leaves[1][:, i * s_: i * s_ + k] for i in range(n)]).repeat(1, c, 1)
    y = F.conv1d(leaves[0], weight, leaves[2], stride, pad)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad(y, leaves, gy.cuda())
    return (x, cond, bias, gy), (k, s_, c, stride, pad), y.detach().cpu(), [v.cpu() for v in grads]


def relative_error(got, want):
    return ((got.double().cpu() - want).abs().max() / want.abs().max()).item()


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("name", sorted(TRAINING))
def test_every_path_at_training_shapes_against_float64(name, path):
    (x, cond, bias, gy), (k, s_, c, stride, pad), y_ref, grads_ref = case(name)
    cudnn = torch.backends.cudnn
    saved = cudnn.conv.fp32_precision
    cudnn.conv.fp32_precision = "ieee"  # the materialized path float32-exact too
    try:
        with wsnet_ext.switches.override(**PATHS[path]):
            leaves = [v.float().cuda().requires_grad_() for v in (x, cond, bias)]
            try:
                y = wsnet_ext.ws_conv1d(*leaves, kernel_size=k, sample_stride=s_, channel_repeat=c, stride=stride,
                                        padding=pad)
                grads = torch.autograd.grad(y, leaves, gy.float().cuda())
            except RuntimeError as error:
                if "does not fit" in str(error):
                    pytest.skip(f"{path} does not fit {name} (the kernel's documented limits)")
                raise
    finally:
        cudnn.conv.fp32_precision = saved
    tolerance = TF32_TOLERANCE if "tf32" in path and "3x" not in path else FP32_TOLERANCE
    errors = [relative_error(y, y_ref)] + [relative_error(a, b) for a, b in zip(grads, grads_ref)]
    assert max(errors) < tolerance, (name, path, errors)


def test_several_models_captured_as_graphs_replay_interleaved():
    """Three SoundNet training steps (plain; WSNet auto; WSNet on our kernels with strips + fused
    preferred), each captured after a side-stream warm-up, replayed interleaved; each replay's loss
    equals an eager step's from the same state."""
    device = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 22050, generator=gen).to(device)
    y = torch.randint(0, 10, (8,), generator=gen).to(device)
    variants = {"plain": ("plain", {}), "auto": ("ws", {}),
                "kernels": ("ws", {"cuda_path": "kernels", "cuda_forward": "prefer_strips", "cuda_adjoint": "prefer_fused"})}
    graphs = {}
    for name, (variant, switches) in variants.items():
        torch.manual_seed(0)
        model = wsnet_ext.models.soundnet(10, variant, None if variant == "plain" else 10.0,
                                           allocate="uniform").to(device).eval()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with wsnet_ext.switches.override(**switches), torch.cuda.stream(side):
            for _ in range(2):
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        model.zero_grad(set_to_none=True)
        with wsnet_ext.switches.override(**switches), torch.cuda.graph(graph):
            loss = F.cross_entropy(model(x), y)
            loss.backward()
        with wsnet_ext.switches.override(**switches):
            eager = F.cross_entropy(model(x), y).item()
        graphs[name] = (graph, loss, eager, model)
    for _ in range(3):
        for name, (graph, loss, eager, model) in graphs.items():
            graph.replay()
    torch.cuda.synchronize()
    for name, (graph, loss, eager, model) in graphs.items():
        assert abs(loss.item() - eager) < 1e-4 * max(1.0, abs(eager)), name
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), name


@pytest.mark.parametrize("path", ["auto", "materialized"])
def test_deterministic_mode_gives_bitwise_equal_repeats(path):
    """torch.use_deterministic_algorithms(True): cuDNN's deterministic algorithms, our col2im
    gather-sum into the condensed filter; two runs give the same bits."""
    (x, cond, bias, gy), (k, s_, c, stride, pad), _, _ = case("conv3")
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(2):
            with wsnet_ext.switches.override(**PATHS[path]):
                leaves = [v.float().cuda().requires_grad_() for v in (x, cond, bias)]
                y = wsnet_ext.ws_conv1d(*leaves, kernel_size=k, sample_stride=s_, channel_repeat=c, stride=stride,
                                        padding=pad)
                runs.append([y] + list(torch.autograd.grad(y, leaves, gy.float().cuda())))
    finally:
        torch.use_deterministic_algorithms(previous)
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("adjoint", ["fused", "prefer_fused", "gather"])
def test_an_empty_batch_gives_empty_gradients_on_every_backward(adjoint):
    """A batch of 0 clips: zero-size grad_input, zero grad_condensed and grad_bias, never 'does
    not fit' (the forced fused backward once checked its plan first)."""
    cond = torch.randn(8, 4 + 15 * 2, device="cuda", requires_grad=True)
    bias = torch.randn(16, device="cuda", requires_grad=True)
    x = torch.randn(0, 16, 50, device="cuda", requires_grad=True)
    with wsnet_ext.switches.override(cuda_path="kernels", cuda_adjoint=adjoint):
        y = wsnet_ext.ws_conv1d(x, cond, bias, kernel_size=4, sample_stride=2, channel_repeat=2)
        gx, gc, gb = torch.autograd.grad(y.sum(), (x, cond, bias))
    assert y.shape == (0, 16, 47) and gx.shape == x.shape
    assert torch.equal(gc, torch.zeros_like(cond)) and torch.equal(gb, torch.zeros_like(bias))
