"""DistributedDataParallel: two processes (gloo, CPU) training a WS model on halves of a batch
end with the parameters of one process training on the whole batch."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

import wsnet_ext

STEPS, BATCH, WORLD = 3, 8, 2


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(wsnet_ext.WSConv1d(4, 8, 5, sample_stride=2, channel_repeat=2, padding=2), nn.ReLU(),
                         wsnet_ext.WSConv1d(8, 8, 3, sample_stride=1, channel_repeat=4, padding=1),
                         nn.Flatten(), wsnet_ext.WSLinear(8 * 40, 3, sample_stride=4, channel_repeat=2)).double()


def make_data():
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(BATCH, 4, 40, generator=gen, dtype=torch.float64),
            torch.randn(BATCH, 3, generator=gen, dtype=torch.float64))


def train(model, x, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(STEPS):
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()


def worker(rank, store_path, out_path):
    torch.set_num_threads(1)
    # a file store: no port to race for; gloo still talks over loopback
    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=WORLD)
    try:
        model = nn.parallel.DistributedDataParallel(make_model())
        x, y = make_data()
        shard = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        train(model, x[shard], y[shard])
        if rank == 0:
            torch.save(model.module.state_dict(), out_path)
        dist.barrier()  # neither process tears down gloo while the other still talks to it
    finally:
        dist.destroy_process_group()
    # Leave without running C++ static destructors: torch's gloo teardown sometimes aborts in
    # them ("terminate called without an active exception") after all the work is done.
    os._exit(0)


def test_ddp_two_processes_equal_one_process_on_the_whole_batch(tmp_path):
    out_path = str(tmp_path / "ddp.pt")
    mp.start_processes(worker, args=(str(tmp_path / "store"), out_path), nprocs=WORLD, join=True,
                       start_method="spawn")
    distributed = torch.load(out_path)
    single = make_model()
    train(single, *make_data())  # mean loss over the batch = DDP's average of the halves' means
    changed = False
    for name, value in single.state_dict().items():
        torch.testing.assert_close(distributed[name], value, rtol=1e-10, atol=1e-12)
        changed |= not torch.equal(value, make_model().state_dict()[name])
    assert changed  # training moved the parameters
