"""What the training engine minimises: an ``Objective`` turns the model and one batch into that step's loss.

The engine (``exp.trainer.Trainer``) is the same for every run and only the objective differs: the forecast loss
for every model, the distillation loss for a student learning from a teacher (``distillation.losses``). So a
distilled student and its baseline see the same optimiser, schedule, epoch budget and early stopping. Every hook
beyond the loss has a default, so the engine calls each on any objective instead of probing for it.
"""

from __future__ import annotations

import torch
from torch import nn


def masked_mse(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE over scored targets only (training windows are fully scored; test windows may not be)."""
    m = mask.to(pred.dtype)
    return ((pred.float() - y.float()) ** 2 * m).sum() / m.sum().clamp_min(1.0)


class Objective:
    """The loss of a training step; by default the model's forecast against the truth (masked MSE).

    ``model`` is the model as the engine prepared it (under accelerate's autocast when the run has mixed precision),
    ``batch`` the step's windows: ``x`` inputs, ``y`` targets, ``mask`` scored targets, ``index`` dataset indices.
    """

    def __call__(self, model: nn.Module, batch: dict) -> torch.Tensor:
        return masked_mse(model(batch["x"]), batch["y"], batch["mask"])

    def epoch_terms(self) -> dict[str, float]:
        """Values to add to the epoch's line of the learning curve, then start afresh; the engine calls it once per
        epoch. An objective of one term has nothing beyond the training loss the engine records itself."""
        return {}
