"""HashedNets baselines: the virtual weight's definition, shared gradients, state_dict, and the
CPU op that builds it (gather forward, per-bucket sum backward) against the definition."""

import math

import pytest
import torch
import torch.nn.functional as F

import wsnet_ext
from wsnet_ext.hashed import hash_buckets, signed_gather, signed_index

HASHED_WEIGHT = torch.ops.wsnet_ext.ws_hashed_weight.default
HASHED_WEIGHT_BACKWARD = torch.ops.wsnet_ext.ws_hashed_weight_backward.default


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
    assert torch.equal(b.hash_index, a.hash_index)


@pytest.mark.parametrize("kwargs,message", [
    (dict(compression=0.5), "compression expects a number >= 1, got 0.5"),
    (dict(compression="8"), "compression expects a number >= 1"),
    (dict(compression=4, seed=-1), "seed expects an int >= 0, got -1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        wsnet_ext.HashedLinear(10, 10, **kwargs)


def definition(real_weight, numel, seed):
    """V[i] = xi(i) * w[h(i)], straight from the two hashes, with autograd's own gather."""
    bucket, sign = hash_buckets(numel, real_weight.numel(), seed)
    return real_weight[bucket] * sign.to(real_weight.dtype)


# (numel, buckets): one bucket, one chunk (numel < 16 * buckets), several and the most chunks
@pytest.mark.parametrize("numel,buckets", [(1, 1), (37, 5), (1000, 1), (4099, 512), (20_000, 20_000),
                                           (50_000, 700), (300_001, 3)])
def test_op_and_signed_gather_match_definition(numel, buckets):
    torch.manual_seed(numel)
    w = torch.randn(buckets, dtype=torch.float64, requires_grad=True)
    index = signed_index(numel, buckets, seed=4)
    gv = torch.randn(numel, dtype=torch.float64)
    expected = definition(w, numel, 4)
    (g_expected,) = torch.autograd.grad(expected, w, gv)
    for build in (lambda: HASHED_WEIGHT(w, index), lambda: signed_gather(w, index)):
        v = build()
        torch.testing.assert_close(v, expected, rtol=0, atol=0)  # a gather: exact
        (g,) = torch.autograd.grad(v, w, gv)
        torch.testing.assert_close(g, g_expected)


def test_hashed_weight_gradients_first_and_second_order():
    torch.manual_seed(0)
    layer = wsnet_ext.HashedLinear(13, 7, compression=3, dtype=torch.float64)
    x = torch.randn(5, 13, dtype=torch.float64)
    def fn(w):
        return torch.nn.functional.linear(x, HASHED_WEIGHT(w, layer.hash_index)).square()
    w = layer.real_weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(fn, (w,))
    assert torch.autograd.gradgradcheck(fn, (w,))


def test_opcheck_hashed_weight_ops():
    index = signed_index(300, 40, seed=2).view(15, 20)
    w = torch.randn(40, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(HASHED_WEIGHT, (w, index))
    gv = torch.randn(15, 20, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(HASHED_WEIGHT_BACKWARD, (gv, index, 40))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_matches_float64(dtype):
    torch.manual_seed(1)
    index = signed_index(5000, 300, seed=1)
    w = torch.randn(300, dtype=torch.float64)
    gv = torch.randn(5000, dtype=torch.float64)
    torch.testing.assert_close(HASHED_WEIGHT(w.to(dtype), index), HASHED_WEIGHT(w, index).to(dtype), rtol=0, atol=0)
    tol = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 1e-1}[dtype]
    torch.testing.assert_close(HASHED_WEIGHT_BACKWARD(gv.to(dtype), index, 300).double(),
                               HASHED_WEIGHT_BACKWARD(gv, index, 300), rtol=tol, atol=tol)


@pytest.mark.parametrize("numel,buckets", [(784 * 100, 784 * 100 // 8), (784 * 100, 784 * 100 // 64)])
def test_backward_is_bitwise_identical_across_thread_counts(numel, buckets):
    index = signed_index(numel, buckets, seed=0)
    gv = torch.randn(numel)
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(HASHED_WEIGHT_BACKWARD(gv, index, buckets))
    finally:
        torch.set_num_threads(previous)
    assert all(torch.equal(results[0], r) for r in results[1:])


def test_bad_indices_raise_naming_the_argument():
    index = signed_index(50, 7, seed=0)
    w, gv = torch.randn(7), torch.randn(50)
    bad_index = index.clone()
    bad_index[13] = 14
    with pytest.raises(RuntimeError, match=r"ws_hashed_weight: expected index values in \[0, 2 \* 7\), got 14"):
        HASHED_WEIGHT(w, bad_index)
    bad_index[13] = -1
    with pytest.raises(RuntimeError, match=r"ws_hashed_weight_backward: expected index values in \[0, 2 \* 7\), got -1"):
        HASHED_WEIGHT_BACKWARD(gv, bad_index, 7)
    with pytest.raises(RuntimeError, match=r"expected index values in \[0, 2 \* 6\), got 1[23]"):
        HASHED_WEIGHT_BACKWARD(gv, index, 6)  # an index built for 7 buckets
    with pytest.raises(RuntimeError, match="expected an int64 index, got Int"):
        HASHED_WEIGHT(w, index.int())
    with pytest.raises(RuntimeError, match=r"expected grad_virtual of the index's shape \[50\], got \[49\]"):
        HASHED_WEIGHT_BACKWARD(gv[:49], index, 7)
    with pytest.raises(RuntimeError, match="expected buckets in \\[1, 2\\^40\\], got 0"):
        HASHED_WEIGHT_BACKWARD(gv, index, 0)
