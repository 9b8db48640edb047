"""One experiment end to end: data -> model -> fit (validation) -> best weights -> test once -> run folder + CSV row.

Callable in-process (the comparison runner and distillation use it) as well as from ``run_main.py``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from data_provider.data_factory import Splits, build_splits, make_loader
from exp.checkpoint import load_checkpoint, load_weights, save_checkpoint
from exp.config import RunConfig
from exp.evaluation import forecasts_mgdl, score, write_outputs
from exp.trainer import FitResult, Objective, Trainer, count_parameters, forecast_objective
from models import build_model, model_uses_llm
from models.backbones import resolve_backbone, safe_name
from utils.io import write_json
from utils.metrics import summary_row
from utils.errors import LLMTimeError
from utils.results import append_row, check_appendable
from utils.seed import seed_everything

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "transformers", "accelerate", "deepspeed", "numpy", "pandas", "scikit-learn", "simglucose")


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    row: dict[str, Any]
    model: nn.Module
    splits: Splits


def run_name(cfg: RunConfig) -> str:
    """A deterministic folder name: the same configuration writes to the same place."""
    d, m = cfg.data, cfg.model
    patients = "all" if not d.patients else "-".join(d.patients) if len(d.patients) <= 3 else f"{len(d.patients)}p"
    backbone = f"_{safe_name(m.llm_model)}" + (f"-L{m.llm_layers}" if m.llm_layers else "") if uses_llm(cfg) else ""
    random = "_random" if uses_llm(cfg) and m.llm_weights == "random" else ""
    return (
        f"{cfg.model_id}_{m.model}{backbone}{random}_{d.data}_{patients}_sl{d.seq_len}_pl{d.pred_len}"
        f"_{cfg.des}_s{cfg.train.seed}"
    )


def uses_llm(cfg: RunConfig) -> bool:
    return model_uses_llm(cfg.model.model)


def provenance() -> dict[str, Any]:
    """Package versions, git commit and machine, so a run folder says exactly what produced it."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit, dirty = _git("rev-parse", "HEAD"), _git("status", "--porcelain", "--untracked-files=no")
    return {"packages": versions, "git_commit": commit or None,
            # a commit alone does not say what ran when tracked files had uncommitted edits
            "git_dirty": None if commit is None else bool(dirty),
            "python": platform.python_version(), "machine": platform.machine(), "cuda": torch.cuda.is_available()}


def _git(*args: str) -> Optional[str]:
    """A git command's output in the repository, or None where git or the repository is unavailable."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# Settings a --resume may change: where outputs go and how data are fed, never what is computed.
RESUME_FREE = {"is_training", "checkpoint", "input", "output", "checkpoints", "results_csv", "train.resume",
               "train.num_workers"}


def check_resumable(run_dir: Path, cfg: RunConfig) -> None:
    """--resume continues only the configuration that wrote the run folder; any other would mix two runs."""
    saved = run_dir / "config.json"
    if not saved.is_file():
        return
    try:
        old = _flat(json.loads(saved.read_text()))
    except (OSError, ValueError):
        raise LLMTimeError(f"{saved} is unreadable: rerun without --resume to start {run_dir.name} afresh") from None
    new = _flat(json.loads(json.dumps(cfg.to_dict(), default=str)))
    changed = [f"{k} {old[k]!r} -> {new[k]!r}" for k in new if k in old and k not in RESUME_FREE and old[k] != new[k]]
    if changed:
        raise LLMTimeError(
            f"--resume: {run_dir} was trained with other settings ({'; '.join(changed[:3])}); "
            "restore them, or rerun without --resume to start afresh"
        )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k in ("provenance", "weights_source") and not prefix:
            continue
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def weights_source(model: nn.Module) -> str:
    return getattr(model, "weights_source", "none")


def train_and_test(
    cfg: RunConfig,
    objective: Objective = forecast_objective,
    splits: Optional[Splits] = None,
    model: Optional[nn.Module] = None,
    name: Optional[str] = None,
) -> RunResult:
    """Train on the training windows, select on validation, test the best weights once on every test window."""
    t_start = time.perf_counter()
    if model is None and uses_llm(cfg):  # uses_llm resolves the model name: typos fail before data loading
        resolve_backbone(cfg.model.llm_model)
    seed_everything(cfg.train.seed)
    splits = splits or build_splits(cfg.data)
    if model is None:
        model = build_model(cfg.model, cfg.data, splits.scaler.glucose, splits.description)
    run_dir = Path(cfg.checkpoints) / (name or run_name(cfg))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LLMTimeError(
            f"cannot create run folder {run_dir} ({e.strerror}): pass --checkpoints a writable folder"
        ) from None
    results_csv = Path(cfg.results_csv or Path(cfg.checkpoints) / "results.csv")
    check_appendable(results_csv)  # fail now, not after hours of training
    if cfg.train.resume:
        check_resumable(run_dir, cfg)
    write_json(run_dir / "config.json", {**cfg.to_dict(), "provenance": provenance(),
                                          "weights_source": weights_source(model)})
    if hasattr(model, "fit_closed_form"):
        model.fit_closed_form(splits.train)
    t = cfg.train
    train_loader = make_loader(splits.train, t.batch_size, shuffle=True, seed=t.seed, num_workers=t.num_workers)
    val_loader = make_loader(splits.val, t.eval_batch_size, shuffle=False, seed=t.seed)
    trainer = Trainer(t, model, objective)

    def keep_best(state: dict) -> None:
        save_checkpoint(run_dir, state, cfg, splits.scaler, weights_source=weights_source(model))

    resume_path = run_dir / "last.pt"
    if not t.resume and resume_path.exists():
        resume_path.unlink()  # a fresh run never continues an old one by accident
    elif t.resume and not resume_path.exists():
        warnings.warn(f"--resume: {run_dir} holds no unfinished training to continue; training from the start",
                      stacklevel=2)
    fit = trainer.fit(train_loader, val_loader, on_improve=keep_best, resume_path=resume_path)
    if fit.epochs_run == 0:
        keep_best({k: v.detach().cpu() for k, v in model.state_dict().items()})
    test_loader = make_loader(splits.test, t.eval_batch_size, shuffle=False, seed=t.seed)
    t0 = time.perf_counter()
    pred, index = trainer.predict(test_loader)
    test_seconds = time.perf_counter() - t0
    final_model = trainer.accelerator.unwrap_model(trainer.model)
    if not trainer.is_main:
        return RunResult(run_dir, {}, {}, final_model, splits)
    forecast = forecasts_mgdl(pred, index, splits.test, splits.scaler)
    metrics = score(forecast, splits.test, splits.scaler)
    label = f"{cfg.model.model}" + (f" ({cfg.model.llm_model}, {weights_source(model)})" if uses_llm(cfg) else "")
    write_outputs(run_dir, forecast, splits.test, splits.scaler, label)
    trainable, total = count_parameters(final_model)
    row = results_row(cfg, run_dir, model, metrics, fit, trainable, total, len(splits.test) / max(test_seconds, 1e-9),
                      time.perf_counter() - t_start, splits)
    write_json(run_dir / "metrics.json", {"summary": row, "fit": fit.__dict__, **metrics})
    append_row(results_csv, row)
    # Finished: the resume state (weights + optimiser moments, ~4x the checkpoint, ~0.5 GB for Time-LLM) has no use.
    resume_path.unlink(missing_ok=True)
    return RunResult(run_dir, metrics, row, final_model, splits)


def evaluate_saved(run_dir: str | Path, overrides: Optional[RunConfig] = None) -> RunResult:
    """Rebuild a saved run's model from its checkpoint and score it again on its test windows."""
    cfg, scaler, state, _ = load_checkpoint(run_dir)
    if overrides is not None:
        cfg.train.eval_batch_size = overrides.train.eval_batch_size
        cfg.train.mixed_precision = overrides.train.mixed_precision
    seed_everything(cfg.train.seed)
    splits = build_splits(cfg.data, scaler=scaler)
    model = build_model(cfg.model, cfg.data, scaler.glucose, splits.description)
    load_weights(model, state, run_dir)
    trainer = Trainer(cfg.train, model)
    pred, index = trainer.predict(make_loader(splits.test, cfg.train.eval_batch_size, shuffle=False, seed=0))
    forecast = forecasts_mgdl(pred, index, splits.test, scaler)
    metrics = score(forecast, splits.test, scaler)
    trainable, total = count_parameters(model)
    fit = FitResult(0, float("nan"), 0)
    row = results_row(cfg, Path(run_dir), model, metrics, fit, trainable, total, float("nan"), float("nan"), splits)
    write_json(Path(run_dir) / "metrics_eval.json", {"summary": row, **metrics})
    return RunResult(Path(run_dir), metrics, row, model, splits)


