"""The polyphase split of strided layers (wsnet_ext/_polyphase.py) against the definition: forward
and every gradient, every stride / sample stride / kernel size it applies to, NaN, compile."""

import itertools
import math

import pytest
import torch

import wsnet_ext
from wsnet_ext import _polyphase
from conftest import reference_conv1d
from test_extreme_inputs import assert_same_nonfinite
from test_ws_conv1d_grid import run_case


@pytest.fixture
def always_split(monkeypatch):
    monkeypatch.setattr(_polyphase, "MIN_WORK", 0)


# (stride, sample_stride, kernel_size, repeat, padding) where gcd(stride, S, L) > 1: the split applies
CASES = [case for case in itertools.product((2, 3, 4), (2, 4, 6), (2, 4, 6, 12), (1, 2), (0, 3))
         if math.gcd(math.gcd(case[0], case[1]), case[2]) > 1]


@pytest.mark.parametrize("stride,sample_stride,kernel_size,repeat,padding", CASES)
def test_split_matches_definition(always_split, stride, sample_stride, kernel_size, repeat, padding):
    x = torch.empty(2, 3 * repeat, kernel_size + 37)
    assert _polyphase.phase_count(x, torch.empty(3, kernel_size + 4 * sample_stride), (padding, padding),
                                  kernel_size, sample_stride, stride, 1) > 1
    seed = stride * 1000 + sample_stride * 100 + kernel_size * 10 + repeat + padding
    for dtype in (torch.float64, torch.float32):
        run_case(batch=2, mc=3, repeat=repeat, length=kernel_size + 37 + seed % 5, out_channels=5,
                 kernel_size=kernel_size, sample_stride=sample_stride, stride=stride, padding=padding,
                 dilation=1, bias=seed % 2 == 0, dtype=dtype, seed=seed)


def test_split_applies_where_it_should():
    x, cond = torch.empty(8, 1, 110250), torch.empty(1, 64 + 15 * 8)
    assert _polyphase.phase_count(x, cond, (32, 32), 64, 8, 2, 1) == 2      # SoundNet conv1
    assert _polyphase.phase_count(x, cond, (32, 32), 64, 8, 4, 1) == 4
    assert _polyphase.phase_count(x, cond, (32, 32), 64, 8, 2, 2) == 1      # dilation
    assert _polyphase.phase_count(x, cond, (32, 32), 63, 8, 2, 1) == 1      # odd kernel
    assert _polyphase.phase_count(x, cond, (32, 32), 64, 7, 2, 1) == 1      # odd sample stride
    assert _polyphase.phase_count(x[:1, :, :100], cond, (0, 0), 64, 8, 2, 1) == 1  # too small to pay
    assert _polyphase.phase_count(x.to("meta"), cond.to("meta"), (32, 32), 64, 8, 2, 1) == 1  # CPU only


def test_split_with_batch_and_unbatched(always_split):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 40, generator=gen, dtype=torch.float64)
    cond = torch.randn(2, 4 + 6 * 2, generator=gen, dtype=torch.float64)
    options = dict(kernel_size=4, sample_stride=2, channel_repeat=2, stride=2, padding=1)
    y = wsnet_ext.ws_conv1d(x, cond, **options)
    torch.testing.assert_close(y, reference_conv1d(x[None], cond, None, **options)[0])


def test_split_nonfinite_like_conv1d(always_split):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 300, generator=gen, dtype=torch.float64)
    cond = torch.randn(2, 8 + 4 * 4, generator=gen, dtype=torch.float64)
    x[1, 2, 101] = float("nan")
    x[0, 0, 7] = float("inf")
    options = dict(kernel_size=8, sample_stride=4, channel_repeat=2, stride=2, padding=3)
    assert_same_nonfinite(wsnet_ext.ws_conv1d(x, cond, **options), reference_conv1d(x, cond, None, **options))


def test_split_compiles(always_split):
    layer = wsnet_ext.WSConv1d(4, 6, 8, sample_stride=4, channel_repeat=2, stride=2, padding=4,
                               dtype=torch.float64)
    x = torch.randn(3, 4, 101, dtype=torch.float64)
    eager = layer(x)
    compiled = torch.compile(layer, fullgraph=True)(x)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(eager, reference_conv1d(x, layer.condensed, layer.bias, kernel_size=8,
                                                       sample_stride=4, channel_repeat=2, stride=2,
                                                       padding=4))
