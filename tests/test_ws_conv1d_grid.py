"""ws_conv1d forward and all gradients against the definition (conv1d on the sampled filter),
on random data over a grid of every option, odd/prime sizes and several tiles per input."""

import random
import zlib

import pytest
import torch

import wsnet_ext
from helpers import GRID, GRID_IDS, reference_conv1d, run_case

@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", GRID,
                         ids=GRID_IDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_grid_matches_definition(sample_stride, repeat, stride, dilation, padding, dtype):
    rng = random.Random(zlib.crc32(repr((sample_stride, repeat, stride, dilation, padding)).encode()))
    kernel_size = rng.choice([1, 2, 3, 5])
    needed = dilation * (kernel_size - 1) + 1
    run_case(batch=rng.choice([1, 5]), mc=rng.choice([1, 3]), repeat=repeat,
             length=needed + rng.choice([0, 6, 12, 36]), out_channels=rng.choice([1, 5, 6]),
             kernel_size=kernel_size, sample_stride=sample_stride, stride=stride, padding=padding,
             dilation=dilation, bias=rng.random() < 0.5, dtype=dtype, seed=rng.randrange(1 << 30))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [0, 1, 5])
def test_batch_sizes_and_bias(batch, bias):
    run_case(batch=batch, mc=2, repeat=2, length=29, out_channels=7, kernel_size=4, sample_stride=3,
             stride=2, padding=1, dilation=2, bias=bias, dtype=torch.float64, seed=batch)


@pytest.mark.parametrize("dilation", [7, 8, 15, 16, 17])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_dilations_around_the_vector_width(dilation, dtype):
    # the AVX-512 forward sweeps row blocks for dilations below a vector's lanes (8 doubles, 16
    # floats) and columns from there on; both sides of each switch, with more than one row block
    run_case(batch=2, mc=3, repeat=2, length=dilation * 4 + 150, out_channels=9, kernel_size=5,
             sample_stride=3, stride=1, padding=dilation, dilation=dilation, bias=True, dtype=dtype, seed=dilation)


def test_one_input_channel():
    run_case(batch=3, mc=1, repeat=1, length=53, out_channels=16, kernel_size=8, sample_stride=2,
             stride=2, padding=4, dilation=1, bias=True, dtype=torch.float64, seed=7)


def test_output_length_one():
    # input exactly as long as the dilated kernel: one output per filter
    run_case(batch=2, mc=2, repeat=1, length=7, out_channels=3, kernel_size=4, sample_stride=1,
             stride=3, padding=0, dilation=2, bias=True, dtype=torch.float64, seed=3)


@pytest.mark.parametrize("config", [
    # (length, N, L, S, C, stride, padding, dilation): several CPU tiles per input, odd sizes
    (3001, 64, 7, 7, 2, 1, 3, 1),
    (2999, 48, 13, 5, 1, 2, 6, 3),
    (4001, 100, 3, 4, 4, 3, "valid", 2),
    (1009, 128, 33, 3, 1, 1, "same", 2),
    (700, 9, 3, 2, 2, 1, 0, 16),   # dilation of one whole vector of lanes
    (700, 9, 4, 1, 1, 2, 3, 19),   # dilation past one vector of lanes
])
def test_multiple_tiles(config):
    length, n, k, s_samp, repeat, stride, padding, dilation = config
    run_case(batch=2, mc=2, repeat=repeat, length=length, out_channels=n, kernel_size=k,
             sample_stride=s_samp, stride=stride, padding=padding, dilation=dilation, bias=True,
             dtype=torch.float64, seed=length)


@pytest.mark.parametrize("mc", [8, 13, 16, 29])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_many_condensed_channels(mc, dtype):
    # the backward's register blocks of 8, 4 and 1 channels, alone and mixed
    run_case(batch=2, mc=mc, repeat=2, length=301, out_channels=11, kernel_size=6, sample_stride=3,
             stride=1, padding=2, dilation=1, bias=True, dtype=dtype, seed=mc)


def test_long_input():
    # T >= 100000, so every tiling boundary is crossed many times
    run_case(batch=2, mc=2, repeat=2, length=100_003, out_channels=16, kernel_size=9,
             sample_stride=4, stride=2, padding=5, dilation=2, bias=True, dtype=torch.float32, seed=11)