def results_row(
    cfg: RunConfig, run_dir: Path, model: nn.Module, metrics: dict, fit: FitResult, trainable: int, total: int,
    test_windows_per_s: float, wall_seconds: float, splits: Splits,
) -> dict[str, Any]:
    llm = uses_llm(cfg)
    return {
        "run_id": run_dir.name,
        "model": cfg.model.model,
        "backbone": cfg.model.llm_model if llm else "",
        "llm_layers": (cfg.model.llm_layers or getattr(getattr(model, "backbone_row", None), "depth", None)) if llm else None,
        "weights_source": weights_source(model),
        "data": cfg.data.data,
        "patients": " ".join(splits.train_patients),
        "test_patients": " ".join(splits.test_patients),
        "seed": cfg.train.seed,
        **summary_row(metrics),
        "trainable_params": trainable,
        "total_params": total,
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "train_windows": len(splits.train),
        "test_windows": len(splits.test),
        "train_seconds": round(fit.train_seconds, 2),
        "train_windows_per_s": round(fit.train_windows_per_s, 1),
        "test_windows_per_s": round(test_windows_per_s, 1),
        "wall_seconds": round(wall_seconds, 1),
        "mixed_precision": cfg.train.mixed_precision,
        "deepspeed": cfg.train.use_deepspeed,
    }


def format_table(result: RunResult) -> str:
    """The short table printed at the end of a run."""
    m = result.metrics
    rows = [f"{'patient':>8}  {'RMSE30':>7}  {'RMSE60':>7}  {'MAE30':>6}  {'MAE60':>6}"]
    for pid, pm in m["per_patient"].items():
        rows.append(f"{pid:>8}  {_f(pm['rmse_30']):>7}  {_f(pm['rmse_60']):>7}  {_f(pm['mae_30']):>6}  {_f(pm['mae_60']):>6}")
    mean = m["mean_over_patients"]
    rows.append(f"{'mean':>8}  {_f(mean['rmse_30']):>7}  {_f(mean['rmse_60']):>7}  {_f(mean['mae_30']):>6}  {_f(mean['mae_60']):>6}")
    r = result.row
    rows.append(
        f"Clarke A+B: {_f(r['clarke_ab_30'])}% (30 min), {_f(r['clarke_ab_60'])}% (60 min); "
        f"weights: {r['weights_source']}; trainable {r['trainable_params']:,} of {r['total_params']:,} parameters"
    )
    if r["weights_source"] == "random":
        rows.insert(0, "*** RANDOM BACKBONE WEIGHTS: not a pretrained language model ***")
    return "\n".join(rows)


def _f(v: Optional[float]) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.2f}"
