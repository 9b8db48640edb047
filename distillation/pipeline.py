"""Distill a large-backbone Time-LLM teacher into a small-backbone student, per patient (or pooled), and report it.

    bash scripts/distill_pipeline.sh --teacher bert --student tinybert --patients 1001,1002 \\
        --teacher-epochs 2 --student-epochs 2 --distill-epochs 2

Per patient (one CSV row each; ``--all-patients`` trains one pooled model instead), four phases, each its own run
folder under ``<out>/runs``:

1. teacher: Time-LLM with the teacher backbone, trained on the truth;
2. student baseline: the student architecture trained alone on the truth;
3. distilled student: the same architecture trained on
   ``alpha * MSE(student, truth) + beta * MSE(student, teacher forecast) + gamma * hidden-state loss``
   (see ``distillation/losses.py``), the weights picked on validation MSE from a small grid unless
   ``--alpha --beta --gamma`` are given; the teacher's outputs come from a cache filled once per training window;
4. evaluation: CPU latency, sizes, test accuracy of all three, accuracy retention and student-teacher agreement.

All three models go through the same ``Trainer`` (optimiser, schedule, early stopping on validation MSE, best
weights tested once on every test window), so the comparison differs only in backbone and objective. A phase whose
run folder already holds a finished run of the identical configuration is reused (a teacher shared by several
pairs trains once), and a patient whose row is already in the CSV is skipped, so interrupted runs resume.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from data_provider.data_factory import Splits, build_splits, data_root, dataset_name
from data_provider.ohio import discover
from distillation.losses import (
    DistillationObjective,
    DistillStudent,
    LayerPairs,
    LossWeights,
    backbone_depth,
    check_layer_map,
    format_layer_map,
    hidden_width,
    parse_grid,
    parse_layer_map,
    split_state,
    uniform_layer_map,
)
from distillation.measure import agreement, checkpoint_mb, latency_ms, size_mb
from distillation.teacher_cache import TeacherCache, estimate_bytes
from exp.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from exp.trainer import Objective, count_parameters, forecast_objective, load_trainable_state
from models import build_model
from models.backbones import WEIGHT_CHOICES, BackboneRow, backbone_names, resolve_backbone, safe_name
from utils.errors import LLMTimeError, run_cli
from utils.io import write_json
from utils.results import append_row, locked
from utils.seed import seed_everything

DEFAULT_GRID = "0.5,0.5,0;0.5,0.5,0.1;0.2,0.8,0"
DEFAULT_MAX_TRAIN_WINDOWS = 12_000
DEFAULT_MAX_VAL_WINDOWS = 3_000
CSV_NAME = "distillation.csv"
PHASE_CSV_NAME = "phase_results.csv"
LATENCY_WINDOWS = 64
NO_REGRESSION_TEMPERATURE = (
    "There is no temperature: forecasts are real numbers, not a softmax over classes, so temperature scaling does "
    "not apply to regression distillation."
)


@dataclass
class PipelineConfig:
    """Everything one pipeline run needs; the CLI and the pair comparison both build it."""

    teacher: str
    student: str
    patients: Optional[list[str]] = None  # None = every patient found
    all_patients: bool = False  # one pooled model over the patients instead of one per patient
    dataset: str = "simulated"
    root_path: Optional[str] = None
    teacher_epochs: int = 10
    student_epochs: int = 10
    distill_epochs: int = 10
    patience: int = 3
    weights: Optional[LossWeights] = None  # given: no search
    grid: list[LossWeights] = field(default_factory=lambda: parse_grid(DEFAULT_GRID))
    layer_map: Optional[LayerPairs] = None  # None = uniform mapping
    init_from_baseline: bool = False
    seed: int = 2021
    lr: float = 1e-3
    batch_size: int = 32
    mixed_precision: str = "no"
    teacher_weights: str = "pretrained"
    student_weights: str = "pretrained"
    teacher_path: Optional[str] = None
    student_path: Optional[str] = None
    teacher_layers: Optional[int] = None
    student_layers: Optional[int] = None
    max_train_windows: Optional[int] = DEFAULT_MAX_TRAIN_WINDOWS
    max_val_windows: Optional[int] = DEFAULT_MAX_VAL_WINDOWS
    d_model: int = 32
    d_ff: int = 128
    n_heads: int = 8
    num_tokens: int = 1000
    latency_repeats: int = 20
    latency_threads: int = 1
    max_cache_mb: float = 4096.0
    out: str = "./distillation_runs"
    csv: Optional[str] = None  # default <out>/distillation.csv

    @property
    def csv_path(self) -> Path:
        return Path(self.csv) if self.csv else Path(self.out) / CSV_NAME

    @property
    def candidates(self) -> list[LossWeights]:
        return [self.weights] if self.weights is not None else list(self.grid)


# --- configuration -------------------------------------------------------------------------------------------------


def validate(cfg: PipelineConfig) -> tuple[BackboneRow, BackboneRow]:
    """Check names and numbers before anything is loaded; returns the (teacher, student) rows."""
    teacher, student = _row(cfg.teacher, "--teacher"), _row(cfg.student, "--student")
    for name in ("teacher_epochs", "student_epochs", "distill_epochs", "patience", "batch_size", "latency_repeats",
                 "latency_threads"):
        if getattr(cfg, name) < 1:
            raise LLMTimeError(f"--{name.replace('_', '-')} must be >= 1")
    if not cfg.lr > 0:
        raise LLMTimeError("--lr must be > 0")
    if not cfg.max_cache_mb > 0:
        raise LLMTimeError("--max-cache-mb must be > 0")
    for role in ("teacher", "student"):
        if getattr(cfg, f"{role}_weights") not in WEIGHT_CHOICES:
            raise LLMTimeError(f"--{role}-weights must be one of {', '.join(WEIGHT_CHOICES)}")
        layers = getattr(cfg, f"{role}_layers")
        if layers is not None and layers < 1:
            raise LLMTimeError(f"--{role}-layers must be >= 1")
    if not cfg.candidates:
        raise LLMTimeError("--grid is empty: give at least one ALPHA,BETA,GAMMA candidate")
    for cap in ("max_train_windows", "max_val_windows"):
        if getattr(cfg, cap) is not None and getattr(cfg, cap) < 1:
            raise LLMTimeError(f"--{cap.replace('_', '-')} must be >= 0 (0 = no cap)")
    return teacher, student


def _row(name: str, flag: str) -> BackboneRow:
    try:
        return resolve_backbone(name)
    except LLMTimeError:
        raise LLMTimeError(f"unknown {flag} {name!r}; choose one of: {', '.join(backbone_names())}") from None


def patient_groups(cfg: PipelineConfig) -> list[tuple[str, Optional[list[str]]]]:
    """(tag, training patients) per CSV row: one per patient, or one pooled group with --all-patients."""
    found = discover(data_root(DataConfig(data=cfg.dataset, root_path=cfg.root_path)))
    ids = cfg.patients or sorted(found, key=lambda p: (int(p), p) if p.isdigit() else (1 << 30, p))
    unknown = [p for p in ids if p not in found]
    if unknown:
        raise LLMTimeError(f"unknown patient id(s) {', '.join(unknown)}; available: {', '.join(sorted(found))}")
    if cfg.all_patients:
        return [("all" if cfg.patients is None else "+".join(ids), cfg.patients)]
    return [(pid, [pid]) for pid in ids]


def _model_config(cfg: PipelineConfig, role: str) -> ModelConfig:
    return ModelConfig(
        llm_model=resolve_backbone(getattr(cfg, role)).name, llm_path=getattr(cfg, f"{role}_path"),
        llm_weights=getattr(cfg, f"{role}_weights"), llm_layers=getattr(cfg, f"{role}_layers"),
        d_model=cfg.d_model, d_ff=cfg.d_ff, n_heads=cfg.n_heads, num_tokens=cfg.num_tokens,
    )


def phase_configs(cfg: PipelineConfig, tag: str, patients: Optional[list[str]]) -> dict[str, RunConfig]:
    """The RunConfig of each training phase: same data, optimiser, schedule and early stopping; own epoch budget."""
    data = DataConfig(data=cfg.dataset, root_path=cfg.root_path, patients=patients,
                      max_train_windows=cfg.max_train_windows, max_val_windows=cfg.max_val_windows)
    folder = Path(cfg.out) / "runs" / f"{safe_name(cfg.dataset)}_{safe_name(tag)}_s{cfg.seed}"

    def run(role: str, phase: str, epochs: int) -> RunConfig:
        train = TrainConfig(batch_size=cfg.batch_size, learning_rate=cfg.lr, train_epochs=epochs,
                            patience=cfg.patience, seed=cfg.seed, mixed_precision=cfg.mixed_precision)
        return RunConfig(model_id=f"distill_{safe_name(tag)}", des=phase, checkpoints=str(folder),
                         results_csv=str(Path(cfg.out) / "runs" / PHASE_CSV_NAME),
                         data=data, model=_model_config(cfg, role), train=train)

    return {"teacher": run("teacher", "teacher", cfg.teacher_epochs),
            "baseline": run("student", "baseline", cfg.student_epochs),
            "distilled": run("student", "distilled", cfg.distill_epochs)}


def _tag(model: ModelConfig) -> str:
    layers = f"-L{model.llm_layers}" if model.llm_layers else ""
    return f"{safe_name(model.llm_model)}{layers}" + ("_random" if model.llm_weights == "random" else "")


def run_names(configs: dict[str, RunConfig], weights: LossWeights, init_from_baseline: bool) -> dict[str, str]:
    teacher, student = _tag(configs["teacher"].model), _tag(configs["baseline"].model)
    init = "_init" if init_from_baseline else ""
    return {"teacher": f"teacher_{teacher}", "baseline": f"baseline_{student}",
            "distilled": f"distilled_{student}_from_{teacher}_{weights.label()}{init}"}


def config_key(cfg: PipelineConfig, configs: dict[str, RunConfig]) -> str:
    """A short hash of everything that determines a row, so a finished row is recognised and skipped."""
    what = {
        "phases": {k: v.to_dict() for k, v in configs.items()},
        "candidates": [w.as_tuple() for w in cfg.candidates],
        "layer_map": cfg.layer_map,
        "init_from_baseline": cfg.init_from_baseline,
        "latency": (cfg.latency_repeats, cfg.latency_threads),
    }
    return hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:12]


def plan(cfg: PipelineConfig) -> str:
    """The phases and configurations a run would execute, without loading any data or model."""
    teacher, student = validate(cfg)
    groups = patient_groups(cfg)
    s_depth, t_depth = cfg.student_layers or student.depth, cfg.teacher_layers or teacher.depth
    pairs = cfg.layer_map or uniform_layer_map(s_depth, t_depth)
    lines = [
        f"distillation plan: {teacher.name} (teacher, {t_depth} layers, {cfg.teacher_weights} weights) -> "
        f"{student.name} (student, {s_depth} layers, {cfg.student_weights} weights); {cfg.dataset}; "
        + (f"one pooled model over {groups[0][0]}" if cfg.all_patients else f"{len(groups)} patient(s), one row each"),
        "objective: alpha*MSE(student, truth) + beta*MSE(student, teacher) + gamma*hidden-state MSE (no temperature)",
        "weights: " + (f"given {cfg.weights.as_tuple()}" if cfg.weights else
                       "chosen on validation MSE among " + "; ".join(str(w.as_tuple()) for w in cfg.grid)),
        f"layer map (student:teacher, {'explicit' if cfg.layer_map else 'uniform'}): {format_layer_map(pairs)}"
        + ("" if cfg.layer_map else " (from table depths; recomputed from the loaded backbones)"),
        f"results: {cfg.csv_path}",
    ]
    for tag, patients in groups:
        configs = phase_configs(cfg, tag, patients)
        lines.append(f"[{tag}]")
        names = run_names(configs, cfg.candidates[0], cfg.init_from_baseline)
        for k, phase in enumerate(("teacher", "baseline", "distilled"), 1):
            rc = configs[phase]
            extra = f" x {len(cfg.candidates)} weight candidates" if phase == "distilled" else ""
            lines.append(f"  {k}. {phase:<9} {rc.model.llm_model} ({rc.train.train_epochs} epochs){extra} -> "
                         f"{Path(rc.checkpoints) / names[phase]}")
        lines.append("  4. evaluate  CPU latency (batch 1, 64), sizes, RMSE/MAE/Clarke, retention, agreement -> CSV row")
    first = phase_configs(cfg, *groups[0])
    compact = lambda obj: json.dumps(asdict(obj), separators=(", ", ": "))  # noqa: E731
    lines += [
        "configs of the first row (train_epochs differ per phase as listed above):",
        f"  data:          {compact(first['teacher'].data)}",
        f"  train:         {compact(first['teacher'].train)}",
        f"  teacher model: {compact(first['teacher'].model)}",
        f"  student model: {compact(first['baseline'].model)}",
    ]
    return "\n".join(lines)


# --- phases ----------------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """A finished training phase: its folder, results row, fit record and the best model (plain TimeLLM)."""

    run_dir: Path
    row: dict[str, Any]
    fit: dict[str, Any]
    model: nn.Module
    reused: bool


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _finished(run_dir: Path, cfg: RunConfig, extra: Optional[dict]) -> bool:
    """Whether ``run_dir`` holds a completed run of exactly this configuration (and distillation settings)."""
    saved = _read_json(run_dir / "config.json")
    done = _read_json(run_dir / "metrics.json")
    if saved is None or done is None or not (run_dir / CHECKPOINT_NAME).is_file():
        return False
    wanted = _plain(cfg.to_dict())
    if {k: saved.get(k) for k in wanted} != wanted:
        return False
    return extra is None or _read_json(run_dir / "distillation.json") == _plain(extra)


def _reuse(run_dir: Path, cfg: RunConfig, splits: Splits) -> Optional[Phase]:
    """Rebuild the best model of a finished run with these splits' scaler, or None if the scaler differs."""
    _, scaler, state, _ = load_checkpoint(run_dir)
    if not (np.allclose(scaler.mean, splits.scaler.mean) and np.allclose(scaler.std, splits.scaler.std)):
        return None
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, cfg.data, splits.scaler, splits.description)
    load_trainable_state(model, state)
    metrics = _read_json(run_dir / "metrics.json") or {}
    tqdm.write(f"reusing finished run {run_dir}")
    return Phase(run_dir, metrics["summary"], metrics["fit"], model.eval(), True)


