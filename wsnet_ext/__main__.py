"""`python -m wsnet_ext`: what was built, and one WSNet layer checked and timed against the plain
nn.Conv1d it replaces (SoundNet's conv2 with WSNet sampling, batch 8, 5 s of 22.05 kHz audio)."""

import statistics
import time

import torch
import torch.nn.functional as F

import wsnet_ext


def median_ms(fn, repeats=7):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    info = wsnet_ext.build_info()
    print(f"wsnet_ext {wsnet_ext.__version__}: built against torch {info['torch']}, CUDA kernels "
          f"{'built (CUDA ' + info['cuda'] + ')' if info['cuda_kernels'] else 'not built'}; "
          f"running on torch {torch.__version__} with {torch.get_num_threads()} threads")
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(16, 32, 32, sample_stride=4, channel_repeat=2, stride=2, padding=16)
    plain = torch.nn.Conv1d(16, 32, 32, stride=2, padding=16)
    print(layer)
    x = torch.randn(8, 16, 6890)
    with torch.no_grad():
        error = (layer(x) - F.conv1d(x, layer.weight, layer.bias, 2, 16)).abs().max().item()
        ws_ms = median_ms(lambda: layer(x))
        plain_ms = median_ms(lambda: plain(x))
    print(f"max |WSConv1d - conv1d(sampled weight)| = {error:.2e}")
    print(f"parameters: {sum(p.numel() for p in layer.parameters())} vs nn.Conv1d "
          f"{sum(p.numel() for p in plain.parameters())} (compactness {layer.compactness:.1f}x)")
    print(f"forward on CPU: WSConv1d {ws_ms:.2f} ms, nn.Conv1d {plain_ms:.2f} ms "
          f"(median of 7; the full suite: python benchmarks/bench_ws_conv1d.py)")
    if error > 1e-3:
        raise SystemExit("WSConv1d disagrees with its definition")


if __name__ == "__main__":
    main()
