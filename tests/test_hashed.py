"""HashedNets baselines: the virtual weight's definition, shared gradients, state_dict."""

import math

import pytest
import torch
import torch.nn.functional as F

import wsnet_ext
from wsnet_ext.hashed import hash_buckets


def test_hash_is_seeded_spread_and_signed():
    b0, s0 = hash_buckets(10_000, 100, seed=0)
    b1, s1 = hash_buckets(10_000, 100, seed=1)
    assert torch.equal(b0, hash_buckets(10_000, 100, seed=0)[0])
    assert not torch.equal(b0, b1)
    counts = torch.bincount(b0, minlength=100)
    assert counts.min() > 50 and counts.max() < 150  # ~100 each
    assert set(s0.unique().tolist()) == {-1.0, 1.0} and abs(s0.mean().item()) < 0.05
    # the sign is independent of the bucket
    assert abs((s0[b0 % 2 == 0]).mean().item()) < 0.06


@pytest.mark.parametrize("cls,args,x_shape,fn", [
    (wsnet_ext.HashedLinear, (20, 7), (3, 20), lambda x, w, b, l: F.linear(x, w, b)),
    (wsnet_ext.HashedConv1d, (4, 6, 3), (2, 4, 15), lambda x, w, b, l: F.conv1d(x, w, b, l.stride, l.padding, l.dilation)),
    (wsnet_ext.HashedConv2d, (3, 5, (3, 2)), (2, 3, 8, 7), lambda x, w, b, l: F.conv2d(x, w, b, l.stride, l.padding, l.dilation)),
])
@pytest.mark.parametrize("compression", [1, 4, 7.5])
def test_hashed_layer_matches_definition(cls, args, x_shape, fn, compression):
    torch.manual_seed(0)
    layer = cls(*args, compression=compression, seed=3, dtype=torch.float64)
    virtual = math.prod(layer.virtual_shape)
    assert layer.real_weight.numel() == math.ceil(virtual / compression)
    # V[i] = xi(i) * w[h(i)], from the hash itself
    bucket, sign = hash_buckets(virtual, layer.real_weight.numel(), seed=3)
    w_ref = layer.real_weight.detach().clone().requires_grad_()
    v_ref = (w_ref[bucket] * sign.double()).view(layer.virtual_shape)
    x = torch.randn(*x_shape, dtype=torch.float64)
    y = layer(x)
    y_ref = fn(x, v_ref, layer.bias, layer)
    torch.testing.assert_close(y, y_ref)
    gy = torch.randn_like(y)
    g = torch.autograd.grad(y, layer.real_weight, gy)[0]
    torch.testing.assert_close(g, torch.autograd.grad(y_ref, w_ref, gy)[0])  # shared entries add up


def test_positional_arguments_follow_torch_nn():
    # HashedConv2d(in, out, kernel_size, stride, padding, dilation, groups, bias, *, compression, seed)
    layer = wsnet_ext.HashedConv2d(3, 4, 3, 2, 1, 2, 1, False, compression=2, seed=7)
    assert layer.stride == (2, 2) and layer.padding == (1, 1) and layer.dilation == (2, 2)
    assert layer.bias is None and int(layer.hash_seed) == 7 and layer.compression == pytest.approx(2)
    lin = wsnet_ext.HashedLinear(5, 6, False, compression=3, seed=9)
    assert lin.bias is None and int(lin.hash_seed) == 9


def test_state_dict_round_trip_rebuilds_hash():
    a = wsnet_ext.HashedLinear(30, 10, compression=8, seed=5)
    b = wsnet_ext.HashedLinear(30, 10, compression=8, seed=0)
    assert set(a.state_dict()) == {"real_weight", "bias", "hash_seed"}
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 30)
    torch.testing.assert_close(b(x), a(x))
    assert torch.equal(b.hash_bucket, a.hash_bucket)


@pytest.mark.parametrize("kwargs,message", [
    (dict(compression=0.5), "compression expects a number >= 1, got 0.5"),
    (dict(compression="8"), "compression expects a number >= 1"),
    (dict(compression=4, seed=-1), "seed expects an int >= 0, got -1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        wsnet_ext.HashedLinear(10, 10, **kwargs)


def test_hashed_weight_gradient_is_exact_and_first_order_only():
    torch.manual_seed(0)
    layer = wsnet_ext.HashedLinear(13, 7, compression=3, dtype=torch.float64)
    x = torch.randn(5, 13, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda w: torch.nn.functional.linear(
        x, wsnet_ext.hashed._HashedWeight.apply(w, layer.hash_bucket, layer.hash_sign)), (layer.real_weight,))
    (g,) = torch.autograd.grad(layer(x).square().sum(), layer.real_weight, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        g.sum().backward()
