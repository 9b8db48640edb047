"""Learning-rate schedules by ``--lradj``: Time-LLM's per-epoch tables, the per-step curves and a validation-driven
plateau schedule, with linear warm-up.

The trainer builds one per run from its loader length (``make_schedule``) and hands it each epoch's validation loss
(``after_validation``). They are pure functions of the training
config and the step count, so they live apart from the engine that steps them.
"""

from __future__ import annotations

import math

import torch

from configs import TrainConfig
from utils.errors import LLMTimeError

SCHEDULES = ("type1", "type2", "type3", "COS", "TST", "constant", "plateau")
# Time-LLM's utils/tools.py adjust_learning_rate, lradj 'type2': absolute learning rates by epoch.
TYPE2_TABLE = {2: 5e-5, 4: 1e-5, 6: 5e-6, 8: 1e-6, 10: 5e-7, 15: 1e-7, 20: 5e-8}


def make_schedule(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """Per-step learning-rate schedule built from this process's loader length.

    Each process steps once per its own batch, so the schedule ends on time whatever the process count.
    """
    total = max(1, cfg.train_epochs * steps_per_epoch)
    if cfg.lradj == "TST":  # OneCycle warms up by itself (pct_start)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.learning_rate, total_steps=total, pct_start=cfg.pct_start
        )
    if cfg.lradj == "plateau":
        return PlateauSchedule(optimizer, max(0, cfg.warmup_steps))
    if cfg.lradj == "COS":
        factor = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))  # noqa: E731
    elif cfg.lradj == "type1":
        factor = lambda s: 0.5 ** (s // max(1, steps_per_epoch))  # noqa: E731
    elif cfg.lradj in ("type2", "type3"):
        factor = lambda s: _epoch_rate(cfg, s // max(1, steps_per_epoch) + 1) / cfg.learning_rate  # noqa: E731
    elif cfg.lradj == "constant":
        factor = lambda s: 1.0  # noqa: E731
    else:
        raise LLMTimeError(f"--lradj must be one of {', '.join(SCHEDULES)}, got {cfg.lradj!r}")
    # Linear warm-up over the first warmup_steps optimiser steps, multiplied into the schedule: Adam's first
    # moments are noisy, and a freshly initialised reprogramming layer behind a frozen backbone diverges more
    # easily at a large learning rate than after a few hundred windows.
    warm = max(0, cfg.warmup_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: factor(s) * min(1.0, (s + 1) / (warm + 1)))


def _epoch_rate(cfg: TrainConfig, epoch: int) -> float:
    """Time-LLM's per-epoch rates ('type2', 'type3') for 1-based ``epoch``.

    The table entry for epoch e is the rate of epoch e, as 'type1' here halves from epoch 2 (Time-LLM applies its
    entry after epoch e, one epoch later, and starts from OneCycleLR's initial rate, learning_rate/25, instead of
    --learning_rate). 'type2': --learning_rate until the table's first entry, then the table's absolute rates;
    'type3': --learning_rate for epochs 1-3, then x0.9 per epoch.
    """
    if cfg.lradj == "type2":
        reached = [e for e in TYPE2_TABLE if e <= epoch]
        return TYPE2_TABLE[max(reached)] if reached else cfg.learning_rate
    return cfg.learning_rate if epoch < 3 else cfg.learning_rate * 0.9 ** (epoch - 3)


class PlateauSchedule(torch.optim.lr_scheduler.LRScheduler):
    """Linear warm-up, then the rate held constant and halved after every epoch whose validation loss is not a new
    best. The rate falls only when validation says learning has stalled, never because an epoch cap is near, so early
    stopping, not the cap, ends a run; yet a model that needs a smaller step to settle (a constant rate left Time-LLM's
    validation loss jumping between epochs) gets one. Its state (the current scale and the best loss) is part of the
    scheduler's ``state_dict``, so a resumed run continues with the rate the interrupted one had.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, factor: float = 0.5) -> None:
        self.warmup, self.factor, self.scale, self.best = warmup_steps, factor, 1.0, math.inf
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        warm = min(1.0, (self.last_epoch + 1) / (self.warmup + 1))
        return [base * self.scale * warm for base in self.base_lrs]

    def observe(self, val_loss: float) -> None:
        if val_loss < self.best:
            self.best = val_loss
        else:
            self.scale *= self.factor


def after_validation(scheduler: torch.optim.lr_scheduler.LRScheduler, val_loss: float) -> None:
    """An epoch's validation loss to a schedule that reads it (plateau); the step- and epoch-count schedules ignore
    it."""
    if isinstance(scheduler, PlateauSchedule):
        scheduler.observe(val_loss)
