"""The validation search: train one distilled student per candidate (ALPHA,BETA,GAMMA weights, with the teacher-data
share and mixup alpha where those are searched: ``distillation/candidates.py``) and keep the one with the lowest
validation MSE on the unblended, labelled validation windows (never training loss, never test), the first candidate
winning ties.

The teacher's outputs are computed once, on the first candidate that needs them, and shared by every candidate: on
the labelled windows, and (with teacher data) on every window a candidate's draws reach; their size is checked
against ``--max-cache-mb`` before anything trains.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from data_provider.data_factory import Splits, WindowDataset
from distillation.candidates import Candidate
from distillation.config import PipelineConfig, baseline_stands_for, run_names
from distillation.losses import (
    DistillationObjective,
    LayerPairs,
    LossWeights,
    backbone_depth,
    check_layer_map,
    format_layer_map,
    hidden_width,
    uniform_layer_map,
)
from distillation.group import Group
from distillation.mixup import Mixup
from distillation.phases import checkpoint_digest, distill_builder, train_phase
from distillation.teacher_cache import TeacherCache, estimate_bytes, stored
from distillation.teacher_data import TeacherData, teacher_data
from exp.objective import Objective
from exp.run import RunResult
from utils.errors import LLMTimeError


@dataclass
class Search:
    """The search's outcome: the chosen candidate, and what the report says about the search."""

    weights: LossWeights
    distilled: RunResult
    pairs: LayerPairs  # student:teacher hidden-state pairs available to candidates with gamma > 0
    seconds: float  # training time of every candidate together
    cache: Optional[TeacherCache]  # on the labelled windows; None when no candidate needed it
    candidate: Candidate  # the chosen one: its weights, teacher-data share and mixup alpha
    data_cache: Optional[TeacherCache] = None  # on the teacher-data windows; None when none was searched
    # best validation loss of each distilled student trained (those the baseline stands for left out), search order
    losses: dict[Candidate, float] = field(default_factory=dict)
    # and its test RMSE at 30 and 60 min: reported (each lever's effect on test), never used to choose
    tests: dict[Candidate, tuple[float, float]] = field(default_factory=dict)

    @property
    def caches(self) -> list[TeacherCache]:
        return [c for c in (self.cache, self.data_cache) if c is not None]


class TeacherOutputs:
    """The teacher caches, each filled when the first candidate that needs it trains (a truth-only grid needs none),
    and each candidate's objective."""

    def __init__(self, teacher: nn.Module, splits: Splits, layers: list[int], batch_size: int, precision: str,
                 tag: str, data: Optional[TeacherData] = None, seed: int = 0, run_dir: Optional[Path] = None):
        self.teacher, self.splits, self.layers, self.batch_size = teacher, splits, layers, batch_size
        self.autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.tag, self.data, self.seed = tag, data, seed
        self.cache: Optional[TeacherCache] = None
        # forecast-only caches are kept in the teacher's run folder for the other students (teacher_cache.stored)
        self.store = run_dir if not layers else None

    def _build(self, dataset: WindowDataset) -> TeacherCache:
        build = functools.partial(TeacherCache.build, self.teacher, dataset, self.layers, self.batch_size,
                                  self.autocast)
        if self.store is None:
            return build()
        return stored(build, self.store, dataset, checkpoint_digest(self.store), self.autocast, self.batch_size)

    def objective(self, candidate: Candidate, used: LayerPairs) -> Objective:
        """The distillation objective of one candidate, reading only the teacher layers it maps; with mixup, its
        blends are seeded by the run's seed."""
        weights = candidate.weights
        cache = self.data_cache() if candidate.teacher_data else self.labelled_cache() if (
            weights.beta or weights.gamma) else None
        cached = _layer_subset(cache, [t for _, t in used], self.layers) if cache is not None else None
        mixup = Mixup(candidate.mixup_alpha, self.seed) if candidate.mixup_alpha else None
        return DistillationObjective(weights, cached, mixup)

    def labelled_cache(self) -> TeacherCache:
        if self.cache is None:
            tqdm.write(f"[{self.tag}] caching the teacher's outputs on {len(self.splits.train)} training windows "
                       "(once)")
            self.cache = self._build(self.splits.train)
        return self.cache

    def data_cache(self) -> TeacherCache:
        if self.data.cache is None:
            tqdm.write(f"[{self.tag}] caching the teacher's outputs on the {len(self.data.cover)} windows the "
                       "teacher-data draws reach (once)")
        return self.data.fill(self._build)


def _layer_subset(cache: TeacherCache, layers: list[int], cached: list[int]) -> TeacherCache:
    """A view of the cache holding only ``layers`` (a candidate with gamma 0 needs none)."""
    return replace(cache, hidden=[cache.hidden[cached.index(l)] for l in layers], layers=tuple(layers))


def layer_pairs(cfg: PipelineConfig, student_depth: int, teacher: nn.Module) -> LayerPairs:
    """--layer-map checked against the loaded depths, or the uniform map between them."""
    t_depth = backbone_depth(teacher)
    if cfg.layer_map:
        return check_layer_map(cfg.layer_map, student_depth, t_depth)
    return uniform_layer_map(student_depth, t_depth)


