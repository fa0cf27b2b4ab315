"""The CPU kernels' polyphase split of strided layers (csrc/tiles/cpu/ws_conv1d_polyphase.h) against the
definition: forward and every gradient, for every stride / sample stride / kernel size with a
common divisor, with the split on (the default) and off (the cpu_polyphase switch); NaN; compile."""

import itertools
import math

import pytest
import torch

import wsnet_ext
from helpers import assert_same_nonfinite, reference_conv1d, run_case


@pytest.fixture(params=["split", "unsplit"])
def polyphase(request):
    with wsnet_ext.switches.override(cpu_polyphase=request.param == "split"):
        yield request.param


# (stride, sample_stride, kernel_size, repeat, padding, Mc) where gcd(stride, S, L) > 1: the split applies
CASES = [case for case in itertools.product((2, 3, 4), (2, 4, 6), (2, 4, 6, 12), (1, 2), (0, 3), (1, 3))
         if math.gcd(math.gcd(case[0], case[1]), case[2]) > 1]


@pytest.mark.parametrize("stride,sample_stride,kernel_size,repeat,padding,mc", CASES)
def test_split_matches_definition(polyphase, stride, sample_stride, kernel_size, repeat, padding, mc):
    seed = stride * 1000 + sample_stride * 100 + kernel_size * 10 + repeat + padding + mc
    for dtype in (torch.float64, torch.float32):
        run_case(batch=2, mc=mc, repeat=repeat, length=kernel_size + 37 + seed % 5, out_channels=5,
                 kernel_size=kernel_size, sample_stride=sample_stride, stride=stride, padding=padding,
                 dilation=1, bias=seed % 2 == 0, dtype=dtype, seed=seed)


@pytest.mark.parametrize("length", [64, 65, 66, 67])  # every remainder of the phases
def test_split_long_padding_and_tails(polyphase, length):
    # padding larger than a phase, and input rows past the last output's reach
    run_case(batch=3, mc=2, repeat=2, length=length, out_channels=7, kernel_size=8, sample_stride=4,
             stride=4, padding=9, dilation=1, bias=True, dtype=torch.float64, seed=length)


@pytest.mark.parametrize("repeat", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_split_long_rows(polyphase, repeat, dtype):
    # phase rows in whole 64-row chunks of the fold (ws_conv1d_fold.h) and a tail, every repeat added
    run_case(batch=2, mc=3, repeat=repeat, length=1001, out_channels=5, kernel_size=8, sample_stride=4,
             stride=2, padding=3, dilation=1, bias=True, dtype=dtype, seed=1001 + repeat)


@pytest.mark.parametrize("repeat", [1, 3])
def test_unsplit_long_rows(repeat):
    # stride 1: the fold's chunks read the rows as they are
    run_case(batch=2, mc=3, repeat=repeat, length=700, out_channels=4, kernel_size=5, sample_stride=2,
             stride=1, padding=2, dilation=1, bias=True, dtype=torch.float32, seed=700 + repeat)


def test_split_nonfinite_like_conv1d(polyphase):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 300, generator=gen, dtype=torch.float64)
    cond = torch.randn(2, 8 + 4 * 4, generator=gen, dtype=torch.float64)
    x[1, 2, 101] = float("nan")
    x[0, 0, 7] = float("inf")
    options = dict(kernel_size=8, sample_stride=4, channel_repeat=2, stride=2, padding=3)
    assert_same_nonfinite(wsnet_ext.ws_conv1d(x, cond, **options), reference_conv1d(x, cond, None, **options))


def test_split_compiles():
    layer = wsnet_ext.WSConv1d(4, 6, 8, sample_stride=4, channel_repeat=2, stride=2, padding=4,
                               dtype=torch.float64)
    x = torch.randn(3, 4, 101, dtype=torch.float64)
    eager = layer(x)
    compiled = torch.compile(layer, fullgraph=True)(x)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(eager, reference_conv1d(x, layer.condensed, layer.bias, kernel_size=8,
                                                       sample_stride=4, channel_repeat=2, stride=2,
                                                       padding=4))
