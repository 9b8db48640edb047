"""One experiment end to end: data -> model -> fit (validation) -> best weights -> test once -> run folder + CSV row.

Callable in-process (the comparison runner and distillation use it) as well as from ``run_main.py``.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from data_provider.data_factory import Splits, build_splits, fit_windows, make_loader, windows_per_epoch
from exp.accelerator import device_name
from exp.checkpoint import load_checkpoint, model_from_state, save_checkpoint
from configs import RunConfig
from configs.identity import identity
from exp.curves import convergence, save_learning_curve
from exp.evaluation import forecasts_mgdl, persistence_forecast, score, write_outputs
from exp.objective import Objective
from exp.reuse import (CHECKPOINT_HASH, changed_settings, finished_run, invalidate_outputs, mark_finished,
                       read_json, rebuild)
from exp.safe_load import load_weights_only
from exp.trainer import FitResult, Trainer, count_parameters, discard_resume_state
from models import build_model, model_uses_llm
from models.backbones import resolve_backbone, safe_name
from utils.cgm import NAMED_HORIZONS_MIN
from utils.io import write_json
from utils.metrics import summary_row
from utils.errors import LLMTimeError
from utils.results import append_row, check_appendable, locked
from utils.seed import seed_everything

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "transformers", "accelerate", "deepspeed", "numpy", "pandas", "scikit-learn", "simglucose")


@dataclass
class RunResult:
    """A finished run, trained or reused: its folder, test metrics, results row, best model and splits, and its fit
    record (``FitResult`` fields as metrics.json keeps them). Distillation's phases are runs too: the report reads
    ``fit`` (validation loss, training time) and ``reused`` (whether the run was found finished instead of trained)."""

    run_dir: Path
    metrics: dict[str, Any]
    row: dict[str, Any]
    model: nn.Module
    splits: Splits
    fit: dict[str, Any] = field(default_factory=dict)
    reused: bool = False


def run_name(cfg: RunConfig) -> str:
    """The run folder's name: one per result-relevant configuration.

    A readable prefix (model and its closed-form base, backbone, data, patients, window lengths, tag, seed), then a
    hash of every setting that can change results (``config_hash``), so runs differing in any other hyper-parameter
    (learning rate, d_model, patch_len, prompt, features, schedule, ...) never overwrite each other; then Time-LLM's
    ``-<model_comment>``.
    """
    return f"{_readable_name(cfg)}_{config_hash(cfg)}{_comment(cfg)}"


def _readable_name(cfg: RunConfig) -> str:
    d, m = cfg.data, cfg.model
    patients = "all" if not d.patients else "-".join(d.patients) if len(d.patients) <= 3 else f"{len(d.patients)}p"
    backbone = f"_{safe_name(m.llm_model)}" + (f"-L{m.llm_layers}" if m.llm_layers else "") if uses_llm(cfg) else ""
    random = "_random" if uses_llm(cfg) and m.llm_weights == "random" else ""
    base = f"-on-{m.base}" if m.base != "none" else ""
    return (
        f"{cfg.model_id}_{m.model}{base}{backbone}{random}_{d.data}_{patients}_sl{d.seq_len}_pl{d.pred_len}"
        f"_{cfg.des}_s{cfg.train.seed}"
    )


def _comment(cfg: RunConfig) -> str:
    return f"-{safe_name(cfg.model_comment)}" if cfg.model_comment else ""


def config_hash(cfg: RunConfig) -> str:
    """8 hex digits of the run's identity (``configs.identity``): its result-relevant settings that differ from
    their defaults, so a new setting with a default renames no run folder."""
    return identity(cfg, digits=8)


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


def check_resumable(run_dir: Path, cfg: RunConfig) -> None:
    """--resume continues only the configuration that wrote the run folder; any other would mix two runs.

    Other settings name another folder, so when ``run_dir`` does not exist yet, the folders of the same readable
    name with another settings hash (unfinished ones first) are what the user most likely meant to continue.
    """
    saved = run_dir / "config.json"
    if not saved.is_file():
        if run_dir.name != run_name(cfg):  # a name chosen by the caller (the comparison runner): nothing to guess
            return
        pattern = re.escape(_readable_name(cfg)) + r"_[0-9a-f]{8}" + re.escape(_comment(cfg))
        others = sorted((p for p in run_dir.parent.glob("*/config.json") if re.fullmatch(pattern, p.parent.name)),
                        key=lambda p: ((p.parent / "last.pt").is_file(), p.stat().st_mtime), reverse=True)
        if not others:
            return
        saved = others[0]
    old = read_json(saved)
    if old is None:
        raise LLMTimeError(f"{saved} is unreadable: rerun without --resume to start {run_dir.name} afresh")
    changed = changed_settings(old, cfg)
    if changed:
        raise LLMTimeError(
            f"--resume: {saved.parent} was trained with other settings ({'; '.join(changed[:3])}); "
            "restore them, or rerun without --resume to start afresh"
        )


def train_and_test(
    cfg: RunConfig,
    objective: Optional[Objective] = None,
    splits: Optional[Splits] = None,
    model: Optional[nn.Module] = None,
    name: Optional[str] = None,
    reuse: bool = False,
) -> RunResult:
    """Train on the training windows, select on validation, test the best weights once on every test window.

    With ``reuse``, a run folder that already holds a finished run of the same result-relevant settings (and the
    same data scaling) is returned as saved, its model rebuilt from the checkpoint: nothing trains or is scored again.
    """
    t_start = time.perf_counter()
    if model is None and uses_llm(cfg):  # uses_llm resolves the model name: typos fail before data loading
        resolve_backbone(cfg.model.llm_model)
    seed_everything(cfg.train.seed)
    splits = splits or build_splits(cfg.data)
    run_dir = Path(cfg.checkpoints) / (name or run_name(cfg))
    if not reuse:
        return _fit_and_test(cfg, objective, splits, model, run_dir, t_start)
    with locked(run_dir):  # a second grid process on the same run waits for it, then reuses it
        done = reused_result(run_dir, cfg, splits)
        return done if done is not None else _fit_and_test(cfg, objective, splits, model, run_dir, t_start)


def _fit_and_test(cfg: RunConfig, objective: Optional[Objective], splits: Splits, model: Optional[nn.Module],
                  run_dir: Path, t_start: float) -> RunResult:
    """``train_and_test``'s training, selection and scoring into ``run_dir``, on splits already built after seeding."""
    if model is None:
        model = build_model(cfg.model, cfg.data, splits.scaler, splits.description)
    results_csv = prepare_run_dir(run_dir, cfg)
    write_json(run_dir / "config.json", {**cfg.to_dict(), "provenance": provenance(),
                                          "weights_source": model.weights_source})
    t = cfg.train
    model.fit_closed_form(fit_windows(splits, t.seed))
    train_loader = make_loader(splits.train, t.batch_size, shuffle=True, seed=t.seed, num_workers=t.num_workers,
                               per_epoch=splits.train_per_epoch)
    val_loader = make_loader(splits.val, t.eval_batch_size, shuffle=False, seed=t.seed)
    trainer = Trainer(t, model, objective, log_dir=run_dir)

    def keep_best(state: dict) -> None:
        save_checkpoint(run_dir, state, cfg, splits.scaler, weights_source=model.weights_source)

    resume_path = run_dir / "last.pt"
    if not t.resume:
        say_discarded(resume_path)
        discard_resume_state(resume_path)  # a fresh run never continues an old one by accident
        shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)  # nor mixes its curves with an old one's
    elif not resume_path.exists():
        warnings.warn(f"--resume: {run_dir} holds no unfinished training to continue; training from the start",
                      stacklevel=2)
    fit = trainer.fit(train_loader, val_loader, on_improve=keep_best, resume_path=resume_path)
    if fit.epochs_run == 0:
        keep_best({k: v.detach().cpu() for k, v in model.state_dict().items()})
    test_loader = make_loader(splits.test, t.eval_batch_size, shuffle=False, seed=t.seed)
    t0 = time.perf_counter()
    pred, index = trainer.predict(test_loader)
    test_seconds = time.perf_counter() - t0
    final_model = trainer.release()
    if not trainer.is_main:
        return RunResult(run_dir, {}, {}, final_model, splits, fit.__dict__)
    forecast = forecasts_mgdl(pred, index, splits.test, splits.scaler, source=run_dir)
    metrics = score(forecast, splits.test)
    label = f"{cfg.model.model}" + (f" ({cfg.model.llm_model}, {model.weights_source})" if uses_llm(cfg) else "")
    write_outputs(run_dir, forecast, splits.test, label)
    trainable, total = count_parameters(final_model)
    row = results_row(cfg, run_dir, model, metrics, fit, trainable, total, len(splits.test) / max(test_seconds, 1e-9),
                      time.perf_counter() - t_start + fit.earlier_wall_seconds, splits)
    persistence = score(persistence_forecast(splits.test, splits.scaler), splits.test)
    row.update({f"persistence_{k}": persistence["mean_over_patients"][k]
                for k in ("rmse_30", "rmse_60", "mae_30", "mae_60")})
    curve = convergence(fit.history, t.patience)
    row["convergence"], row["capped"] = curve.verdict, curve.capped
    save_learning_curve(fit.history, run_dir / "learning_curve.png", f"{label}: {curve.message()}")
    metrics.update(convergence=curve.to_dict(), persistence=persistence)
    append_row(results_csv, row)  # before the mark of a finished run, so a finished run always has its row
    mark_finished(run_dir, {"summary": row, "fit": fit.__dict__, **metrics})
    # Finished: the resume state (weights + optimiser moments, ~4x the checkpoint, ~0.5 GB for Time-LLM) has no use.
    discard_resume_state(resume_path)
    return RunResult(run_dir, metrics, row, final_model, splits, fit.__dict__)