def train_phase(
    cfg: RunConfig,
    name: str,
    splits: Splits,
    build: Callable[[], nn.Module],
    make_objective: Callable[[], Objective] = lambda: forecast_objective,
    extra: Optional[dict] = None,
) -> Phase:
    """Train (or reuse) one phase through ``exp.run.train_and_test``; ``extra`` marks a distilled run's settings.

    The model and objective are built only when the phase actually trains (a reused run needs neither).
    """
    from exp.run import train_and_test

    run_dir = Path(cfg.checkpoints) / name
    if _finished(run_dir, cfg, extra):
        phase = _reuse(run_dir, cfg, splits)
        if phase is not None:
            return phase
    for stale in ("metrics.json", "distillation.json"):  # their presence marks a finished run
        (run_dir / stale).unlink(missing_ok=True)
    result = train_and_test(cfg, objective=make_objective(), splits=splits, model=build(), name=name)
    model = result.model
    if isinstance(model, DistillStudent):
        _strip_projections(run_dir)
        model = model.student
    if extra is not None:
        write_json(run_dir / "distillation.json", extra)
    fit = (_read_json(run_dir / "metrics.json") or {})["fit"]
    return Phase(run_dir, result.row, fit, model.eval(), False)


def _strip_projections(run_dir: Path) -> None:
    """Leave a plain TimeLLM checkpoint (loadable by evaluate_saved); keep the projections as an extra field."""
    cfg, scaler, state, extra = load_checkpoint(run_dir)
    student, projections = split_state(state)
    extra.pop("distill_projections", None)
    save_checkpoint(run_dir, student, cfg, scaler, **extra, distill_projections=projections)


