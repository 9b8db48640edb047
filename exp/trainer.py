"""The one training engine: accelerate (optionally DeepSpeed ZeRO-2) with mixed precision, schedules and early stopping.

``run_main.py``, the baselines and distillation all train through ``Trainer``; what differs between them is the
objective (``exp.objective.Objective``), so a distilled student and its baseline see the same optimiser, schedule,
epoch budget and early stopping. The best epoch is chosen on validation loss only; its trainable weights are kept and
restored before anything is tested.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from configs import TrainConfig
from exp.accelerator import make_accelerator, remove_autocast_forward
from exp.objective import Objective
from exp.schedules import after_validation, make_schedule
from exp.safe_load import load_resume_state
from models.base import Forecaster
from utils.io import atomic_file
from utils.progress import progress


def trainable_state(model: Forecaster) -> dict[str, torch.Tensor]:
    """What a checkpoint keeps: the trainable weights (never a frozen backbone), detached CPU copies."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.trainable_state_dict().items()}


def load_trainable_state(model: Forecaster, state: dict[str, torch.Tensor]) -> None:
    """Put a ``trainable_state`` back into the model (best epoch, resume, a saved run)."""
    model.load_trainable_state_dict(state)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


@dataclass
class FitResult:
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    train_windows_per_s: float = 0.0
    earlier_wall_seconds: float = 0.0  # wall time spent by earlier, interrupted parts of a resumed fit
    windows_seen: int = 0  # training-window presentations over all epochs run (the budget a comparison equalises)


@dataclass
class _Progress:
    """What a fit carries from epoch to epoch, and what its resume file puts back: the result so far, the best
    epoch's weights, the early-stopping count, windows and seconds trained, the next epoch, earlier wall time."""

    best: FitResult = field(default_factory=lambda: FitResult(-1, math.inf, 0))
    best_state: Optional[dict] = None
    bad_epochs: int = 0
    windows: int = 0
    seconds: float = 0.0
    first_epoch: int = 1
    earlier_wall: float = 0.0


def deepspeed_state_dir(resume_path: Path) -> Path:
    """Where a DeepSpeed run keeps the model and optimiser part of its resume state (beside ``last.pt``)."""
    return Path(resume_path).with_name(Path(resume_path).stem + "_deepspeed")


def discard_resume_state(resume_path: Path) -> None:
    """Remove a run's resume state (``last.pt`` and, for DeepSpeed runs, its state folder)."""
    Path(resume_path).unlink(missing_ok=True)
    shutil.rmtree(deepspeed_state_dir(resume_path), ignore_errors=True)


def _get_rng(generator: Optional[torch.Generator]) -> dict:
    """Every random state, as plain lists, numbers and tensors, so the resume file loads with weights_only=True."""
    numpy = np.random.get_state(legacy=False)
    numpy["state"] = {**numpy["state"], "key": numpy["state"]["key"].tolist()}
    return {"python": random.getstate(), "numpy": numpy, "torch": torch.get_rng_state(),
            "loader": generator.get_state() if generator is not None else None}


