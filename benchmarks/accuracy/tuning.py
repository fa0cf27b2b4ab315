"""The fair protocol's search: every variant trains once per (learning rate, weight decay) on one
seed, and the setting with the lowest validation error (best epoch) is the one its test seeds use.
The test set is never looked at while choosing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    lr: float
    weight_decay: float

    def key(self) -> str:
        return f"lr={self.lr:g},wd={self.weight_decay:g}"


def grid(base_lr: float, lr_scales, weight_decays) -> list[Setting]:
    """The same small grid for every variant of an experiment, around the experiment's base lr."""
    return [Setting(base_lr * s, wd) for s in lr_scales for wd in weight_decays]


def choose(settings, run) -> tuple[Setting, dict, object]:
    """run(setting) -> (val_error, payload). Returns the best setting (first one on ties, so the
    grid's order decides), the validation error of every setting, and the winner's payload."""
    if not settings:
        raise ValueError("settings: expected at least one (lr, weight decay) pair, got none")
    best, val_errors, payload = None, {}, None
    for setting in settings:
        val, result = run(setting)
        val_errors[setting.key()] = val
        if best is None or val < val_errors[best.key()]:
            best, payload = setting, result
    return best, val_errors, payload


def search(base_lr: float, lr_scales, weight_decays, run, extend: int = 2) -> tuple[Setting, dict, object]:
    """choose() over the grid, then, while the winner's lr is the grid's largest (or smallest), up to
    `extend` more steps of the grid's ratio in that direction (every weight decay again), so a
    variant that wants a larger lr than the grid's centre assumed is not capped at its edge."""
    settings = grid(base_lr, lr_scales, weight_decays)
    best, val_errors, payload = choose(settings, run)
    lrs = sorted({s.lr for s in settings})
    ratio = lrs[-1] / lrs[-2] if len(lrs) > 1 else 3.0
    for _ in range(extend):
        if best.lr == lrs[-1]:
            lr = best.lr * ratio
        elif best.lr == lrs[0]:
            lr = best.lr / ratio
        else:
            break
        lrs = sorted(lrs + [lr])
        step, step_errors, step_payload = choose([Setting(lr, wd) for wd in weight_decays], run)
        val_errors.update(step_errors)
        if step_errors[step.key()] < val_errors[best.key()]:
            best, payload = step, step_payload
    return best, val_errors, payload
