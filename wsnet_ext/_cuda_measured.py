"""What the CUDA path rule (wsnet_ext/paths.py) is calibrated on: one H200 run of commit d4681b9
(2026-12-04, torch 2.11 + CUDA 13, the training-size protocol of benchmarks/bench_ws_conv1d.py:
batch 64, float32, kernel time by CUDA-graph replay over L2-rotated inputs, cudnn.benchmark on).
Source: ../shared/gpu-runs/2026-12-04/training_protocol_default_kernels.md, copied with its
context into benchmarks/results/cuda_dispatch/2026-12-04_h200_rule_data.md.

Per layer (geometry without batch and length) and TF32 setting: microseconds of our default
kernels (auto pick of the C++ library; the opt-in strip kernels are not in it) and of cuDNN on the
materialized filter, forward and backward (backward = forward+backward - forward)."""

from __future__ import annotations

# (in_channels, out_channels, kernel_size, sample_stride, channel_repeat, stride, padding, dilation)
GEOMETRY = {
    "conv1": (1, 16, 64, 8, 1, 2, 32, 1),
    "conv2": (16, 32, 32, 4, 2, 2, 16, 1),
    "conv3": (32, 64, 16, 2, 4, 2, 8, 1),
    "conv4": (64, 128, 8, 2, 4, 2, 4, 1),
    "conv5": (128, 256, 4, 1, 4, 2, 2, 1),
    "conv6": (256, 512, 4, 1, 4, 2, 2, 1),
    "conv7": (512, 1024, 4, 1, 4, 2, 2, 1),
    "long": (64, 128, 32, 4, 4, 1, 16, 1),
}

# layer: {tf32: (ours forward, ours forward+backward, cuDNN forward, cuDNN forward+backward)} in µs;
# tf32 True: cuDNN with TF32 (our default kernels are float32-exact either way).
MICROSECONDS = {
    "conv1": {True: (1858.6, 17684.4, 930.2, 3208.5), False: (1858.6, 17684.4, 929.5, 3221.0)},
    "conv2": {True: (267.9, 1391.0, 180.8, 742.4), False: (267.9, 1391.0, 384.1, 1592.6)},
    "conv3": {True: (69.9, 205.9, 37.6, 144.4), False: (69.9, 205.9, 58.1, 203.2)},
    "conv4": {True: (76.5, 281.0, 37.1, 155.5), False: (76.5, 281.0, 58.7, 217.3)},
    "conv5": {True: (55.1, 261.5, 38.8, 141.1), False: (55.1, 261.5, 59.0, 216.0)},
    "conv6": {True: (35.8, 287.0, 37.1, 142.7), False: (35.8, 287.0, 57.8, 223.7)},
    "conv7": {True: (88.4, 511.1, 64.1, 305.2), False: (88.4, 511.1, 123.8, 461.5)},
    "long": {True: (4645.9, 12781.0, 2860.6, 10029.2), False: (4645.9, 12781.0, 12621.1, 53081.8)},
}


def direction_times(layer: str, tf32: bool) -> dict:
    """{"forward": (ours, cuDNN), "backward": (ours, cuDNN)} in µs."""
    ours_f, ours_fb, cudnn_f, cudnn_fb = MICROSECONDS[layer][tf32]
    return {"forward": (ours_f, cudnn_f), "backward": (ours_fb - ours_f, cudnn_fb - cudnn_f)}
