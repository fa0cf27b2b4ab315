"""Seeded training with model selection on the validation set (the seed's protocol)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm


@dataclass
class TrainResult:
    test_error: float      # % on the test set, of the epoch best on validation
    val_error: float       # % on the validation set, best epoch
    best_epoch: int
    losses: list[float]    # mean training loss per epoch
    epoch_seconds: list[float] = field(default_factory=list)  # training time per epoch (no evaluation)
    steps_per_epoch: int = 0


@torch.no_grad()
def error_rate(model, x, y, batch: int = 1000) -> float:
    model.eval()
    wrong = sum((model(x[i:i + batch]).argmax(1) != y[i:i + batch]).sum().item() for i in range(0, len(x), batch))
    return 100.0 * wrong / max(1, len(x))


def train(model, data, *, epochs: int, lr: float, batch_size: int, seed: int, weight_decay: float = 0.0,
          desc: str = "", progress: bool = True, eval_batch: int = 1000, param_groups=None,
          augment=None) -> TrainResult:
    """Adam + cosine schedule, the best validation epoch's weights kept and tested. `param_groups`:
    torch.optim's groups when some parameters need their own lr (default: one group, `lr`).
    `augment(x_batch, generator)`: a training batch's augmentation (seeded by `seed`)."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(param_groups or model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    best = (float("inf"), -1, None)
    losses, seconds, steps = [], [], 0
    for epoch in tqdm(range(epochs), desc=desc, leave=False, disable=not progress):
        model.train()
        total, count, steps = 0.0, 0, 0
        began = time.perf_counter()
        for idx in torch.randperm(len(x_train), generator=order).split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            x_batch = x_train[idx] if augment is None else augment(x_train[idx], order)
            loss = F.cross_entropy(model(x_batch), y_train[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
            steps += 1
        seconds.append(time.perf_counter() - began)
        schedule.step()
        losses.append(total / count)
        val = error_rate(model, x_val, y_val, eval_batch)
        if val < best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return TrainResult(error_rate(model, x_test, y_test, eval_batch), best[0], best[1], losses, seconds, steps)
