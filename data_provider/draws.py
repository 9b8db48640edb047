"""Which training windows an epoch sees when a run caps them (``--max_train_windows N``).

A cap means N windows *per epoch*, drawn anew every epoch from all training windows: ten capped epochs then cover
ten times the data instead of repeating one subset ten times, which is what made a 2,000-window Time-LLM overfit.
Each draw is stratified by patient (every patient keeps its share of the training windows, up to rounding) and is
a pure function of ``(seed, epoch)``: a resumed run draws exactly what the uninterrupted run would have, with no
sampler state to save. ``--train_draw fixed`` keeps the earlier evenly spaced subset, the same every epoch, to
reproduce runs made before.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler

DRAWS = ("fresh", "fixed")


def patient_quota(counts: np.ndarray, cap: int) -> np.ndarray:
    """Windows per patient for a draw of ``cap`` from patients holding ``counts`` windows: proportional shares,
    rounded by largest remainder so they add up to ``min(cap, total)``."""
    total = int(counts.sum())
    cap = min(cap, total)
    exact = counts * cap / max(total, 1)
    quota = np.floor(exact).astype(np.int64)
    spare = cap - int(quota.sum())
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[:spare]] += 1
    return np.minimum(quota, counts)


def stratified_draw(patient: np.ndarray, cap: int, seed: int, epoch: int) -> np.ndarray:
    """Indices of ``min(cap, len(patient))`` windows, drawn without replacement within each patient in proportion
    to its windows, shuffled; the same ``(seed, epoch)`` always gives the same draw."""
    rng = np.random.default_rng([seed, epoch])
    _, inverse, counts = np.unique(patient, return_inverse=True, return_counts=True)
    quota = patient_quota(counts, cap)
    picks = [rng.choice(np.flatnonzero(inverse == k), size=q, replace=False) for k, q in enumerate(quota) if q]
    drawn = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    rng.shuffle(drawn)
    return drawn


class EpochDraw(Sampler[int]):
    """A sampler yielding epoch ``e``'s stratified draw of ``cap`` windows; the trainer sets the epoch
    (``set_epoch``) before each epoch, and accelerate's loader passes it on."""

    def __init__(self, patient: np.ndarray, cap: int, seed: int) -> None:
        self.patient, self.cap, self.seed, self.epoch = patient, cap, seed, 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return min(self.cap, len(self.patient))

    def __iter__(self) -> Iterator[int]:
        return iter(stratified_draw(self.patient, self.cap, self.seed, self.epoch).tolist())
