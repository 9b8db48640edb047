"""Turning a model's test forecasts into metrics, predictions.csv, plots and a results-CSV row.

Shared by ``run_main.py``, the baselines' comparison runner and distillation, so every number in every report is
computed by the same code from the same kind of predictions: mg/dL, scored only where a real reading exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_provider.data_factory import Scaler, WindowDataset, target_times
from utils.cgm import NAMED_HORIZONS_MIN, STEP_MINUTES
from utils.errors import LLMTimeError
from utils.io import atomic_path
from utils.metrics import evaluate
from utils.plots import plot_clarke, plot_forecast, plot_parkes


def forecasts_mgdl(pred_scaled: np.ndarray, index: np.ndarray, ds: WindowDataset, scaler: Scaler,
                   source: str | Path = "the model") -> np.ndarray:
    """Forecasts in mg/dL ordered like the dataset (the loader may have gathered them in another order); non-finite
    forecasts of the model in ``source`` are refused (``check_finite``)."""
    check_finite(pred_scaled, source)
    out = np.full((len(ds), ds.pred_len), np.nan)
    out[index] = scaler.glucose_to_mgdl(pred_scaled)
    if np.isnan(out).any():
        raise RuntimeError("some test windows received no forecast; every test window must count")
    return out


def check_finite(pred: np.ndarray, source: str | Path) -> None:
    """Refuse forecasts that are NaN or infinite: scored, they would pass as blank cells and NaN metrics instead of
    a result. They come from non-finite weights (a damaged checkpoint, a run that diverged)."""
    bad = ~np.isfinite(np.asarray(pred, dtype=float))
    if bad.any():
        windows = bad.reshape(len(bad), -1).any(axis=1)
        raise LLMTimeError(
            f"{source}: the model's forecasts are not finite (NaN or inf) for {int(windows.sum())} of {len(windows)} "
            "windows: its weights are damaged or its training diverged; retrain it (e.g. with a lower --learning_rate)"
        )


def truth_mgdl(ds: WindowDataset) -> tuple[np.ndarray, np.ndarray]:
    """(truth in mg/dL as read, NaN where unscored; scored mask) for every window.

    Taken from the readings themselves (``ds.targets_mgdl``), not unscaled from the model's float32 targets, so a
    reading of 143 is scored and written as 143, not 143.00000003703119.
    """
    if ds.targets_mgdl is None:
        raise RuntimeError("these windows carry no readings in mg/dL (targets_mgdl); build them with build_splits")
    offsets = np.arange(1, ds.pred_len + 1)
    truth = np.asarray(ds.targets_mgdl, dtype=float)[ds.origins.numpy()[:, None] + offsets[None, :]]
    mask = ds.mask.numpy()
    truth[~mask] = np.nan
    return truth, mask


def score(forecast: np.ndarray, ds: WindowDataset) -> dict[str, Any]:
    """Every metric of ``utils.metrics.evaluate``, the time lag placed by each window's origin time."""
    truth, mask = truth_mgdl(ds)
    return evaluate(truth, forecast, mask, ds.patient.astype(str), step_minutes=STEP_MINUTES, times=ds.origin_time)


def predictions_frame(forecast: np.ndarray, ds: WindowDataset) -> pd.DataFrame:
    """One row per scored (window, horizon): target timestamp, patient, horizon (min), truth, forecast.

    Sorted by patient, target time and horizon, so one reading's forecasts at every horizon sit together (the
    window order would put them on a diagonal, one per window).
    """
    truth, mask = truth_mgdl(ds)
    times = target_times(ds)
    rows, cols = np.nonzero(mask)
    frame = pd.DataFrame(
        {
            "timestamp": times[rows, cols],
            "patient": ds.patient[rows].astype(str),
            "horizon_min": (cols + 1) * STEP_MINUTES,
            "truth": truth[rows, cols],
            "forecast": np.round(forecast[rows, cols], 2),
        }
    )
    return frame.sort_values(["patient", "timestamp", "horizon_min"], kind="stable", ignore_index=True)


def write_outputs(run_dir: Path, forecast: np.ndarray, ds: WindowDataset, label: str) -> None:
    """predictions.csv, Clarke and Parkes grids at 30 and 60 min, and a forecast-vs-truth plot of one patient."""
    frame = predictions_frame(forecast, ds)
    with atomic_path(run_dir / "predictions.csv") as tmp:
        frame.to_csv(tmp, index=False)
    for minutes in NAMED_HORIZONS_MIN:
        at = frame[frame["horizon_min"] == minutes]
        if len(at):
            plot_clarke(at["truth"], at["forecast"], run_dir / f"clarke_{minutes}min.png", f"{label}: Clarke, {minutes} min")
            plot_parkes(at["truth"], at["forecast"], run_dir / f"parkes_{minutes}min.png", f"{label}: Parkes, {minutes} min")
    first = ds.patient[0] if len(ds) else None
    if first is None:
        return
    one = frame[frame["patient"] == str(first)]
    if one.empty:
        return
    wide = one.pivot_table(index="timestamp", columns="horizon_min", values="forecast")
    truth = one.drop_duplicates("timestamp").set_index("timestamp")["truth"].reindex(wide.index)
    index = pd.date_range(wide.index.min(), wide.index.max(), freq=f"{STEP_MINUTES}min")
    series = {f"{m} min": wide[m].reindex(index).to_numpy() for m in NAMED_HORIZONS_MIN if m in wide}
    plot_forecast(index, truth.reindex(index).to_numpy(), series, run_dir / "forecast.png", f"{label}: patient {first}")


def headline(metrics: dict[str, Any]) -> dict[str, float | None]:
    """RMSE at 30/60 min per patient and mean, for the printed table."""
    out = {pid: (m["rmse_30"], m["rmse_60"]) for pid, m in metrics["per_patient"].items()}
    mean = metrics["mean_over_patients"]
    out["mean"] = (mean["rmse_30"], mean["rmse_60"])
    return out



def persistence_forecast(ds: WindowDataset, scaler: Scaler) -> np.ndarray:
    """The last input reading (as the model saw it: carried forward over gaps), held for every horizon, in mg/dL.

    Scored beside every run on the same windows, so a table shows at once whether a model beats the last reading.
    """
    last = ds.inputs[ds.origins, 0].numpy().astype(float)
    return np.repeat(scaler.glucose_to_mgdl(last)[:, None], ds.pred_len, axis=1)
