"""Networks of the experiments, each in a plain, a WSNet ('ws') and a HashedNets ('hashed')
variant: a SoundNet-style 1D CNN on raw audio, HashNet's 3-layer fully connected net, a 5-layer
CNN for 32x32 colour images, and a small 1D CNN for short signals (MNIST-1D)."""

from __future__ import annotations

import torch
from torch import nn

from .convert import hashify, wsnetify

VARIANTS = ("plain", "ws", "hashed")


def _variant(model: nn.Module, variant: str, compression: float | None, exclude=(), keep_head: bool = True,
             seed: int = 0, policy: str = "spatial", allocate: str | None = None,
             example_shape: tuple = (), heavy_compactness: float | None = None,
             min_channel_sums: int | None = None) -> nn.Module:
    """Turn a plain (fresh) model into its WSNet or HashedNets variant at `compression` (WSNet:
    each layer's (S, C) chosen by `policy`, see wsnet_ext.convert.choose_sampling; `allocate`:
    'uniform' per layer, or 'by_params' / 'by_params_fast' (the default, None) for a model-level
    ratio spent by layer size; the latter counts multiply-adds on zeros of `example_shape`, one
    input, and floors the heaviest layers at `heavy_compactness`, default sqrt(`compression`));
    `min_channel_sums` (WSNet only): wsnetify's floor on the channel sums each layer keeps, by
    default the largest of 16, 8, 4, 2, 1 that reaches the ratio without pushing another layer
    past 3x its ratio without a floor)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant expects one of {VARIANTS}, got {variant!r}")
    if variant == "plain":
        return model
    if compression is None or compression < 1:
        raise ValueError(f"compression expects a number >= 1 for variant {variant!r}, got {compression!r}")
    example = torch.zeros(example_shape) if allocate in (None, "by_params_fast") else None
    if variant == "ws":
        return wsnetify(model, compression, init="random", exclude=exclude, keep_head=keep_head, tolerance=1.0,
                        policy=policy, allocate=allocate, example_input=example,
                        heavy_compactness=heavy_compactness, min_channel_sums=min_channel_sums)
    return hashify(model, compression, exclude=exclude, keep_head=keep_head, seed=seed, allocate=allocate,
                   example_input=example, heavy_compactness=heavy_compactness)


def soundnet(num_classes: int, variant: str = "plain", compression: float | None = None, *,
             policy: str = "spatial", allocate: str | None = None, width: float = 1.0,
             heavy_compactness: float | None = None, min_channel_sums: int | None = None) -> nn.Sequential:
    """SoundNet's 8 layers on raw audio (B, 1, T): conv 1->16 k64 s2, 16->32 k32 s2, 32->64 k16
    s2, 64->128 k8 s2, 128->256 k4 s2, 256->512 k4 s2, 512->1024 k4 s2, each with batch norm and
    ReLU, max-pools of 8 after conv1-2 and of 4 after conv5, then global average pooling and a
    linear classifier (kept plain in every variant). `width` scales every layer's channels (at
    least 1 each): the plain network made narrower, the baseline for a parameter budget."""
    if not width > 0:
        raise ValueError(f"width expects a number > 0, got {width!r}")
    channels = [1] + [max(1, round(c * width)) for c in (16, 32, 64, 128, 256, 512, 1024)]
    spec = [(channels[i], channels[i + 1], k, pool)
            for i, (k, pool) in enumerate([(64, 8), (32, 8), (16, 1), (8, 1), (4, 4), (4, 1), (4, 1)])]
    layers: list[nn.Module] = []
    for m, n, k, pool in spec:
        layers += [nn.Conv1d(m, n, k, stride=2, padding=k // 2), nn.BatchNorm1d(n), nn.ReLU()]
        if pool > 1:
            layers.append(nn.MaxPool1d(pool, ceil_mode=True))
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(channels[-1], num_classes)]
    model = nn.Sequential(*layers)
    # keep_head: the classifier stays plain; multiply-adds counted on 1 s of 22.05 kHz audio
    return _variant(model, variant, compression, policy=policy, allocate=allocate,
                    heavy_compactness=heavy_compactness, min_channel_sums=min_channel_sums, example_shape=(1, 1, 22050))


def mlp(in_features: int, num_classes: int, variant: str = "plain", compression: float | None = None,
        hidden: int = 1000, *, policy: str = "spatial",
             allocate: str | None = None, heavy_compactness: float | None = None, min_channel_sums: int | None = None) -> nn.Sequential:
    """HashNet's MNIST net: in -> 1000 (ReLU) -> classes; both layers compressed."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
    return _variant(model, variant, compression, keep_head=False, policy=policy, allocate=allocate,
                    heavy_compactness=heavy_compactness, min_channel_sums=min_channel_sums, example_shape=(1, in_features))


def cnn5(num_classes: int = 10, variant: str = "plain", compression: float | None = None,
         in_channels: int = 3, width: int = 64, image_size: int = 32, *, policy: str = "spatial",
             allocate: str | None = None, heavy_compactness: float | None = None, min_channel_sums: int | None = None) -> nn.Sequential:
    """A 5-layer CNN for square images (32x32 colour by default): three 3x3 conv layers (width,
    2*width, 4*width) with batch norm, ReLU and 2x2 max-pools, then two fully connected layers;
    the first conv (few input channels leave nothing to share) stays plain."""
    w = width
    model = nn.Sequential(
        nn.Conv2d(in_channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * w * (image_size // 8) ** 2, 256), nn.ReLU(), nn.Linear(256, num_classes))
    return _variant(model, variant, compression, exclude=("0",), keep_head=False, policy=policy, allocate=allocate,
                    heavy_compactness=heavy_compactness, min_channel_sums=min_channel_sums, example_shape=(1, in_channels, image_size, image_size))


def cnn1d(num_classes: int = 10, variant: str = "plain", compression: float | None = None,
          in_channels: int = 1, width: int = 64, length: int = 40, *, policy: str = "spatial",
             allocate: str | None = None, heavy_compactness: float | None = None, min_channel_sums: int | None = None) -> nn.Sequential:
    """The MNIST-1D authors' small CNN (Greydanus 2020) for short signals: conv k5 s2 p1, then
    two conv k3 s2 p1 of `width` channels, ReLU, and a linear classifier; the first conv (one
    input channel, little to share) stays plain."""
    out = (length + 2 - 5) // 2 + 1
    for _ in range(2):
        out = (out + 2 - 3) // 2 + 1
    model = nn.Sequential(
        nn.Conv1d(in_channels, width, 5, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(width, width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(width, width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(width * out, num_classes))
    return _variant(model, variant, compression, exclude=("0",), keep_head=False, policy=policy, allocate=allocate,
                    heavy_compactness=heavy_compactness, min_channel_sums=min_channel_sums, example_shape=(1, in_channels, length))
