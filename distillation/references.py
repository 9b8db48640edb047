"""The bar a deployable student has to clear: Ridge, fitted in closed form on every training window of the report's
data (as the standard comparison fits its Ridge rows) and tested on the same test windows as the students, once per
seed's run folder; with the report's ``--features MS`` that is Ridge (MS).

Its per-patient scores join the standard report's per-patient rows (``ridge_rmse_30/60``), beside persistence, so
the best deployable student is compared with both patient by patient (``distillation/answers.py``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from configs import ModelConfig, RunConfig
from distillation.config import PipelineConfig, patient_groups, phase_configs
from exp.reuse import METRICS_NAME, read_json
from exp.run import train_and_test
from utils.cgm import NAMED_HORIZONS_MIN

RIDGE_RUN = "reference_Ridge"  # the run folder's name in each seed's folder, beside the teacher's


def ridge_config(cfg: PipelineConfig) -> RunConfig:
    """Ridge on the students' data of ``cfg``'s first patient group, every training window, in that group's seed
    folder."""
    students = phase_configs(cfg, *patient_groups(cfg)[0])["baseline"]
    return replace(students, des="reference", model=ModelConfig(model="Ridge"),
                   data=replace(students.data, max_train_windows=None))


def ridge_reference(cfg: PipelineConfig) -> Path:
    """Fit and test the Ridge reference of ``cfg``'s seed (a finished one of the same settings is reused); its run
    folder."""
    return train_and_test(ridge_config(cfg), name=RIDGE_RUN, reuse=True).run_dir


def ridge_columns(teacher_run: str, patient: str) -> dict[str, Optional[float]]:
    """``ridge_rmse_30/60`` of ``patient`` from the Ridge reference beside ``teacher_run`` (None when it has not
    run)."""
    metrics: dict[str, Any] = read_json(Path(teacher_run).parent / RIDGE_RUN / METRICS_NAME) or {}
    scores = metrics.get("per_patient", {}).get(str(patient), {})
    return {f"ridge_rmse_{m}": scores.get(f"rmse_{m}") for m in NAMED_HORIZONS_MIN}
