"""What a distillation row reports beyond accuracy and latency: model size and student-teacher agreement.

The rows' CPU latency (milliseconds per window at batch 1 and 64, on a fixed number of threads) is
``bench.latency.latency_ms``, the project's one timing loop; its docstring says how it is measured and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from exp.checkpoint import CHECKPOINT_NAME
from exp.reuse import METRICS_NAME
from utils.errors import LLMTimeError

MB = 1e6
PREDICTIONS_NAME = "predictions.csv"  # a run's scored test forecasts (exp/evaluation.py writes them)
PREDICTION_COLUMNS = ("patient", "timestamp", "horizon_min", "truth", "forecast")
AGREEMENT_MGDL = 10.0


def size_mb(total_params: int) -> float:
    """Float32 size of all parameters (frozen backbone included): what the model occupies in memory."""
    return round(total_params * 4 / MB, 3)


def checkpoint_mb(run_dir: Path) -> float:
    """Size of the run's checkpoint file: trainable weights only (the frozen backbone is reloaded from its source)."""
    return round((Path(run_dir) / CHECKPOINT_NAME).stat().st_size / MB, 3)


def agreement(teacher_run: Path, student_run: Path, minutes: int, tolerance: float = AGREEMENT_MGDL) -> float:
    """Percent of scored test forecasts at ``minutes`` ahead where student and teacher differ by <= tolerance mg/dL.

    Read from both runs' predictions.csv (the forecasts that were scored), matched by patient, time and horizon.
    """
    return agreement_of(predictions(teacher_run), predictions(student_run), minutes, tolerance,
                        f"{teacher_run} and {student_run}")


def predictions(run_dir: Path) -> pd.DataFrame:
    """A run's scored test forecasts (predictions.csv). Every finished run scored some, so a missing, empty or
    header-only file means the folder was damaged since: one line saying how to have the run made again."""
    path = Path(run_dir) / PREDICTIONS_NAME
    fix = f"delete {Path(run_dir) / METRICS_NAME} so that the run is trained again"
    try:
        frame = pd.read_csv(path, dtype={"patient": str})
    except FileNotFoundError:
        raise LLMTimeError(f"{path} is missing: {fix}") from None
    except (ValueError, UnicodeDecodeError, OSError) as e:  # pandas' empty-file and parser errors are ValueErrors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LLMTimeError(f"{path} is not a readable predictions table ({first}): {fix}") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in frame]
    if frame.empty or missing:
        what = f"lacks {', '.join(missing)}" if missing else "holds no forecasts"
        raise LLMTimeError(f"{path} {what}: {fix}")
    return frame


def agreement_of(teacher: pd.DataFrame, student: pd.DataFrame, minutes: int, tolerance: float = AGREEMENT_MGDL,
                 what: str = "the two runs") -> float:
    """``agreement`` on two runs' predictions tables (or the same patient's part of each)."""
    keys = ["patient", "timestamp", "horizon_min"]
    t = _at(teacher, minutes)
    s = _at(student, minutes)
    both = t.merge(s, on=keys, suffixes=("_teacher", "_student"), validate="one_to_one")
    if len(both) != len(t) or len(both) != len(s):
        raise RuntimeError(f"{what} scored different test forecasts")
    if both.empty:
        return float("nan")
    close = (both["forecast_teacher"] - both["forecast_student"]).abs() <= tolerance
    return round(100.0 * float(np.mean(close)), 2)


def _at(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    return frame.loc[frame["horizon_min"] == minutes, ["patient", "timestamp", "horizon_min", "forecast"]]