def _set_rng(state: dict, generator: Optional[torch.Generator]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if generator is not None and state["loader"] is not None:
        generator.set_state(state["loader"])


class Trainer:
    """Fits a model with early stopping on validation and predicts with the best weights."""

    def __init__(self, cfg: TrainConfig, model: Forecaster, objective: Optional[Objective] = None,
                 log_dir: Optional[Path] = None):
        """``objective`` defaults to the forecast loss (``Objective()``)."""
        self.cfg = cfg
        self.objective = objective if objective is not None else Objective()
        self.accelerator = make_accelerator(cfg, log_dir)
        self.model = model
        self._prepared = False

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def unwrap(self, model: Optional[nn.Module] = None) -> Forecaster:
        """The bare model under accelerate's wrappers.

        accelerate's ``unwrap_model`` imports DeepSpeed whenever it is installed (printing DeepSpeed's accelerator
        warning in every CPU run), so it serves DeepSpeed runs only; otherwise only (D)DP can wrap the model.
        """
        model = self.model if model is None else model
        if self.cfg.use_deepspeed:
            return self.accelerator.unwrap_model(model)
        while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        return model

    def release(self) -> Forecaster:
        """The trained model as it leaves the engine: unwrapped, and running in its own precision again.

        With mixed precision, accelerate's ``prepare`` replaces the model's ``forward`` in place by one that runs
        under autocast. Left there, a model handed on (to latency timing, an ONNX export, a distillation pair) would
        silently run in bf16 where the same model loaded from its checkpoint runs in float32, and an ONNX export would
        trace bf16 casts that ONNX Runtime rejects. Call it last: the engine's own loops expect the autocast.
        """
        model = self.unwrap()
        remove_autocast_forward(model)
        return model

    def _log(self, values: dict, step: int) -> None:
        """Send values to the --report_to trackers (none by default)."""
        if self.accelerator.log_with:
            self.accelerator.log(values, step=step)

    def _bar(self, iterable, **kw):
        return progress(iterable, show=self.is_main, leave=False, **kw)

    def fit(
        self,
        train: DataLoader,
        val: DataLoader,
        on_improve: Optional[Callable[[dict], None]] = None,
        resume_path: Optional[Path] = None,
    ) -> FitResult:
        """Train for up to ``train_epochs``; keep and restore the epoch with the lowest validation loss.

        With ``resume_path``, the complete training state (trainable weights, optimiser, schedule, RNG and shuffling
        states, early-stopping state, epoch counter) is written there after every epoch, and a run that finds the
        file continues after its last completed epoch, reaching the same result as an uninterrupted run.
        """
        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:  # closed-form or parameter-free models: nothing to optimise
            val_loss = self.evaluate_loss(val)
            return FitResult(0, val_loss, 0, [{"epoch": 0, "val_loss": val_loss}])
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        model, optimizer, train_loader, val_loader = self.accelerator.prepare(self.model, optimizer, train, val)
        self.model, self._prepared = model, True
        if self.accelerator.log_with:
            self.accelerator.init_trackers("tensorboard")
        steps = len(train_loader) if cfg.max_steps_per_epoch is None else min(len(train_loader), cfg.max_steps_per_epoch)
        scheduler = make_schedule(cfg, optimizer, steps)
        run, fit_start = _Progress(), time.perf_counter()
        if resume_path is not None and Path(resume_path).is_file():
            run = self._restore(Path(resume_path), model, optimizer, scheduler, train.generator)
        epoch = run.first_epoch - 1
        for epoch in range(run.first_epoch, cfg.train_epochs + 1):
            losses, seen, elapsed = self._train_epoch(model, train_loader, optimizer, scheduler, epoch, steps)
            run.windows, run.seconds = run.windows + seen, run.seconds + elapsed
            val_loss = self.evaluate_loss(val_loader)
            after_validation(scheduler, val_loss)  # the plateau schedule halves its rate from the next step on
            self._record_epoch(run.best, epoch, losses, val_loss, scheduler.get_last_lr()[0], elapsed, seen, steps)
            stop = self._early_stopping(run, epoch, val_loss, model, on_improve)
            if resume_path is not None:
                self._save_resume(
                    Path(resume_path), model, optimizer,
                    {"epoch": epoch, "scheduler": scheduler.state_dict(), "rng": _get_rng(train.generator),
                     "best": asdict(run.best), "best_state": run.best_state, "bad_epochs": run.bad_epochs,
                     "windows": run.windows, "seconds": run.seconds,
                     "wall": run.earlier_wall + time.perf_counter() - fit_start, "stopped": stop},
                )
            if stop:
                if self.is_main:
                    tqdm.write(f"early stop: no validation improvement for {cfg.patience} epochs")
                break
        return self._finish(run, epoch, model)

    def _restore(self, path: Path, model: nn.Module, optimizer, scheduler, generator) -> _Progress:
        """Put back the state ``_save_resume`` wrote after the last completed epoch; returns the progress to go on
        from (past the last epoch when that run had stopped early)."""
        saved = load_resume_state(path, deepspeed_state_dir(path) if self.cfg.use_deepspeed else None)
        if self.cfg.use_deepspeed:
            self.accelerator.load_state(str(deepspeed_state_dir(path) / saved["deepspeed_state"]),
                                        load_module_strict=False)
        else:
            load_trainable_state(self.unwrap(model), saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        _set_rng(saved["rng"], generator)
        run = _Progress(FitResult(**saved["best"]), saved["best_state"], saved["bad_epochs"], saved["windows"],
                        saved["seconds"], saved["epoch"] + 1,
                        saved.get("wall", saved["seconds"]))  # files from before wall time was saved: training time
        if self.is_main:
            tqdm.write(f"resuming after epoch {saved['epoch']} from {path}")
        if saved.get("stopped"):
            run.first_epoch = self.cfg.train_epochs + 1
        return run

    def _train_epoch(self, model: nn.Module, loader: DataLoader, optimizer, scheduler, epoch: int,
                     steps: int) -> tuple[list[float], int, float]:
        """One epoch of at most ``steps`` optimiser steps: (the step losses, windows seen, seconds)."""
        if hasattr(loader, "set_epoch"):  # a per-epoch draw of windows (data_provider.draws) follows it
            loader.set_epoch(epoch)
        elif hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        model.train()
        t0, seen, losses = time.perf_counter(), 0, []
        bar = self._bar(loader, total=steps, desc=f"epoch {epoch}/{self.cfg.train_epochs}")
        for step, batch in enumerate(bar):
            if step >= steps:
                break
            with self.accelerator.autocast():
                loss = self.objective(model, self._model_inputs(batch))
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite training loss at epoch {epoch} step {step}; lower --learning_rate")
            self.accelerator.backward(loss)
            self._log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0]}, (epoch - 1) * steps + step)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            seen += len(batch["y"]) * self.accelerator.num_processes
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", win_s=f"{rate:.0f}")
        return losses, seen, time.perf_counter() - t0

    def _record_epoch(self, best: FitResult, epoch: int, losses: list[float], val_loss: float, lr: float,
                      elapsed: float, seen: int, steps: int) -> None:
        """The epoch's line of the learning curve (``best.history``), its tracker values and its printed line."""
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss, "lr": lr,
                  "seconds": elapsed, "windows_per_s": seen / max(elapsed, 1e-9)}
        record.update(self.objective.epoch_terms())  # an objective of several terms (distillation): each one's mean
        best.history.append(record)
        self._log({"val/loss": val_loss, "train/epoch_loss": record["train_loss"]}, epoch * steps - 1)
        if self.is_main:
            tqdm.write(f"epoch {epoch}: train {record['train_loss']:.4f}  val {val_loss:.4f}  "
                       f"{record['windows_per_s']:.0f} windows/s  {elapsed:.1f}s")

    def _early_stopping(self, run: _Progress, epoch: int, val_loss: float, model: nn.Module,
                        on_improve: Optional[Callable[[dict], None]]) -> bool:
        """Keep the weights of a new best epoch (and hand them to ``on_improve``), else count a bad epoch; whether
        ``patience`` bad epochs in a row now stop the fit."""
        if val_loss < run.best.best_val_loss:
            run.best.best_epoch, run.best.best_val_loss, run.bad_epochs = epoch, val_loss, 0
            run.best_state = trainable_state(self.unwrap(model))
            if on_improve is not None and self.is_main:
                on_improve(run.best_state)
            return False
        run.bad_epochs += 1
        return run.bad_epochs >= self.cfg.patience

    def _finish(self, run: _Progress, epoch: int, model: nn.Module) -> FitResult:
        """The fit's result, with the best epoch's weights put back into the model."""
        best = run.best
        best.epochs_run = max(epoch, best.epochs_run)
        best.train_seconds, best.train_windows_per_s = run.seconds, run.windows / max(run.seconds, 1e-9)
        best.windows_seen = run.windows
        best.earlier_wall_seconds = run.earlier_wall
        if run.best_state is not None:
            load_trainable_state(self.unwrap(model), run.best_state)
        if self.accelerator.log_with:
            self.accelerator.end_training()
        return best

    def _save_resume(self, path: Path, model: nn.Module, optimizer, state: dict) -> None:
        """Write the resume state after an epoch.

        ZeRO shards the optimiser over processes, so a DeepSpeed run saves model and optimiser through accelerate's
        ``save_state`` (every process takes part) into a folder per epoch; ``last.pt`` names the folder once it is
        complete, and older folders go.
        """
        if self.cfg.use_deepspeed:
            folder = f"epoch{state['epoch']}"
            self.accelerator.save_state(str(deepspeed_state_dir(path) / folder), exclude_frozen_parameters=True)
            self.accelerator.wait_for_everyone()
            state = {**state, "deepspeed_state": folder}
        else:
            state = {**state, "model": trainable_state(self.unwrap(model)), "optimizer": optimizer.state_dict()}
        if not self.is_main:
            return
        with atomic_file(path) as f:
            torch.save(state, f)
        if self.cfg.use_deepspeed:
            for old in deepspeed_state_dir(path).iterdir():
                if old.name != state["deepspeed_state"]:
                    shutil.rmtree(old, ignore_errors=True)

    def _eval_model(self) -> nn.Module:
        if not self._prepared:
            self.model = self.accelerator.prepare_model(self.model, evaluation_mode=True)
            self._prepared = True
        return self.model

    def _to_device(self, batch: dict) -> dict:
        device = self.accelerator.device
        return self._model_inputs({k: v.to(device, non_blocking=True) for k, v in batch.items()})

    def _model_inputs(self, batch: dict) -> dict:
        """The batch as the model takes it. DeepSpeed's bf16/fp16 engines hold the weights in that precision and
        do not autocast, so the inputs are cast to it; elsewhere autocast handles the float32 inputs."""
        if not self.cfg.use_deepspeed or self.cfg.mixed_precision == "no":
            return batch
        dtype = torch.bfloat16 if self.cfg.mixed_precision == "bf16" else torch.float16
        return {**batch, "x": batch["x"].to(dtype)}

    @torch.no_grad()
    def evaluate_loss(self, loader: DataLoader) -> float:
        """Mean masked MSE (scaled units) of the current weights, weighted by scored targets."""
        model = self._eval_model()
        model.eval()
        total, count = 0.0, 0.0
        for batch in self._bar(loader, desc="validate"):
            batch = self._to_device(batch)
            with self.accelerator.autocast():
                pred = model(batch["x"])
            m = batch["mask"].float()
            err = (((pred.float() - batch["y"]) ** 2) * m).sum()
            total += float(self.accelerator.reduce(err, "sum"))
            count += float(self.accelerator.reduce(m.sum(), "sum"))
        return total / max(count, 1.0)

    @torch.no_grad()
    def predict(self, loader: DataLoader) -> tuple[np.ndarray, np.ndarray]:
        """Forecasts (scaled units) and dataset indices for every window of ``loader``, gathered over processes."""
        model = self._eval_model()
        model.eval()
        loader = self.accelerator.prepare_data_loader(loader) if self.accelerator.num_processes > 1 else loader
        preds, idx = [], []
        for batch in self._bar(loader, desc="predict"):
            batch = self._to_device(batch)
            with self.accelerator.autocast():
                pred = model(batch["x"])
            preds.append(self.accelerator.gather_for_metrics(pred.float()).cpu())
            idx.append(self.accelerator.gather_for_metrics(batch["index"]).cpu())
        if not preds:
            return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
        return torch.cat(preds).numpy(), torch.cat(idx).numpy()

