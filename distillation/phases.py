"""One training phase (teacher, student baseline or a distilled candidate): train it through the engine, or reuse
the finished run of the same settings already in its folder.

All phases go through ``exp.run.train_and_test``, so they share optimiser, schedule, early stopping and test
scoring; a distilled run's objective settings (``extra``) are written beside it and must match for it to be reused,
so a retrained teacher makes older distilled runs stale.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

from torch import nn
from tqdm.auto import tqdm

from configs import RunConfig
from data_provider.data_factory import Splits
from distillation.losses import DistillStudent, LayerPairs, split_state
from exp.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from exp.objective import Objective
from exp.reuse import EXTRA_SETTINGS_NAME, METRICS_NAME, changed_settings, mark_finished, read_json
from exp.run import RunResult, reused_result, train_and_test
from models import build_model
from utils.io import write_json
from utils.results import locked
from utils.seed import seed_everything


def train_phase(
    cfg: RunConfig,
    name: str,
    splits: Splits,
    build: Callable[[], nn.Module],
    make_objective: Callable[[], Objective] = Objective,
    extra: Optional[dict] = None,
) -> RunResult:
    """Train (or reuse) one phase through ``exp.run.train_and_test``; ``extra`` marks a distilled run's settings.

    The model and objective are built only when the phase actually trains (a reused run needs neither). The result's
    model is the plain student (a distilled run's projections are left in its checkpoint only), in eval mode.
    """
    run_dir = Path(cfg.checkpoints) / name
    with locked(run_dir):  # a second report process that reaches this phase waits for it, then reuses it
        phase = _reuse(run_dir, cfg, splits, extra)
        if phase is not None:
            return phase
        cfg = continuing(run_dir, cfg, extra)  # train_and_test removes the old outputs, the marks of a finished run
        result = train_and_test(cfg, objective=make_objective(), splits=splits, model=build(), name=name)
        model = result.model
        if isinstance(model, DistillStudent):
            _strip_projections(run_dir)
            model = model.student
        if extra is not None:  # what the run learnt beyond its RunConfig: beside config.json, and in it for readers
            write_json(run_dir / EXTRA_SETTINGS_NAME, extra)
            write_json(run_dir / "config.json", {**(read_json(run_dir / "config.json") or {}), "distillation": extra})
    return replace(result, model=model.eval())


def continuing(run_dir: Path, cfg: RunConfig, extra: Optional[dict]) -> RunConfig:
    """``cfg`` set to continue an interrupted teacher or baseline run of the same settings (its ``last.pt``), so a
    stopped report loses at most an epoch; a distilled phase starts afresh, since its first epochs may have learnt
    from a teacher that has been retrained since."""
    if extra is not None or not (run_dir / "last.pt").is_file():
        return cfg
    saved = read_json(run_dir / "config.json")
    if saved is None or changed_settings(saved, cfg):
        return cfg
    return replace(cfg, train=replace(cfg.train, resume=True))


def _reuse(run_dir: Path, cfg: RunConfig, splits: Splits, extra: Optional[dict]) -> Optional[RunResult]:
    """The finished run of these settings in ``run_dir``, its best model rebuilt with these splits' scaler; None if
    there is none or the scaler differs (the data changed since it ran)."""
    result = reused_result(run_dir, cfg, splits, extra)
    if result is not None:
        tqdm.write(f"reusing finished run {run_dir}")
    return result


def _strip_projections(run_dir: Path) -> None:
    """Leave a plain TimeLLM checkpoint (loadable by evaluate_saved); keep the projections as an extra field. The
    finished run's metrics.json then records the rewritten checkpoint's hash."""
    cfg, scaler, state, extra = load_checkpoint(run_dir)
    student, projections = split_state(state)
    extra.pop("distill_projections", None)
    save_checkpoint(run_dir, student, cfg, scaler, **extra, distill_projections=projections)
    mark_finished(run_dir, read_json(run_dir / METRICS_NAME))


def checkpoint_digest(run_dir: Path) -> str:
    """SHA-1 of a run's checkpoint: ties a distilled run to the exact teacher (and baseline) it learnt from."""
    digest = hashlib.sha1()
    with open(run_dir / CHECKPOINT_NAME, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def seeded_builder(cfg: RunConfig, splits: Splits) -> Callable[[], nn.Module]:
    """Builds the phase's model right after seeding: the same initialisation whichever phase ran before."""

    def build() -> nn.Module:
        seed_everything(cfg.train.seed)
        return build_model(cfg.model, cfg.data, splits.scaler, splits.description)

    return build


def distill_builder(
    student_build: Callable[[], nn.Module], pairs: LayerPairs, teacher_width: int, init: Optional[RunResult]
) -> Callable[[], nn.Module]:
    """Builds a distilled candidate: the student (from the trained baseline with ``init``) with its projections."""

    def build() -> nn.Module:
        student = student_build()
        if init is not None:  # --init-from-baseline: start from the trained baseline's weights
            student.load_trainable_state_dict(init.model.trainable_state_dict())
        return DistillStudent(student, pairs, teacher_width)

    return build
