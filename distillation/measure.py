"""What a distillation row reports beyond accuracy: CPU latency, model size, and student-teacher agreement.

Latency is what a deployment on a phone or pump controller would pay: CPU forward passes in eval mode without
gradients, measured at batch 1 (one new reading, one forecast) and batch 64 (a backlog), reported as milliseconds
per window, median over repeats after warm-up (the warm-up also fills TimeLLM's prototype cache, as a deployed
model would). Timing runs on a fixed number of threads (1 by default): on a loaded machine, multi-threaded passes of
small models mostly measure threads waiting for each other (50x slower batch-1 passes were seen on a shared 2-core
machine), not the model. Medians resist the remaining noise, but timings still depend on the CPU and its load.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from exp.checkpoint import CHECKPOINT_NAME

MB = 1e6
AGREEMENT_MGDL = 10.0


def latency_ms(
    model: nn.Module, windows: Tensor, batch_size: int, repeats: int, threads: int = 1, warmup: int = 2
) -> float:
    """Median CPU milliseconds per window for forward passes of ``batch_size`` windows on ``threads`` threads."""
    model = model.to("cpu").eval()
    x = _batch(windows, batch_size)
    times = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            for k in range(warmup + repeats):
                t0 = time.perf_counter()
                model(x)
                if k >= warmup:
                    times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(previous)
    return 1000.0 * statistics.median(times) / batch_size


def _batch(windows: Tensor, batch_size: int) -> Tensor:
    """The first ``batch_size`` windows, tiled when there are fewer."""
    reps = -(-batch_size // len(windows))
    return windows.repeat(reps, 1, 1)[:batch_size].contiguous()


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
    keys = ["patient", "timestamp", "horizon_min"]
    t = _at(teacher_run, minutes)
    s = _at(student_run, minutes)
    both = t.merge(s, on=keys, suffixes=("_teacher", "_student"), validate="one_to_one")
    if len(both) != len(t) or len(both) != len(s):
        raise RuntimeError(f"{teacher_run} and {student_run} scored different test forecasts")
    if both.empty:
        return float("nan")
    close = (both["forecast_teacher"] - both["forecast_student"]).abs() <= tolerance
    return round(100.0 * float(np.mean(close)), 2)


def _at(run_dir: Path, minutes: int) -> pd.DataFrame:
    frame = pd.read_csv(Path(run_dir) / "predictions.csv", dtype={"patient": str})
    return frame.loc[frame["horizon_min"] == minutes, ["patient", "timestamp", "horizon_min", "forecast"]]
