"""The loss-weight search: train one distilled student per ALPHA,BETA,GAMMA candidate and keep the one with the
lowest validation MSE (never training loss, never test), the first candidate winning ties.

The teacher's outputs are computed once, on the first candidate that needs them, and shared by every candidate;
its size is checked against ``--max-cache-mb`` before anything trains.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from configs import RunConfig
from data_provider.data_factory import Splits
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
from distillation.phases import Phase, checkpoint_digest, distill_builder, train_phase
from distillation.teacher_cache import TeacherCache, estimate_bytes
from exp.trainer import Objective
from utils.errors import LLMTimeError


@dataclass
class Search:
    """The search's outcome: the chosen candidate, and what the report says about the search."""

    weights: LossWeights
    distilled: Phase
    pairs: LayerPairs  # student:teacher hidden-state pairs available to candidates with gamma > 0
    seconds: float  # training time of every candidate together
    cache: Optional[TeacherCache]  # None when no candidate needed the teacher


class TeacherOutputs:
    """The teacher cache, filled when the first candidate that needs it trains (a truth-only grid needs none)."""

    def __init__(self, teacher: nn.Module, splits: Splits, layers: list[int], batch_size: int, precision: str,
                 tag: str):
        self.teacher, self.splits, self.layers, self.batch_size = teacher, splits, layers, batch_size
        self.autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.tag = tag
        self.cache: Optional[TeacherCache] = None

    def objective(self, weights: LossWeights, used: LayerPairs) -> Objective:
        """The distillation objective of one candidate, reading only the teacher layers it maps."""
        if self.cache is None and (weights.beta or weights.gamma):
            tqdm.write(f"[{self.tag}] caching the teacher's outputs on {len(self.splits.train)} training windows "
                       "(once)")
            self.cache = TeacherCache.build(self.teacher, self.splits.train, self.layers, self.batch_size,
                                            self.autocast)
        cached = _layer_subset(self.cache, [t for _, t in used], self.layers) if self.cache is not None else None
        return DistillationObjective(weights, cached)


def _layer_subset(cache: TeacherCache, layers: list[int], cached: list[int]) -> TeacherCache:
    """A view of the cache holding only ``layers`` (a candidate with gamma 0 needs none)."""
    return replace(cache, hidden=[cache.hidden[cached.index(l)] for l in layers], layers=tuple(layers))


def layer_pairs(cfg: PipelineConfig, student_depth: int, teacher: nn.Module) -> LayerPairs:
    """--layer-map checked against the loaded depths, or the uniform map between them."""
    t_depth = backbone_depth(teacher)
    if cfg.layer_map:
        return check_layer_map(cfg.layer_map, student_depth, t_depth)
    return uniform_layer_map(student_depth, t_depth)


def check_cache_budget(cfg: PipelineConfig, splits: Splits, teacher: nn.Module, layers: list[int]) -> None:
    """Refuse, before any candidate trains, a teacher cache larger than --max-cache-mb."""
    need_mb = estimate_bytes(len(splits.train), teacher.n_patches, hidden_width(teacher), len(layers),
                             splits.train.pred_len) / 1e6
    if need_mb > cfg.max_cache_mb:
        raise LLMTimeError(
            f"the teacher cache would take {need_mb:.0f} MB (> --max-cache-mb {cfg.max_cache_mb:g}): lower "
            "--max-train-windows, map fewer layers with --layer-map, or use output-only distillation (--gamma 0)"
        )


def distill_settings(weights: LossWeights, used: LayerPairs, teacher: Phase, baseline: Phase,
                     init_from_baseline: bool) -> dict:
    """What a distilled run learnt from beyond its RunConfig; a finished run is reused only when all of it matches.

    The teacher (and baseline) checkpoints' digests tie it to the exact models it learnt from: a retrained teacher
    in the same folder makes older distilled runs stale.
    """
    return {"alpha": weights.alpha, "beta": weights.beta, "gamma": weights.gamma,
            "layer_map": format_layer_map(used) if used else "none", "teacher_run": str(teacher.run_dir),
            "teacher_checkpoint_sha1": checkpoint_digest(teacher.run_dir),
            "init_from_baseline": checkpoint_digest(baseline.run_dir) if init_from_baseline else None}


def search_weights(
    cfg: PipelineConfig,
    tag: str,
    configs: dict[str, RunConfig],
    splits: Splits,
    teacher: Phase,
    baseline: Phase,
    student_build: Callable[[], nn.Module],
    student_depth: int,
    teacher_splits: Optional[Splits] = None,
) -> Search:
    """Train (or reuse) a distilled student per candidate and choose on validation MSE; a student without a language
    model (``student_depth`` 0) has no hidden states to pair. The teacher cache is computed on ``teacher_splits``
    (the teacher's own view of the same windows, default ``splits``)."""
    pairs = layer_pairs(cfg, student_depth, teacher.model) if student_depth else []
    cache_layers = [t for _, t in pairs] if any(w.gamma for w in cfg.candidates) else []
    check_cache_budget(cfg, splits, teacher.model, cache_layers)
    outputs = TeacherOutputs(teacher.model, teacher_splits or splits, cache_layers, configs["teacher"].train.eval_batch_size,
                             cfg.train.mixed_precision, tag)
    t_width = hidden_width(teacher.model)
    candidates: list[tuple[LossWeights, Phase]] = []
    for k, weights in enumerate(cfg.candidates, 1):
        if baseline_stands_for(cfg, weights):
            tqdm.write(f"[{tag}] 3/4 weights {weights.as_tuple()} are the baseline's objective: its run stands for "
                       f"them ({k}/{len(cfg.candidates)})")
            candidates.append((weights, baseline))
            continue
        used = pairs if weights.gamma else []
        extra = distill_settings(weights, used, teacher, baseline, cfg.init_from_baseline)
        tqdm.write(f"[{tag}] 3/4 distilled student, weights {weights.as_tuple()} ({k}/{len(cfg.candidates)})")
        phase = train_phase(
            configs["distilled"], run_names(configs, weights, cfg.init_from_baseline)["distilled"], splits,
            distill_builder(student_build, used, t_width, baseline if cfg.init_from_baseline else None),
            functools.partial(outputs.objective, weights, used), extra,
        )
        candidates.append((weights, phase))
    chosen, distilled = min(candidates, key=lambda c: c[1].fit["best_val_loss"])  # first wins ties
    seconds = sum(float(phase.fit["train_seconds"]) for _, phase in candidates if phase is not baseline)
    return Search(chosen, distilled, pairs, seconds, outputs.cache)
