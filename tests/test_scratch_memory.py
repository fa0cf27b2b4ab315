"""The CPU backward's scratch for grad_condensed is bounded independently of the thread count
(csrc/tiles/cpu/ws_conv1d_tiles.h, kReductionScratchBytes): a large condensed filter on many threads."""

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import resource, torch, wsnet_ext
torch.set_num_threads(16)
mc, L, N, T = 512, 3, 2046, 4096          # condensed (512, 2048): 1M elements, 64 tiles of rows
x = torch.randn(1, mc, T)
cond = torch.randn(mc, L + N - 1) * 0.01
y = torch.ops.wsnet_ext.ws_conv1d_forward(x, cond, None, L, 1, 1, 1, [0, 0], 1)
gy = torch.randn_like(y)
torch.ops.wsnet_ext.ws_conv1d_backward(gy[:, :, :62], x[:, :, :64], cond, L, 1, 1, 1, [0, 0], 1, [True, True, False])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
gx, gc, _ = torch.ops.wsnet_ext.ws_conv1d_backward(gy, x, cond, L, 1, 1, 1, [0, 0], 1, [True, True, False])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024)  # MiB of new peak, outputs (16 + 4 MiB) included
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_backward_scratch_does_not_grow_with_threads():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "16"}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    growth_mib = float(done.stdout.strip().splitlines()[-1])
    # lane accumulators per thread would be 16 threads x 64 MiB = 1 GiB; the budget is 256 MiB of
    # scratch plus the outputs (20 MiB) and the per-thread dP tiles (a few MiB each)
    assert growth_mib < 420, growth_mib
