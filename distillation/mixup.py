"""Mixup for distillation (``--mixup_alpha``): the windows of each training batch blended in pairs, the inputs and
their targets with one weight.

Small students distilled from strong forecasters improve when the teacher's forecasts of blended windows serve as
extra training data (TimeDistill): a blend is a plausible input the data did not hold, and the teacher's blended
forecast is a target for it. Window ``i`` of a batch is blended with a partner ``j`` (a permutation of the batch)
with its own weight ``lam ~ Beta(alpha, alpha)``:

    x = lam * x_i + (1 - lam) * x_j,  teacher = lam * teacher_i + (1 - lam) * teacher_j,  y likewise

The truth of a blend counts only where both windows are labelled (a teacher-only window has none,
``distillation.teacher_data``), and each target step only where both windows score it. The teacher's hidden states
belong to its unblended inputs, so a candidate with mixup has no hidden-state term (gamma 0).

The weights and partners come from a generator seeded with the run's seed (a stream of its own), so the same seed
blends the same windows with the same weights; alpha 0 blends nothing and draws nothing.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from utils.errors import LLMTimeError

MIXUP_STREAM = 2  # the generator's stream of the seed, apart from the window draws' and their shuffles'


class Mixup:
    """Blends a batch and the teacher's forecasts of it; ``alpha`` 0 returns them unchanged."""

    def __init__(self, alpha: float, seed: int) -> None:
        if not (math.isfinite(alpha) and alpha >= 0):
            raise LLMTimeError(f"--mixup_alpha must be a finite number >= 0 (0 = no blending), got {alpha}")
        self.alpha = alpha
        self.rng = np.random.default_rng([seed, MIXUP_STREAM])

    def draw(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The blend weights (lam ~ Beta(alpha, alpha)) and partners of a batch of ``n`` windows."""
        return self.rng.beta(self.alpha, self.alpha, size=n), self.rng.permutation(n)

    def __call__(self, batch: dict, teacher: Optional[Tensor] = None) -> tuple[dict, Optional[Tensor]]:
        """The blended batch (``x``, ``y``, ``mask`` and, where present, ``teacher_mask``; other keys as they were)
        and the blended teacher forecasts."""
        if not self.alpha:
            return batch, teacher
        lam, partner = self.draw(len(batch["x"]))
        lam = torch.as_tensor(lam, dtype=torch.float32, device=batch["x"].device)
        partner = torch.as_tensor(partner, device=batch["x"].device)
        out = dict(batch)
        out["x"] = blend(batch["x"], lam, partner)
        out["y"] = blend(batch["y"], lam, partner)
        for key in ("mask", "teacher_mask"):
            if key in batch:
                out[key] = batch[key] & batch[key][partner]
        return out, None if teacher is None else blend(teacher, lam, partner)


def blend(values: Tensor, lam: Tensor, partner: Tensor) -> Tensor:
    """``lam * values + (1 - lam) * values[partner]`` along the first axis, in ``values``' dtype."""
    w = lam.to(values.dtype).reshape(-1, *([1] * (values.dim() - 1)))
    return w * values + (1 - w) * values[partner]
