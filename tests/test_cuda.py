"""The CUDA kernels: the definition grid on the GPU, and CPU-vs-CUDA agreement.
These need a GPU and skip without one (the CUDA kernels still compile in CI)."""

import pytest
import torch

import wsnet_ext
from helpers import GRID, run_case

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
              pytest.mark.usefixtures("our_cuda_kernels")]


def test_cuda_kernels_were_built():
    assert wsnet_ext.cuda_built()


# every CUDA forward kernel (where the shape fits it; else the usual pick) and both dP kernels
KERNELS = [("auto", "stream"), ("lines", "stream"), ("stream", "gather"), ("tiles", "stream"),
           ("direct", "gather")]


@pytest.fixture(params=KERNELS, ids=lambda k: f"{k[0]}-{k[1]}")
def cuda_kernels(request):
    forward, adjoint = request.param
    with wsnet_ext.switches.override(cuda_forward=forward, cuda_adjoint="gather" if adjoint == "gather" else "auto"):
        yield request.param


def run_forced(**case):
    """run_case under a forced kernel: a kernel that does not fit the shape refuses with an error
    (it never falls back silently); such a case is reported as skipped, with the reason."""
    try:
        return run_case(**case)
    except RuntimeError as error:
        if "does not fit" not in str(error):
            raise
        pytest.skip(f"forced kernel does not fit: {error}")


@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", GRID)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_grid_matches_definition_cuda(sample_stride, repeat, stride, dilation, padding, dtype, cuda_kernels):
    run_forced(batch=3, mc=2, repeat=repeat, length=dilation * 4 + 31, out_channels=6, kernel_size=5,
             sample_stride=sample_stride, stride=stride, padding=padding, dilation=dilation,
             bias=sample_stride % 2 == 1, dtype=dtype, seed=sample_stride * 7 + repeat, device="cuda")


@pytest.mark.parametrize("config", [
    # (batch, mc, C, T, N, L, S, stride, padding, dilation): small, conv1-like, every forward
    # kernel (stream, P tiles, direct), long input, many filters
    (0, 2, 2, 40, 5, 3, 2, 1, 1, 1),
    (1, 1, 1, 1000, 16, 64, 8, 2, 32, 1),
    (2, 2, 1, 500, 4, 120, 1, 1, 0, 1),
    (2, 400, 1, 50, 3, 3, 1, 1, 1, 1),   # Mc rows of f over the stream kernel's shared memory: P tiles
    (2, 2, 1, 700, 2, 9, 3, 1, 0, 70),   # halo of 561 rows > the stream kernel's 512: P tiles
    (1, 1, 1, 1000, 2, 130, 1, 1, 0, 5),  # one P tile (646 x 130) > 48 KiB: direct kernel
    (2, 2, 2, 100_003, 16, 9, 4, 2, 5, 2),
    (2, 4, 2, 333, 256, 4, 1, 2, 2, 1),
], ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_shapes_cuda(config, dtype, cuda_kernels):
    batch, mc, repeat, length, n, k, s_samp, stride, padding, dilation = config
    run_forced(batch=batch, mc=mc, repeat=repeat, length=length, out_channels=n, kernel_size=k,
             sample_stride=s_samp, stride=stride, padding=padding, dilation=dilation, bias=True,
             dtype=dtype, seed=length, device="cuda")


def test_cpu_and_cuda_agree():
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(16, 32, 32, sample_stride=4, channel_repeat=2, stride=2, padding=16)
    x = torch.randn(4, 16, 6890)
    y_cpu = layer(x)
    grads_cpu = torch.autograd.grad(y_cpu.square().sum(), list(layer.parameters()))
    layer_cuda = layer.cuda()
    y_cuda = layer_cuda(x.cuda())
    grads_cuda = torch.autograd.grad(y_cuda.square().sum(), list(layer_cuda.parameters()))
    torch.testing.assert_close(y_cuda.cpu(), y_cpu, rtol=1e-4, atol=1e-4)
    for a, e in zip(grads_cuda, grads_cpu):
        torch.testing.assert_close(a.cpu(), e, rtol=1e-3, atol=1e-3 * e.abs().max().item())


def test_runs_on_current_stream_and_other_device_index():
    x = torch.randn(2, 4, 50, device="cuda")
    cond = torch.randn(2, 3 + 4 * 2, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        y = wsnet_ext.ws_conv1d(x, cond, kernel_size=3, sample_stride=2, channel_repeat=2)
    stream.synchronize()
    expected = wsnet_ext.ws_conv1d(x.cpu(), cond.cpu(), kernel_size=3, sample_stride=2, channel_repeat=2)
    torch.testing.assert_close(y.cpu(), expected, rtol=1e-5, atol=1e-5)


def test_channel_sampling_cuda_matches_cpu():
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv2d(8, 12, 3, sample_stride=2, channel_repeat=2, padding=1, dtype=torch.float64)
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64)
    y = layer(x)
    grad = torch.autograd.grad(y.square().sum(), layer.condensed)[0]
    layer_cuda = layer.cuda()
    y_cuda = layer_cuda(x.cuda())
    grad_cuda = torch.autograd.grad(y_cuda.square().sum(), layer_cuda.condensed)[0]
    torch.testing.assert_close(y_cuda.cpu(), y)
    torch.testing.assert_close(grad_cuda.cpu(), grad)
    lin = wsnet_ext.WSLinear(30, 7, sample_stride=3, channel_repeat=3).cuda()
    torch.testing.assert_close(lin.weight.cpu(), wsnet_ext.sample_channels(lin.condensed.detach().cpu(), 7, 3, 3))


def test_hashed_layers_cuda():
    # CUDA builds V by index_select on [w; -w], the CPU by our op: same values and gradients
    layer = wsnet_ext.HashedConv1d(4, 6, 3, compression=4, seed=2)
    x = torch.randn(2, 4, 20)
    y = layer(x)
    (grad,) = torch.autograd.grad(y.square().sum(), layer.real_weight)
    layer_cuda = layer.cuda()
    y_cuda = layer_cuda(x.cuda())
    (grad_cuda,) = torch.autograd.grad(y_cuda.square().sum(), layer_cuda.real_weight)
    torch.testing.assert_close(y_cuda.cpu(), y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_cuda.cpu(), grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("forward", ["lines", "stream", "tiles", "direct"])
def test_each_forced_kernel_runs_where_it_fits(forward):
    # a small shape every forward kernel fits: forcing it must run it (no skip here)
    with wsnet_ext.switches.override(cuda_forward=forward):
        run_case(batch=2, mc=2, repeat=2, length=300, out_channels=4, kernel_size=8, sample_stride=2,
                 stride=1, padding=3, dilation=1, bias=True, dtype=torch.float64, seed=5, device="cuda")


def test_a_forced_kernel_that_does_not_fit_refuses():
    # one P tile of this shape (646 rows x 130 columns) exceeds 48 KiB: the tiles kernel cannot run it
    with wsnet_ext.switches.override(cuda_forward="tiles"):
        with pytest.raises(RuntimeError, match="forces the 'tiles' kernel, which does not fit"):
            run_case(batch=1, mc=1, repeat=1, length=1000, out_channels=2, kernel_size=130, sample_stride=1,
                     stride=1, padding=0, dilation=5, bias=True, dtype=torch.float32, seed=1, device="cuda")
