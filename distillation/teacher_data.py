"""The teacher as data: training windows whose labels the student never sees, with the teacher's forecast as their
only target (``--teacher_data``).

A student distilled on the very windows its teacher was trained on gets little from the teacher's forecasts that the
labels did not already give it. The teacher can forecast any training window, though, at the cost of one inference
(far cheaper than a training step). So each epoch of a candidate with teacher data sees every labelled window (with
the usual objective: truth, teacher, hidden states) plus a fresh draw of ``share x labelled`` windows from the
training windows outside the labelled set. On those the truth term is absent: their ``mask`` is all False and their
``y`` zeros, so no label beyond the labelled budget reaches the loss, nor a closed-form base's fit (which keeps fully
scored windows only); ``teacher_mask`` marks the targets the teacher's forecast is compared with.

The draws are a pure function of (seed, epoch), as the labelled draws of ``data_provider.draws`` are, so every window
any epoch of any candidate can draw is known before training: the teacher cache is filled once over exactly those
(``TeacherData.cover``), and each candidate trains on the view of the training windows restricted to them, indexed as
the cache is. With a fresh labelled draw per epoch (``--train_draw fresh``) every window's label is drawable, so
teacher data needs the fixed labelled set (the pipeline's default).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Sampler

from configs import DataConfig
from data_provider.data_factory import Splits, WindowDataset, build_splits, window_view
from data_provider.draws import stratified_draw
from distillation.teacher_cache import TeacherCache
from utils.errors import LLMTimeError

SHUFFLE_STREAM = 1  # the epoch's shuffle draws from its own stream of the seed, apart from the windows' draw


class TeacherDataWindows(WindowDataset):
    """The windows one candidate trains on: labelled ones with their truth, teacher-only ones without.

    ``epoch_sampler`` gives the loader its epochs (``data_provider.data_factory.make_loader``): every labelled window
    plus the epoch's draw of teacher-only windows, shuffled together.
    """

    labelled: torch.Tensor  # [windows] bool: the truth of this window may be used
    always: np.ndarray  # positions of the labelled windows
    drawn: list[np.ndarray]  # per epoch (1-based: epoch e is drawn[e - 1]) the positions of its teacher-only windows

    @classmethod
    def of(cls, pool: WindowDataset, cover: np.ndarray, labelled: np.ndarray,
           drawn: list[np.ndarray]) -> "TeacherDataWindows":
        """The view of ``pool`` restricted to the windows ``cover`` (sorted pool indices); ``labelled`` and each
        epoch of ``drawn`` are pool indices inside ``cover``."""
        out = cls.__new__(cls)
        out.__dict__.update(window_view(pool, cover).__dict__)
        out.always = np.searchsorted(cover, labelled)
        out.labelled = torch.zeros(len(cover), dtype=torch.bool)
        out.labelled[torch.from_numpy(out.always)] = True
        out.drawn = [np.searchsorted(cover, d) for d in drawn]
        return out

    def __getitems__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        batch = super().__getitems__(idx)
        labelled = self.labelled[batch["index"]][:, None]
        return {**batch, "y": batch["y"] * labelled, "mask": batch["mask"] & labelled, "teacher_mask": batch["mask"]}

    def epoch_sampler(self, seed: int) -> "EpochPlan":
        return EpochPlan(self.always, self.drawn, seed)


class EpochPlan(Sampler[int]):
    """Epoch ``e`` (set by the trainer, ``set_epoch``) yields ``always`` and ``drawn[e - 1]``, shuffled by ``seed``."""

    def __init__(self, always: np.ndarray, drawn: list[np.ndarray], seed: int) -> None:
        self.always, self.drawn, self.seed, self.epoch = always, drawn, seed, 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.always) + len(self.drawn[0])  # every epoch draws as many

    def __iter__(self) -> Iterator[int]:
        if not 1 <= self.epoch <= len(self.drawn):
            raise RuntimeError(f"teacher data was drawn for {len(self.drawn)} epochs, not for epoch {self.epoch}")
        order = np.concatenate([self.always, self.drawn[self.epoch - 1]])
        np.random.default_rng([self.seed, self.epoch, SHUFFLE_STREAM]).shuffle(order)
        return iter(order.tolist())


@dataclass
class TeacherData:
    """Every training window (the students' view and the teacher's), which are labelled, and the draws of each
    share of teacher-only windows over ``epochs`` epochs."""

    pool: WindowDataset
    teacher_pool: WindowDataset
    labelled: np.ndarray  # sorted pool indices of the labelled windows: the students' fixed training subset
    shares: tuple[float, ...]  # the candidates' shares above 0
    seed: int
    epochs: int
    cache: Optional[TeacherCache] = field(default=None, init=False)

    def draws(self, share: float) -> list[np.ndarray]:
        """Per epoch, the pool indices of the teacher-only windows of ``share``: a draw of ``share`` times the
        labelled windows (fewer when the rest holds fewer) from the windows outside the labelled set, stratified by
        patient, the same for the same seed and epoch."""
        rest = np.setdiff1d(np.arange(len(self.pool)), self.labelled)
        n = int(round(share * len(self.labelled)))
        return [rest[stratified_draw(self.pool.patient[rest], n, self.seed, e)]
                for e in range(1, self.epochs + 1)]

    @cached_property
    def cover(self) -> np.ndarray:
        """Sorted pool indices of every window a candidate may train on: the labelled ones and every draw."""
        return np.unique(np.concatenate([self.labelled, *(d for s in self.shares for d in self.draws(s))]))

    def windows(self, share: float) -> TeacherDataWindows:
        """The training set of a candidate with ``share``, indexed as the teacher cache (``fill``) is."""
        return TeacherDataWindows.of(self.pool, self.cover, self.labelled, self.draws(share))

    def fill(self, build: Callable[[WindowDataset], TeacherCache]) -> TeacherCache:
        """The teacher's outputs on every covered window, in its own view: ``build`` (the teacher's cache of a
        dataset) runs on the first call only."""
        if self.cache is None:
            self.cache = build(window_view(self.teacher_pool, self.cover))
        return self.cache


def teacher_data(shares: list[float], student: DataConfig, teacher: DataConfig, splits: Splits,
                 teacher_splits: Splits, seed: int, epochs: int) -> Optional[TeacherData]:
    """The teacher data of a search whose candidates draw ``shares`` (None when every share is 0): every training
    window cut with the students' settings and the teacher's, uncapped, scaled as ``splits`` are."""
    shares = sorted({s for s in shares if s})
    if not shares:
        return None
    pool = every_window(student, splits)
    teacher_pool = pool if teacher == student else every_window(teacher, teacher_splits)
    if not torch.equal(pool.origins, teacher_pool.origins):
        raise LLMTimeError("the teacher's view cuts other training windows than the students': its forecasts "
                           "would be paired with the wrong windows")
    labelled = labelled_windows(pool, splits.train)
    if len(labelled) == len(pool):
        raise LLMTimeError(f"--teacher_data needs training windows beyond the labelled ones, but all {len(pool)} are "
                           "labelled: set --max_train_windows below that")
    return TeacherData(pool, teacher_pool, labelled, tuple(shares), seed, epochs)


def every_window(data: DataConfig, splits: Splits) -> WindowDataset:
    """Every training window of ``data`` (no per-epoch cap), scaled with ``splits``' scaler."""
    return build_splits(replace(data, max_train_windows=None), scaler=splits.scaler).train


def labelled_windows(pool: WindowDataset, train: WindowDataset) -> np.ndarray:
    """The pool indices of the windows of ``train`` (a subset of the pool, in its order)."""
    origins = pool.origins.numpy()
    found = np.minimum(np.searchsorted(origins, train.origins.numpy()), len(origins) - 1)
    if not np.array_equal(origins[found], train.origins.numpy()):
        raise LLMTimeError("the labelled training windows are not among the training windows cut without the cap: "
                           "the data changed between the two cuts")
    return found
