"""HashedNets baselines (Chen et al., ICML 2015; docs/design.md §4): each virtual weight is
V[i] = xi(i) * w[h(i)] with `w` of ceil(numel(V) / compression) real parameters, `h` a fixed
seeded hash of the index into buckets and `xi` an independent hash giving +1/-1. Gradients of
entries that share a bucket add up (the gather's adjoint: our deterministic per-bucket sum on the
CPU, index_add elsewhere)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair, _single

from . import _checks, _ops

_BUCKET_SALT, _SIGN_SALT = 0x5EED0001, 0x5EED0002


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a well-mixed 64-bit hash of each element (wraps mod 2^64)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_buckets(numel: int, buckets: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(bucket index in [0, buckets), sign in {-1, +1}) of each of `numel` virtual weights, from
    two independent seeded hashes of the flat index (row-major over the virtual shape)."""
    index = np.arange(numel, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed], dtype=np.uint64))
        bucket = _splitmix64(index ^ _splitmix64(key ^ np.uint64(_BUCKET_SALT))) % np.uint64(buckets)
        sign_bit = _splitmix64(index ^ _splitmix64(key ^ np.uint64(_SIGN_SALT))) >> np.uint64(63)
    sign = 1.0 - 2.0 * sign_bit.astype(np.float32)
    return torch.from_numpy(bucket.astype(np.int64)), torch.from_numpy(sign)


def signed_index(numel: int, buckets: int, seed: int) -> torch.Tensor:
    """The index of each virtual weight into the signed table [w; -w]: its bucket where its sign
    is +1, buckets + its bucket where it is -1."""
    bucket, sign = hash_buckets(numel, buckets, seed)
    return bucket + buckets * (sign < 0).to(torch.int64)


def signed_gather(real_weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[w; -w][index] by index_select: the virtual weight off the CPU, with torch's autograd."""
    signed = torch.cat([real_weight, -real_weight])
    return signed.index_select(0, index.reshape(-1)).view(index.shape)


def _rebuild_hash_after_load(module: "_Hashed", incompatible_keys) -> None:
    """load_state_dict post-hook: the hash from the loaded seed. A module-level function, not a
    lambda, so that torch.save of a whole model can pickle it."""
    module._build_hash(module.real_weight.device)


class _Hashed(nn.Module):
    """Holds `real_weight` and the hash of the virtual weight; `weight` is V."""

    def _init_hashed(self, virtual_shape, compression, seed, fan_in, out_features, bias, factory):
        if isinstance(compression, bool) or not isinstance(compression, (int, float)) or not compression >= 1:
            raise ValueError(f"compression expects a number >= 1, got {compression!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed expects an int >= 0, got {seed!r}")
        self.virtual_shape = tuple(virtual_shape)
        numel = math.prod(self.virtual_shape)
        self.real_weight = nn.Parameter(torch.empty(math.ceil(numel / compression), **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self._fan_in = fan_in
        # Only the seed is saved; loading a state_dict rebuilds the hash from it.
        self.register_buffer("hash_seed", torch.tensor(seed, dtype=torch.int64))
        self._build_hash(factory.get("device"))
        self.register_load_state_dict_post_hook(_rebuild_hash_after_load)
        self.reset_parameters()

    def _build_hash(self, device=None) -> None:
        index = signed_index(math.prod(self.virtual_shape), self.real_weight.numel(), int(self.hash_seed))
        self.register_buffer("hash_index", index.view(self.virtual_shape).to(device), persistent=False)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self._fan_in)  # the plain layer's scale; signs keep it symmetric
        nn.init.uniform_(self.real_weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def weight(self) -> torch.Tensor:
        """The virtual weight V = xi * w[h], computed on access: on the CPU by our op (a gather from
        [w; -w], a deterministic scatter-add backward; benchmarks/results/hashed/hashed_weight_*),
        elsewhere by index_select on [w; -w] (its backward is index_add, with atomics on CUDA)."""
        if self.hash_index.device.type == "cpu":
            wanted = torch.is_grad_enabled() and self.real_weight.requires_grad
            return _ops.call_op(_ops._hashed_weight, wanted, self.real_weight, self.hash_index)
        return signed_gather(self.real_weight, self.hash_index)

    @property
    def compression(self) -> float:
        """Virtual over real weights (biases not counted)."""
        return math.prod(self.virtual_shape) / self.real_weight.numel()

    def _hash_repr(self) -> str:
        return f"compression={self.compression:.2f}, seed={int(self.hash_seed)}"


class HashedLinear(_Hashed):
    """nn.Linear with a hashed weight (HashedNets): ``HashedLinear(in_features, out_features,
    bias=True, device=None, dtype=None, *, compression, seed=0)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None,
                 *, compression: float, seed: int = 0):
        super().__init__()
        bias = _checks.bool_arg("bias", bias, _checks._KEYWORD_HINT.format(
            extras="compression and seed", example="HashedLinear(784, 1000, compression=8)"))
        self.in_features = _checks.single_int("in_features", in_features)
        self.out_features = _checks.single_int("out_features", out_features)
        self._init_hashed((self.out_features, self.in_features), compression, seed, self.in_features,
                          self.out_features, bias, {"device": device, "dtype": dtype})

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, {self._hash_repr()}")


class _HashedConv(_Hashed):
    """nn.ConvNd's positional arguments in its order, HashedNets' keyword-only: ``(in_channels,
    out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
    padding_mode='zeros', device=None, dtype=None, *, compression, seed=0)``; groups other than 1
    and padding modes other than 'zeros' are not supported (ValueError naming the argument)."""
    _dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None, *, compression: float, seed: int = 0):
        super().__init__()
        name = type(self).__name__
        bias = _checks.plain_conv_extras(name, groups, bias, padding_mode, "compression and seed",
                                         f"{name}(16, 32, 3, padding=1, compression=8)")
        expand = _single if self._dims == 1 else _pair
        self.in_channels = _checks.single_int("in_channels", in_channels)
        self.out_channels = _checks.single_int("out_channels", out_channels)
        self.kernel_size, self.stride, self.padding, self.dilation = _checks.conv_options(
            kernel_size, stride, padding, dilation, expand)
        self.groups, self.padding_mode = 1, "zeros"
        self._init_hashed((self.out_channels, self.in_channels, *self.kernel_size), compression, seed,
                          self.in_channels * math.prod(self.kernel_size), self.out_channels, bias,
                          {"device": device, "dtype": dtype})

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        conv = F.conv1d if self._dims == 1 else F.conv2d
        return conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}, {self._hash_repr()}")


class HashedConv1d(_HashedConv):
    """nn.Conv1d with a hashed weight (HashedNets): ``HashedConv1d(in_channels, out_channels,
    kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros',
    device=None, dtype=None, *, compression, seed=0)``. Not supported: groups other than 1,
    padding_mode other than 'zeros' (ValueError naming the argument)."""
    _dims = 1


class HashedConv2d(_HashedConv):
    """nn.Conv2d with a hashed weight (HashedNets), arguments as HashedConv1d's. Not supported:
    groups other than 1, padding_mode other than 'zeros' (ValueError naming the argument)."""
    _dims = 2