def prepare_run_dir(run_dir: Path, cfg: RunConfig) -> Path:
    """Make ``run_dir`` ready to train into and return the results CSV: what would fail after hours of training
    fails now, and the outputs of the weights about to be replaced go (``exp.reuse.invalidate_outputs``), so a run
    stopped before it finishes never leaves old scores beside new weights."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LLMTimeError(
            f"cannot create run folder {run_dir} ({e.strerror}): pass --checkpoints a writable folder"
        ) from None
    results_csv = Path(cfg.results_csv or Path(cfg.checkpoints) / "results.csv")
    check_appendable(results_csv)
    if cfg.train.resume:
        check_resumable(run_dir, cfg)
    invalidate_outputs(run_dir)
    return results_csv


def say_discarded(resume_path: Path) -> None:
    """Warn, in one line, that a fresh run is about to discard an interrupted run's resume state (``last.pt``),
    which ``--resume`` would have continued: hours of training should not go without a word."""
    if not resume_path.is_file():
        return
    try:
        saved = load_weights_only(resume_path, "", mmap=True)
        epoch = f"epoch {saved['epoch']}" if isinstance(saved, dict) and "epoch" in saved else "epoch unknown"
    except LLMTimeError:  # unreadable: discarded all the same, there is nothing in it to continue
        epoch = "unreadable"
    warnings.warn(f"{resume_path.parent} held an interrupted run ({epoch}); starting afresh, its resume state is "
                  "discarded; use --resume to continue it", stacklevel=2)


def reused_result(run_dir: Path, cfg: RunConfig, splits: Splits, extra: Optional[dict] = None) -> Optional[RunResult]:
    """The finished run in ``run_dir`` as ``train_and_test`` returned it, or None when there is none to reuse (or, with
    ``extra``, none written with those extra settings: ``exp.reuse.finished_run``)."""
    saved = finished_run(run_dir, cfg, extra)
    model = rebuild(run_dir, cfg, splits) if saved is not None else None
    if model is None:
        return None
    metrics = {k: v for k, v in saved.items() if k not in ("summary", "fit", CHECKPOINT_HASH)}
    return RunResult(run_dir, metrics, saved["summary"], model.eval(), splits, saved["fit"], reused=True)


def evaluate_saved(run_dir: str | Path, overrides: Optional[RunConfig] = None) -> RunResult:
    """Rebuild a saved run's model from its checkpoint and score it again on its test windows."""
    cfg, scaler, state, _ = load_checkpoint(run_dir)
    if overrides is not None:
        cfg.train.eval_batch_size = overrides.train.eval_batch_size
        cfg.train.mixed_precision = overrides.train.mixed_precision
    seed_everything(cfg.train.seed)
    splits = build_splits(cfg.data, scaler=scaler)
    model = model_from_state(cfg, scaler, splits.description, state, run_dir)
    trainer = Trainer(cfg.train, model)
    pred, index = trainer.predict(make_loader(splits.test, cfg.train.eval_batch_size, shuffle=False, seed=0))
    forecast = forecasts_mgdl(pred, index, splits.test, scaler, source=run_dir)
    metrics = score(forecast, splits.test)
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
        "llm_layers": (cfg.model.llm_layers or model.backbone_row.depth) if llm else None,
        "weights_source": model.weights_source,
        "data": cfg.data.data,
        "patients": " ".join(splits.train_patients),
        "test_patients": " ".join(splits.test_patients),
        "seed": cfg.train.seed,
        **summary_row(metrics),
        "trainable_params": trainable,
        "total_params": total,
        "best_epoch": fit.best_epoch,
        "best_val_loss": fit.best_val_loss,
        "epochs_run": fit.epochs_run,
        "train_windows": len(splits.train),
        "train_windows_per_epoch": windows_per_epoch(splits),
        "train_windows_seen": fit.windows_seen,
        "test_windows": len(splits.test),
        "train_seconds": round(fit.train_seconds, 2),
        "train_windows_per_s": round(fit.train_windows_per_s, 1),
        "test_windows_per_s": round(test_windows_per_s, 1),
        "wall_seconds": round(wall_seconds, 1),
        "mixed_precision": cfg.train.mixed_precision,
        "deepspeed": cfg.train.use_deepspeed,
        "device": device_name(),  # the machine that finished the run: its times are this machine's
        # the settings that most often tell runs apart; config_hash (also in run_id) covers all of them
        "features": "MS" if cfg.data.covariates else "S",
        "seq_len": cfg.data.seq_len,
        "pred_len": cfg.data.pred_len,
        "patch_len": cfg.model.patch_len,
        "stride": cfg.model.stride,
        "d_model": cfg.model.d_model,
        "d_ff": cfg.model.d_ff,
        "n_heads": cfg.model.n_heads,
        "use_prompt": cfg.model.use_prompt,
        "learning_rate": cfg.train.learning_rate,
        "lradj": cfg.train.lradj,
        "batch_size": cfg.train.batch_size,
        "train_epochs": cfg.train.train_epochs,
        "config_hash": config_hash(cfg),
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
    if "persistence_rmse_30" in r:  # training runs: the last reading, held, on the same test windows
        rows.append(f"{'persist.':>8}  {_f(r['persistence_rmse_30']):>7}  {_f(r['persistence_rmse_60']):>7}  "
                    f"{_f(r['persistence_mae_30']):>6}  {_f(r['persistence_mae_60']):>6}   (last reading held; "
                    f"mean over patients; {_beats(r)})")
    rows.append(
        f"Clarke A+B: {_f(r['clarke_ab_30'])}% (30 min), {_f(r['clarke_ab_60'])}% (60 min); "
        f"weights: {r['weights_source']}; trainable {r['trainable_params']:,} of {r['total_params']:,} parameters"
    )
    rows.append(
        f"MARD: {_f(r['mard_30'])}% (30 min), {_f(r['mard_60'])}% (60 min); time lag: {_f(r['lag_30'])} min "
        f"(30 min), {_f(r['lag_60'])} min (60 min); means over patients"
    )
    for event, rule in (("hypo", "< 70"), ("hyper", "> 180")):
        rows.append(f"{event} ({rule} mg/dL), all points: " + "; ".join(
            f"{minutes} min sensitivity {_f(r[f'pooled_{event}_sensitivity_{minutes}'])}, precision "
            f"{_f(r[f'pooled_{event}_precision_{minutes}'])}, MCC {_f(r[f'pooled_{event}_mcc_{minutes}'])}"
            for minutes in NAMED_HORIZONS_MIN))
    if "convergence" in m:
        rows.append(m["convergence"]["message"] + "; curve: learning_curve.png")
    if r["weights_source"] == "random":
        rows.insert(0, "*** RANDOM BACKBONE WEIGHTS: not a pretrained language model ***")
    return "\n".join(rows)


def _beats(row: dict) -> str:
    """Persistence line's verdict over the named horizons the run scores (a 30-minute horizon has no 60)."""
    scored = [m for m in NAMED_HORIZONS_MIN if _f(row.get(f"rmse_{m}")) != "-"]
    won = [m for m in scored if row[f"rmse_{m}"] < row[f"persistence_rmse_{m}"]]
    if not won:
        return "the model does NOT beat it"
    where = " and ".join(str(m) for m in won) + " min"
    return f"the model beats it at {where}" + ("" if won == scored else " only")


def _f(v: Optional[float]) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.2f}"