def _digest(run_dir: Path) -> str:
    digest = hashlib.sha1()
    with open(run_dir / CHECKPOINT_NAME, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _builder(cfg: RunConfig, splits: Splits) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        seed_everything(cfg.train.seed)  # the same initialisation whichever phase ran before
        return build_model(cfg.model, cfg.data, splits.scaler, splits.description)

    return build


# --- one row -----------------------------------------------------------------------------------------------------------


def run_group(cfg: PipelineConfig, tag: str, patients: Optional[list[str]]) -> dict[str, Any]:
    """Teacher -> baseline -> distilled (weight search) -> evaluation for one patient or pooled group."""
    t_start = time.perf_counter()
    configs = phase_configs(cfg, tag, patients)
    splits = build_splits(configs["teacher"].data)
    tqdm.write(f"[{tag}] {len(splits.train)} training, {len(splits.val)} validation, {len(splits.test)} test windows")

    # Both backbones are loaded before any training, so missing weights fail in seconds, not after the teacher.
    teacher_build, student_build = _builder(configs["teacher"], splits), _builder(configs["baseline"], splits)
    probe = student_build()  # also the baseline's model: built right after seeding, exactly as build() would
    s_depth = backbone_depth(probe)

    names = run_names(configs, cfg.candidates[0], cfg.init_from_baseline)
    tqdm.write(f"[{tag}] 1/4 teacher {configs['teacher'].model.llm_model}")
    teacher = train_phase(configs["teacher"], names["teacher"], splits, teacher_build)
    tqdm.write(f"[{tag}] 2/4 student baseline {configs['baseline'].model.llm_model}")
    baseline = train_phase(configs["baseline"], names["baseline"], splits, lambda: probe)
    del probe

    t_depth, t_width = backbone_depth(teacher.model), hidden_width(teacher.model)
    pairs = check_layer_map(cfg.layer_map, s_depth, t_depth) if cfg.layer_map else uniform_layer_map(s_depth, t_depth)
    hidden_needed = any(w.gamma for w in cfg.candidates)
    cache_layers = [t for _, t in pairs] if hidden_needed else []
    need_mb = estimate_bytes(len(splits.train), teacher.model.n_patches, t_width, len(cache_layers),
                             splits.train.pred_len) / 1e6
    if need_mb > cfg.max_cache_mb:
        raise LLMTimeError(
            f"the teacher cache would take {need_mb:.0f} MB (> --max-cache-mb {cfg.max_cache_mb:g}): lower "
            "--max-train-windows, map fewer layers with --layer-map, or use output-only distillation (--gamma 0)"
        )

    cache: Optional[TeacherCache] = None
    candidates: list[tuple[LossWeights, Phase]] = []
    search_seconds = 0.0
    for k, weights in enumerate(cfg.candidates, 1):
        name = run_names(configs, weights, cfg.init_from_baseline)["distilled"]
        used = pairs if weights.gamma else []
        # The teacher (and baseline) checkpoints' digests tie a distilled run to the exact models it learnt from:
        # a retrained teacher in the same folder makes older distilled runs stale.
        extra = {"alpha": weights.alpha, "beta": weights.beta, "gamma": weights.gamma,
                 "layer_map": format_layer_map(used) if used else "none", "teacher_run": str(teacher.run_dir),
                 "teacher_checkpoint_sha1": _digest(teacher.run_dir),
                 "init_from_baseline": _digest(baseline.run_dir) if cfg.init_from_baseline else None}
        tqdm.write(f"[{tag}] 3/4 distilled student, weights {weights.as_tuple()} ({k}/{len(cfg.candidates)})")

        def make_objective(weights: LossWeights = weights, used: LayerPairs = used) -> Objective:
            nonlocal cache
            if cache is None and (weights.beta or weights.gamma):
                tqdm.write(f"[{tag}] caching the teacher's outputs on {len(splits.train)} training windows (once)")
                cache = TeacherCache.build(teacher.model, splits.train, cache_layers,
                                           configs["teacher"].train.eval_batch_size, _autocast(cfg.mixed_precision))
            cached = _layer_subset(cache, [t for _, t in used], cache_layers) if cache is not None else None
            return DistillationObjective(weights, cached)

        phase = train_phase(
            configs["distilled"], name, splits,
            distill_builder(student_build, used, t_width, baseline if cfg.init_from_baseline else None),
            make_objective, extra,
        )
        search_seconds += float(phase.fit["train_seconds"])
        candidates.append((weights, phase))
    chosen_weights, distilled = min(candidates, key=lambda c: c[1].fit["best_val_loss"])  # first wins ties

    tqdm.write(f"[{tag}] 4/4 evaluation (CPU latency over {cfg.latency_repeats} repeats)")
    test = splits.test
    windows = test.__getitems__(list(range(min(LATENCY_WINDOWS, len(test)))))["x"]
    lat = {}
    for role, model in (("teacher", teacher.model), ("student", distilled.model)):
        for batch in (1, LATENCY_WINDOWS):
            repeats = cfg.latency_repeats if batch == 1 else max(3, cfg.latency_repeats // 4)
            lat[f"{role}_latency_b{batch}_ms"] = round(
                latency_ms(model, windows, batch, repeats, cfg.latency_threads), 3)

    t_train, t_total = count_parameters(teacher.model)
    s_train, s_total = count_parameters(distilled.model)
    row: dict[str, Any] = {
        "config_key": config_key(cfg, configs),
        "patient": tag,
        "dataset": cfg.dataset,
        "seed": cfg.seed,
        "teacher": configs["teacher"].model.llm_model,
        "student": configs["baseline"].model.llm_model,
        "teacher_layers": t_depth,
        "student_layers": s_depth,
        "teacher_weights": teacher.model.weights_source,
        "student_weights": distilled.model.weights_source,
        "teacher_params_total": t_total,
        "teacher_params_trainable": t_train,
        "student_params_total": s_total,
        "student_params_trainable": s_train,
        "teacher_size_mb": size_mb(t_total),
        "student_size_mb": size_mb(s_total),
        "teacher_checkpoint_mb": checkpoint_mb(teacher.run_dir),
        "student_checkpoint_mb": checkpoint_mb(distilled.run_dir),
        **lat,
        "speedup_b1": round(lat["teacher_latency_b1_ms"] / lat["student_latency_b1_ms"], 3),
        f"speedup_b{LATENCY_WINDOWS}": round(
            lat[f"teacher_latency_b{LATENCY_WINDOWS}_ms"] / lat[f"student_latency_b{LATENCY_WINDOWS}_ms"], 3),
        "latency_threads": cfg.latency_threads,
    }
    for prefix, phase in (("teacher", teacher), ("baseline", baseline), ("distilled", distilled)):
        for metric in ("rmse_30", "rmse_60", "mae_30", "mae_60", "clarke_ab_30", "clarke_ab_60"):
            row[f"{prefix}_{metric}"] = phase.row[metric]
        for metric in ("mard_30", "mard_60", "lag_30", "lag_60"):  # absent from runs reused from before they existed
            row[f"{prefix}_{metric}"] = phase.row.get(metric)
    row.update({
        "retention_30": _ratio(teacher.row["rmse_30"], distilled.row["rmse_30"]),
        "retention_60": _ratio(teacher.row["rmse_60"], distilled.row["rmse_60"]),
        "agreement_30": agreement(teacher.run_dir, distilled.run_dir, 30),
        "agreement_60": agreement(teacher.run_dir, distilled.run_dir, 60),
        "baseline_agreement_30": agreement(teacher.run_dir, baseline.run_dir, 30),
        "baseline_agreement_60": agreement(teacher.run_dir, baseline.run_dir, 60),
        "alpha": chosen_weights.alpha,
        "beta": chosen_weights.beta,
        "gamma": chosen_weights.gamma,
        "weights_chosen_by": "given" if cfg.weights is not None else f"validation ({len(cfg.candidates)} candidates)",
        "distilled_val_mse": round(float(distilled.fit["best_val_loss"]), 6),
        "baseline_val_mse": round(float(baseline.fit["best_val_loss"]), 6),
        "layer_map": format_layer_map(pairs) if chosen_weights.gamma else "none",
        "init_from_baseline": cfg.init_from_baseline,
        "teacher_train_s": round(float(teacher.fit["train_seconds"]), 1),
        "baseline_train_s": round(float(baseline.fit["train_seconds"]), 1),
        "distill_train_s": round(float(distilled.fit["train_seconds"]), 1),
        "distill_search_s": round(search_seconds, 1),
        "teacher_cache_s": round(cache.seconds, 1) if cache is not None else 0.0,
        "teacher_cache_mb": round(cache.nbytes / 1e6, 2) if cache is not None else 0.0,
        "teacher_epochs": cfg.teacher_epochs,
        "student_epochs": cfg.student_epochs,
        "distill_epochs": cfg.distill_epochs,
        "train_windows": len(splits.train),
        "test_windows": len(test),
        "reused_phases": " ".join(p for p, ph in (("teacher", teacher), ("baseline", baseline)) if ph.reused) or "none",
        "wall_s": round(time.perf_counter() - t_start, 1),
        "teacher_run": str(teacher.run_dir),
        "baseline_run": str(baseline.run_dir),
        "distilled_run": str(distilled.run_dir),
    })
    return row


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 4) if a is not None and b else None


def _autocast(precision: str) -> Optional[torch.dtype]:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def _layer_subset(cache: TeacherCache, layers: list[int], cached: list[int]) -> TeacherCache:
    """A view of the cache holding only ``layers`` (a candidate with gamma 0 needs none)."""
    return replace(cache, hidden=[cache.hidden[cached.index(l)] for l in layers], layers=tuple(layers))


def distill_builder(
    student_build: Callable[[], nn.Module], pairs: LayerPairs, teacher_width: int, init: Optional[Phase]
) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        student = student_build()
        if init is not None:  # --init-from-baseline: start from the trained baseline's weights
            student.load_trainable_state_dict(init.model.trainable_state_dict())
        return DistillStudent(student, pairs, teacher_width)

    return build


def run_pipeline(cfg: PipelineConfig) -> list[dict[str, Any]]:
    """Every row of this configuration; rows already in the CSV (same config_key) are skipped, not recomputed."""
    validate(cfg)
    rows = []
    for tag, patients in patient_groups(cfg):
        key = config_key(cfg, phase_configs(cfg, tag, patients))
        done = finished_row(cfg.csv_path, key)
        if done is not None:
            tqdm.write(f"[{tag}] already in {cfg.csv_path}: skipped")
            rows.append(done)
            continue
        row = run_group(cfg, tag, patients)
        append_row(cfg.csv_path, row)
        rows.append(row)
    return rows


def finished_row(path: Path, key: str) -> Optional[dict[str, Any]]:
    if not path.is_file() or not path.stat().st_size:
        return None
    with locked(path):
        frame = pd.read_csv(path, dtype={"patient": str, "config_key": str})
    hit = frame[frame["config_key"] == key] if "config_key" in frame else frame.iloc[0:0]
    return None if hit.empty else hit.iloc[-1].to_dict()


# --- command line ----------------------------------------------------------------------------------------------------


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad flags become one ``error:`` line and exit status 2, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise LLMTimeError(f"{message} (see --help)")


def _cap(value: int) -> Optional[int]:
    return None if value == 0 else value


def _patients(text: Optional[str]) -> Optional[list[str]]:
    if text is None or text.strip().lower() in ("", "all"):
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by the pipeline and the pair comparison."""
    d = p.add_argument_group("data")
    d.add_argument("--patients", default=None, help="comma-separated patient ids (default: all found)")
    d.add_argument("--all-patients", action="store_true", help="train one pooled model per phase, not one per patient")
    d.add_argument("--dataset", default="simulated",
                   help="'simulated' (bundled cohort) or 'ohio' / 'ohiot1dm' (OhioT1DM, with --root-path)")
    d.add_argument("--root-path", default=None, help="folder of <id>-ws-{training,testing}.xml[.gz] files")
    d.add_argument("--max-train-windows", type=int, default=DEFAULT_MAX_TRAIN_WINDOWS,
                   help="evenly spaced cap on training windows (0 = no cap); also bounds the teacher cache")
    d.add_argument("--max-val-windows", type=int, default=DEFAULT_MAX_VAL_WINDOWS,
                   help="cap on validation windows (0 = no cap); test windows are never capped")
    o = p.add_argument_group("objective")
    o.add_argument("--alpha", type=float, default=None,
                   help="weight of MSE(student, truth); given alone, it means --beta 1-ALPHA --gamma 0")
    o.add_argument("--beta", type=float, default=None, help="weight of MSE(student, teacher forecast)")
    o.add_argument("--gamma", type=float, default=None, help="weight of the hidden-state loss (0 = output-only)")
    o.add_argument("--grid", default=DEFAULT_GRID,
                   help="ALPHA,BETA,GAMMA candidates separated by ';', chosen on validation MSE when "
                        "--alpha/--beta/--gamma are not given")
    o.add_argument("--temperature", type=float, default=None,
                   help="accepted from classification distillation recipes and IGNORED, with a warning: forecasts "
                        "are real numbers, so there is no softmax for a temperature to soften")
    o.add_argument("--init-from-baseline", action="store_true", help="start the distilled student from the baseline")
    o.add_argument("--max-cache-mb", type=float, default=4096.0, help="refuse a teacher hidden-state cache above this")
    t = p.add_argument_group("training (the same for teacher, baseline and distilled student)")
    t.add_argument("--seed", type=int, default=2021)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--patience", type=int, default=3, help="early stopping on validation MSE")
    t.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    m = p.add_argument_group("model")
    m.add_argument("--llm-weights", default="pretrained", choices=list(WEIGHT_CHOICES),
                   help="backbone weights of both models where no real weights exist: 'random' builds the row's "
                        "architecture untrained (marked in the CSV)")
    m.add_argument("--d-model", type=int, default=32)
    m.add_argument("--d-ff", type=int, default=128, help="features read from the backbone (<= its hidden width)")
    m.add_argument("--n-heads", type=int, default=8)
    m.add_argument("--num-tokens", type=int, default=1000, help="text prototypes")
    r = p.add_argument_group("output")
    r.add_argument("--latency-repeats", type=int, default=20, help="timed repeats at batch 1 (a quarter at batch 64)")
    r.add_argument("--latency-threads", type=int, default=1,
                   help="CPU threads while timing (1: on a shared machine more threads mostly time contention)")
    r.add_argument("--out", default="./distillation_runs", help="folder for run folders and the CSV")
    r.add_argument("--dry-run", action="store_true", help="print the plan and configs; train nothing")


def given_weights(args: argparse.Namespace) -> Optional[LossWeights]:
    """The loss weights the flags fix, or None to search --grid. A lone --alpha A is the usual two-term recipe,
    A * truth + (1 - A) * teacher, with no hidden-state term."""
    given = [v is not None for v in (args.alpha, args.beta, args.gamma)]
    if given == [True, False, False]:
        if not 0 <= args.alpha <= 1:
            raise LLMTimeError(f"--alpha {args.alpha:g} given alone must be in [0, 1]: it means "
                               "--beta 1-ALPHA --gamma 0")
        return LossWeights(args.alpha, round(1.0 - args.alpha, 12), 0.0)
    if any(given) and not all(given):
        raise LLMTimeError("give --alpha alone (beta = 1 - alpha, gamma = 0), --alpha, --beta and --gamma together, "
                           "or none (to search --grid on validation)")
    return LossWeights(args.alpha, args.beta, args.gamma) if all(given) else None


def common_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.temperature is not None:
        warnings.warn(f"--temperature {args.temperature:g} is IGNORED: forecasts are real numbers, not a softmax over "
                      "classes, so there is nothing for a temperature to soften (docs/distillation.md)", stacklevel=2)
    return dict(
        patients=_patients(args.patients), all_patients=args.all_patients, dataset=dataset_name(args.dataset),
        root_path=args.root_path, max_train_windows=_cap(args.max_train_windows),
        max_val_windows=_cap(args.max_val_windows), weights=given_weights(args),
        grid=parse_grid(args.grid), init_from_baseline=args.init_from_baseline, max_cache_mb=args.max_cache_mb,
        seed=args.seed, lr=args.lr, batch_size=args.batch_size, patience=args.patience,
        mixed_precision=args.mixed_precision, teacher_weights=args.llm_weights, student_weights=args.llm_weights,
        d_model=args.d_model, d_ff=args.d_ff, n_heads=args.n_heads, num_tokens=args.num_tokens,
        latency_repeats=args.latency_repeats, latency_threads=args.latency_threads, out=args.out,
    )


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        prog="python -m distillation.pipeline",
        description="Distil a large-backbone Time-LLM teacher into a small-backbone student: teacher -> student "
                    "baseline -> distilled student -> evaluation, one CSV row per patient. Loss = alpha*MSE(truth) "
                    "+ beta*MSE(teacher forecast) + gamma*hidden-state MSE. " + NO_REGRESSION_TEMPERATURE,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    b = p.add_argument_group("backbones (short names or Hugging Face ids)")
    b.add_argument("--teacher", required=True, help="teacher backbone row, e.g. bert")
    b.add_argument("--student", required=True, help="student backbone row, e.g. tinybert")
    b.add_argument("--teacher-path", default=None, help="local save_pretrained folder of the teacher backbone")
    b.add_argument("--student-path", default=None, help="local save_pretrained folder of the student backbone")
    b.add_argument("--teacher-layers", type=int, default=None, help="use the teacher's first N layers (llm_layers)")
    b.add_argument("--student-layers", type=int, default=None, help="use the student's first N layers (llm_layers)")
    b.add_argument("--teacher-weights", default=None, choices=list(WEIGHT_CHOICES), help="overrides --llm-weights")
    b.add_argument("--student-weights", default=None, choices=list(WEIGHT_CHOICES), help="overrides --llm-weights")
    b.add_argument("--layer-map", default=None,
                   help="explicit STUDENT:TEACHER hidden-state pairs, e.g. 0:0,1:3,2:6 (0 = embedding output); "
                        "default: student i <-> teacher round(i*T/S)")
    e = p.add_argument_group("epoch budgets")
    e.add_argument("--teacher-epochs", type=int, default=10)
    e.add_argument("--student-epochs", type=int, default=10)
    e.add_argument("--distill-epochs", type=int, default=10)
    add_common_arguments(p)
    p.add_argument("--csv", default=None, help=f"results CSV (default <out>/{CSV_NAME})")
    return p


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    kwargs = common_kwargs(args)
    kwargs["teacher_weights"] = args.teacher_weights or args.llm_weights
    kwargs["student_weights"] = args.student_weights or args.llm_weights
    return PipelineConfig(
        teacher=args.teacher, student=args.student, teacher_path=args.teacher_path, student_path=args.student_path,
        teacher_layers=args.teacher_layers, student_layers=args.student_layers,
        layer_map=parse_layer_map(args.layer_map) if args.layer_map else None,
        teacher_epochs=args.teacher_epochs, student_epochs=args.student_epochs, distill_epochs=args.distill_epochs,
        csv=args.csv, **kwargs,
    )


def print_rows(rows: Sequence[dict[str, Any]]) -> None:
    head = f"{'patient':>10} {'teacher':>10} {'student':>10} {'RMSE30 T/B/D':>22} {'RMSE60 T/B/D':>22} {'speed-up':>8}"
    print(head)
    for r in rows:
        f = lambda p, m: "/".join(f"{r[f'{x}_{m}']:.1f}" for x in p)  # noqa: E731
        trio = ("teacher", "baseline", "distilled")
        print(f"{str(r['patient']):>10} {r['teacher']:>10} {r['student']:>10} {f(trio, 'rmse_30'):>22} "
              f"{f(trio, 'rmse_60'):>22} {r['speedup_b1']:>8.2f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    def body() -> int:
        from run_main import one_line_warning

        warnings.formatwarning = one_line_warning
        args = build_parser().parse_args(argv)
        cfg = config_from_args(args)
        if args.dry_run:
            print(plan(cfg))
            return 0
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        rows = run_pipeline(cfg)
        print_rows(rows)
        print(f"results: {cfg.csv_path}")
        return 0

    return run_cli(body, "interrupted: finished phases are kept and reused on the next run")


if __name__ == "__main__":
    sys.exit(main())
