"""Reversible instance normalisation (RevIN, Kim et al. 2022) as Time-LLM uses it: per window, affine off.

Each window is scaled to zero mean and unit variance over time before patching and the forecast is mapped back with
the same window's statistics. This removes level shifts between patients and times of day that a frozen language
model cannot absorb. The statistics are returned, not stored on the module, so one module can serve concurrent or
nested calls (e.g. a teacher and a student sharing code) without one call overwriting another's state.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RevIN(nn.Module):
    """Per-window normalisation over the time axis of [B, L, C] inputs; no learnable affine (as published)."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def normalize(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Return the normalised window and (mean, std), each [B, 1, C], to pass to ``denormalize``."""
        mean = x.mean(dim=1, keepdim=True).detach()
        # eps inside the root keeps flat windows (a sensor stuck on one value) finite.
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        return (x - mean) / std, (mean, std)

    def denormalize(self, y: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
        """Map [B, H, C] outputs back to the input's units with the statistics of the same windows."""
        mean, std = stats
        return y * std + mean