def test_non_contiguous_inputs():
    gen = torch.Generator().manual_seed(5)
    x_big = torch.randn(4, 8, 61, generator=gen, dtype=torch.float64)
    cond_big = torch.randn(2 * 4, 2 * 15, generator=gen, dtype=torch.float64)
    x = x_big[::2, :, 1::2].transpose(0, 0)  # strided batch and time
    cond = cond_big[::2, ::2]  # (4, 15): L=3, S=2, N=7
    bias = torch.randn(14, generator=gen, dtype=torch.float64)[::2]
    assert not x.is_contiguous() and not cond.is_contiguous() and not bias.is_contiguous()
    options = dict(kernel_size=3, sample_stride=2, channel_repeat=2, stride=2, padding=1, dilation=2)
    leaves = [t.clone().requires_grad_() for t in (x, cond, bias)]
    leaves_ref = [t.clone().requires_grad_() for t in (x, cond, bias)]
    actual = wsnet_ext.ws_conv1d(*leaves, **options)
    expected = reference_conv1d(*leaves_ref, **options)
    torch.testing.assert_close(actual, expected)
    gy = torch.randn(expected.shape, generator=gen, dtype=torch.float64).transpose(1, 2).contiguous().transpose(1, 2)
    assert not gy.is_contiguous()
    for a, e in zip(torch.autograd.grad(actual, leaves, gy), torch.autograd.grad(expected, leaves_ref, gy)):
        torch.testing.assert_close(a, e)


def test_unbatched_input():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 40, generator=gen, dtype=torch.float64)
    cond = torch.randn(2, 3 + 4 * 2, generator=gen, dtype=torch.float64)
    options = dict(kernel_size=3, sample_stride=2, channel_repeat=2, padding="same")
    actual = wsnet_ext.ws_conv1d(x, cond, **options)
    expected = reference_conv1d(x[None], cond, None, **options)[0]
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    run_case(batch=2, mc=4, repeat=2, length=257, out_channels=12, kernel_size=5, sample_stride=2,
             stride=1, padding=2, dilation=1, bias=True, dtype=dtype, seed=9)


def test_gradient_only_for_condensed():
    # the first layer of a model: input needs no gradient
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 2, 50, generator=gen, dtype=torch.float64)
    cond = torch.randn(2, 4 + 5 * 3, generator=gen, dtype=torch.float64, requires_grad=True)
    cond_ref = cond.detach().clone().requires_grad_()
    options = dict(kernel_size=4, sample_stride=3, stride=2)
    wsnet_ext.ws_conv1d(x, cond, **options).square().sum().backward()
    reference_conv1d(x, cond_ref, None, **options).square().sum().backward()
    torch.testing.assert_close(cond.grad, cond_ref.grad)


SMALL_LAYER_CASES = [  # (S, C, stride, dilation, padding), every option
    (1, 4, 2, 1, 2), (1, 1, 1, 1, "same"), (2, 2, 1, 2, 0), (3, 1, 3, 1, "valid"), (7, 2, 2, 3, 2), (1, 4, 1, 1, 0)]


@pytest.mark.parametrize("sample_stride,repeat,stride,dilation,padding", SMALL_LAYER_CASES)
@pytest.mark.parametrize("out_channels", [100, 257, 520])  # 1, 2 and 4 groups
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_small_layers_split_into_filter_groups_match_definition(sample_stride, repeat, stride, dilation, padding,
                                                                out_channels, dtype):
    """Batch 1 and a short input (SoundNet's conv6/conv7 at batch 1): the forward runs its filters in
    groups (tiles/cpu/ws_conv1d_tiles.h, forward_filter_groups) on short 16-row register blocks; each
    group's prefix starts at its own columns. Against the definition, with gradients and a bias, on
    1 and 2 threads (bitwise equal: the split depends on the shape only)."""
    kernel_size = 4
    for length in (kernel_size * dilation + 3, 40, 61):  # rows <= 48 (short blocks) and more
        outputs = []
        for threads in (1, 2):
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                outputs.append(run_case(batch=1, mc=9, repeat=repeat, length=length, out_channels=out_channels,
                                        kernel_size=kernel_size, sample_stride=sample_stride, stride=stride,
                                        padding=padding, dilation=dilation, bias=True, dtype=dtype,
                                        seed=length * 7 + out_channels))
            finally:
                torch.set_num_threads(before)
        assert torch.equal(outputs[0], outputs[1])
