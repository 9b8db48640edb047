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
from data_provider.windows import STEP_MINUTES
from utils.io import atomic_path
from utils.metrics import evaluate
from utils.plots import plot_clarke, plot_forecast, plot_parkes


def forecasts_mgdl(pred_scaled: np.ndarray, index: np.ndarray, ds: WindowDataset, scaler: Scaler) -> np.ndarray:
    """Forecasts in mg/dL ordered like the dataset (the loader may have gathered them in another order)."""
    out = np.full((len(ds), ds.pred_len), np.nan)
    out[index] = scaler.glucose_to_mgdl(pred_scaled)
    if np.isnan(out).any():
        raise RuntimeError("some test windows received no forecast; every test window must count")
    return out


def truth_mgdl(ds: WindowDataset, scaler: Scaler) -> tuple[np.ndarray, np.ndarray]:
    """(truth in mg/dL with NaN where unscored, scored mask) for every window."""
    gathered = ds.__getitems__(list(range(len(ds))))
    truth = scaler.glucose_to_mgdl(gathered["y"].numpy().astype(float))
    mask = gathered["mask"].numpy()
    truth[~mask] = np.nan
    return truth, mask


def score(forecast: np.ndarray, ds: WindowDataset, scaler: Scaler) -> dict[str, Any]:
    truth, mask = truth_mgdl(ds, scaler)
    return evaluate(truth, forecast, mask, ds.patient.astype(str), step_minutes=STEP_MINUTES)


def predictions_frame(forecast: np.ndarray, ds: WindowDataset, scaler: Scaler) -> pd.DataFrame:
    """One row per scored (window, horizon): target timestamp, patient, horizon (min), truth, forecast."""
    truth, mask = truth_mgdl(ds, scaler)
    times = target_times(ds)
    rows, cols = np.nonzero(mask)
    return pd.DataFrame(
        {
            "timestamp": times[rows, cols],
            "patient": ds.patient[rows].astype(str),
            "horizon_min": (cols + 1) * STEP_MINUTES,
            "truth": truth[rows, cols],
            "forecast": np.round(forecast[rows, cols], 2),
        }
    )


def write_outputs(run_dir: Path, forecast: np.ndarray, ds: WindowDataset, scaler: Scaler, label: str) -> None:
    """predictions.csv, Clarke and Parkes grids at 30 and 60 min, and a forecast-vs-truth plot of one patient."""
    frame = predictions_frame(forecast, ds, scaler)
    with atomic_path(run_dir / "predictions.csv") as tmp:
        frame.to_csv(tmp, index=False)
    for minutes in (30, 60):
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
    series = {f"{m} min": wide[m].reindex(index).to_numpy() for m in (30, 60) if m in wide}
    plot_forecast(index, truth.reindex(index).to_numpy(), series, run_dir / "forecast.png", f"{label}: patient {first}")


def headline(metrics: dict[str, Any]) -> dict[str, float | None]:
    """RMSE at 30/60 min per patient and mean, for the printed table."""
    out = {pid: (m["rmse_30"], m["rmse_60"]) for pid, m in metrics["per_patient"].items()}
    mean = metrics["mean_over_patients"]
    out["mean"] = (mean["rmse_30"], mean["rmse_60"])
    return out