def check_cache_budget(cfg: PipelineConfig, splits: Splits, teacher: nn.Module, layers: list[int],
                       data_windows: int = 0) -> None:
    """Refuse, before any candidate trains, teacher caches larger than --max-cache-mb together: the labelled
    windows' and the ``data_windows`` teacher-data windows'."""
    need_mb = estimate_bytes(len(splits.train) + data_windows, teacher.n_patches, hidden_width(teacher), len(layers),
                             splits.train.pred_len) / 1e6
    if need_mb > cfg.max_cache_mb:
        raise LLMTimeError(
            f"the teacher cache would take {need_mb:.0f} MB (> --max-cache-mb {cfg.max_cache_mb:g}): lower "
            "--max-train-windows or --teacher-data, map fewer layers with --layer-map, or use output-only "
            "distillation (--gamma 0)"
        )


def distill_settings(candidate: Candidate, used: LayerPairs, teacher: RunResult, baseline: RunResult,
                     init_from_baseline: bool) -> dict:
    """What a distilled run learnt from beyond its RunConfig; a finished run is reused only when all of it matches.

    The teacher (and baseline) checkpoints' digests tie it to the exact models it learnt from: a retrained teacher
    in the same folder makes older distilled runs stale. The teacher-data share and mixup alpha are recorded where
    used, so runs made before they existed keep their settings.
    """
    weights = candidate.weights
    levers = {k: v for k, v in (("teacher_data", candidate.teacher_data), ("mixup_alpha", candidate.mixup_alpha)) if v}
    return {"alpha": weights.alpha, "beta": weights.beta, "gamma": weights.gamma,
            "layer_map": format_layer_map(used) if used else "none", "teacher_run": str(teacher.run_dir),
            "teacher_checkpoint_sha1": checkpoint_digest(teacher.run_dir),
            "init_from_baseline": checkpoint_digest(baseline.run_dir) if init_from_baseline else None, **levers}


def search_weights(
    group: Group,
    student_build: Callable[[], nn.Module],
    student_depth: int,
    teacher_splits: Optional[Splits] = None,
) -> Search:
    """Train (or reuse) a distilled student per candidate of ``group`` and choose on validation MSE; a student without
    a language model (``student_depth`` 0) has no hidden states to pair. The teacher cache is computed on
    ``teacher_splits`` (the teacher's own view of the same windows, default the group's splits)."""
    cfg, tag, configs, splits = group.cfg, group.tag, group.configs, group.splits
    teacher, baseline = group.teacher, group.baseline
    space, distilled = cfg.search_space, configs["distilled"]
    pairs = layer_pairs(cfg, student_depth, teacher.model) if student_depth else []
    cache_layers = [t for _, t in pairs] if any(c.weights.gamma for c in space) else []
    data = teacher_data([c.teacher_data for c in space], configs["baseline"].data, configs["teacher"].data, splits,
                        teacher_splits or splits, distilled.train.seed, distilled.train.train_epochs)
    check_cache_budget(cfg, splits, teacher.model, cache_layers, len(data.cover) if data is not None else 0)
    outputs = TeacherOutputs(teacher.model, teacher_splits or splits, cache_layers,
                             configs["teacher"].train.eval_batch_size, cfg.train.mixed_precision, tag, data,
                             distilled.train.seed, teacher.run_dir)
    t_width = hidden_width(teacher.model)
    candidates: list[tuple[Candidate, RunResult]] = []
    for k, candidate in enumerate(space, 1):
        if baseline_stands_for(cfg, candidate):
            tqdm.write(f"[{tag}] 3/4 weights {candidate.describe()} are the baseline's objective: its run stands for "
                       f"them ({k}/{len(space)})")
            candidates.append((candidate, baseline))
            continue
        used = pairs if candidate.weights.gamma else []
        extra = distill_settings(candidate, used, teacher, baseline, cfg.init_from_baseline)
        own = replace(splits, train=data.windows(candidate.teacher_data)) if candidate.teacher_data else splits
        tqdm.write(f"[{tag}] 3/4 distilled student, weights {candidate.describe()} ({k}/{len(space)})")
        phase = train_phase(
            distilled, run_names(configs, candidate, cfg.init_from_baseline)["distilled"], own,
            distill_builder(student_build, used, t_width, baseline if cfg.init_from_baseline else None),
            functools.partial(outputs.objective, candidate, used), extra,
        )
        candidates.append((candidate, phase))
    chosen, phase = min(candidates, key=lambda c: c[1].fit["best_val_loss"])  # first wins ties
    trained = [(c, run) for c, run in candidates if run is not baseline]
    seconds = sum(float(run.fit["train_seconds"]) for _, run in trained)
    return Search(chosen.weights, phase, pairs, seconds, outputs.cache, chosen,
                  data.cache if data is not None else None,
                  {c: float(run.fit["best_val_loss"]) for c, run in trained},
                  {c: (float(run.row["rmse_30"]), float(run.row["rmse_60"])) for c, run in trained})
