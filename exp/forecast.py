"""Forecasts for a new CGM file from a saved run (``forecast.py`` and ``run_main.py --is_training 0 --input``).

The input is an OhioT1DM XML file (.xml / .xml.gz) or one patient's CSV export (timestamp, glucose in mg/dL or
mmol/L, and optionally carbs, bolus and basal: the reader of ``--data csv``, ``data_provider/cgm_csv.py``). It goes
through the readers' own rules (``data_provider.ohio.build_grid``): each reading moves to the nearest 5-minute mark,
the closer of two readings on one mark is kept, impossible values are rejected and counted, nothing is invented;
units are decided per file and a unit change inside it is refused (``data_provider/values.py``). The grid becomes
the model's inputs through the function training uses (``data_provider.channels.model_inputs``). A forecast is
made from every grid point that has a full input window behind it, with missing inputs carried forward exactly as
in the BGLP test protocol the model was scored with, scaled by the training scaler stored in the checkpoint. So a
forecast here is what the model would have produced on its own test set.

Any checkpoint written through ``exp.checkpoint.save_checkpoint`` works (Time-LLM teachers, distilled students,
baselines): the model is rebuilt from the run's config and its saved weights.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from data_provider.cgm_csv import read_cgm_csv
from data_provider.channels import model_inputs
from data_provider.data_factory import WindowDataset, make_loader
from data_provider.ohio import MGDL_PER_MMOL, build_grid, read_xml
from data_provider.values import UNITS, glucose_units
from data_provider.windows import forward_fill
from exp.checkpoint import rebuild_model
from exp.evaluation import check_finite
from exp.trainer import Trainer
from models.base import Forecaster
from utils.cgm import NAMED_HORIZONS_MIN, STEP_MINUTES, minutes_to_step
from utils.errors import LLMTimeError
from utils.io import atomic_path
from utils.plots import plot_forecast

PLOT_DAYS = 2.0  # the plot shows the most recent two days: individual meals and nights stay readable


@dataclass
class ForecastResult:
    """The forecast table (in the input's units) and where it was written."""

    frame: pd.DataFrame
    csv_path: Path
    plot_path: Path
    units: str  # 'mg/dL' or 'mmol/L'
    units_note: Optional[str]  # set when the units were detected rather than given
    model_label: str

    def summary(self) -> str:
        """What a user sees after the command: how many forecasts, from when to when, in what units, where."""
        f = self.frame
        horizons = " and ".join(str(h) for h in NAMED_HORIZONS_MIN if f"forecast_{h}" in f)
        lines = [
            f"{len(f)} forecasts ({horizons} min ahead) from {f['timestamp'].iloc[0]:%Y-%m-%d %H:%M} to "
            f"{f['timestamp'].iloc[-1]:%Y-%m-%d %H:%M} by {self.model_label}, in {self.units}",
        ]
        if self.units_note:
            lines.append(self.units_note)
        carried = int((f["carried_inputs"] > 0).sum())
        if carried:
            lines.append(f"{carried} forecasts have inputs carried forward over missing readings (carried_inputs > 0)")
        lines.append(f"wrote {self.csv_path} and {self.plot_path}")
        return "\n".join(lines)


def forecast_file(
    checkpoint: str | Path, input_path: str | Path, output: Optional[str | Path] = None, units: str = "auto",
    batch_size: int = 64, columns: Optional[list[str]] = None,
) -> ForecastResult:
    """Forecast every full input window of ``input_path`` with the run saved at ``checkpoint``; write CSV + PNG.
    ``columns``: a CSV's column names as FIELD=NAME items (``--csv_columns``)."""
    if units not in UNITS:
        raise LLMTimeError(f"--units must be one of {', '.join(UNITS)}, got {units!r}")
    input_path = Path(input_path)
    csv_path = Path(output) if output else Path.cwd() / f"{_stem(input_path)}_forecast.csv"
    if csv_path.is_dir():
        raise LLMTimeError(f"--output {csv_path} is a folder: pass a file name such as forecast.csv")
    grid, unit_label, note = read_input(input_path, units, columns)  # a bad file fails before a model is loaded
    cfg, scaler, model, _ = rebuild_model(checkpoint)
    if cfg.data.horizon_events:  # its inputs would be the log after each forecast time: a leak, never a forecast
        raise LLMTimeError(f"{checkpoint} is a privileged teacher (--horizon_events): it reads the meals and insulin "
                           "logged after the forecast time, which no forecast knows; forecast with a history-only run")
    seq_len, pred_len = cfg.data.seq_len, cfg.data.pred_len
    horizons = [h for h in NAMED_HORIZONS_MIN if minutes_to_step(h) < pred_len]
    if not horizons:
        raise LLMTimeError(
            f"{checkpoint} forecasts only {pred_len * STEP_MINUTES} min ahead; nothing to report at 30 min"
        )

    filled = forward_fill(model_inputs(grid, cfg.data))  # carried forward, as the BGLP test inputs are
    origins = _full_windows(np.isfinite(filled).all(axis=1), seq_len)
    if len(origins) == 0:
        hours = len(grid) * STEP_MINUTES / 60
        raise LLMTimeError(
            f"{input_path} spans {hours:.1f} h of 5-minute readings; this model needs "
            f"{seq_len * STEP_MINUTES / 60:g} h of history for one forecast: pass a longer recording"
        )

    no_events = grid["basal"].isna().all() and not grid[["bolus", "carbs"]].to_numpy().any()
    if cfg.data.covariates and no_events:  # missing events read as none, as in training; said: it may be a wrong file
        warnings.warn(f"{input_path.name} logs no basal, bolus or meal: {checkpoint} was trained with them "
                      "(--features MS) and reads them as none", stacklevel=2)
    pad = np.full((pred_len, filled.shape[1]), np.nan)  # targets past the end of the input are not known
    ds = WindowDataset(
        scaler.transform(np.concatenate([filled, pad])), np.full(len(filled) + pred_len, np.nan), origins,
        np.zeros((len(origins), pred_len), dtype=bool), np.full(len(origins), _stem(input_path), dtype=object),
        grid.index.to_numpy()[origins], seq_len, pred_len,
    )
    engine = dataclasses.replace(cfg.train, mixed_precision="no", use_deepspeed=False, eval_batch_size=batch_size)
    pred, index = Trainer(engine, model).predict(make_loader(ds, batch_size, shuffle=False, seed=0))
    check_finite(pred, checkpoint)  # else every forecast cell would be blank, and the command would succeed
    mgdl = np.empty_like(pred, dtype=float)
    mgdl[index] = scaler.glucose_to_mgdl(pred.astype(float))

    glucose = grid["glucose"].to_numpy(dtype=float)
    missing = np.concatenate(([0], np.cumsum(np.isnan(glucose))))
    to_units = (lambda v: v / MGDL_PER_MMOL) if unit_label == "mmol/L" else (lambda v: v)  # noqa: E731
    digits = 2 if unit_label == "mmol/L" else 1
    times = grid.index[origins]
    frame = pd.DataFrame({"timestamp": times, "glucose_now": np.round(to_units(glucose[origins]), digits)})
    for h in horizons:
        frame[f"forecast_{h}"] = np.round(to_units(mgdl[:, minutes_to_step(h)]), digits)
    for h in horizons:
        frame[f"target_time_{h}"] = times + pd.Timedelta(minutes=h)
    frame["carried_inputs"] = missing[origins + 1] - missing[origins + 1 - seq_len]
    frame["units"] = unit_label

    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    plot_path = csv_path.with_suffix(".png")
    label = _model_label(cfg.model.model, model)
    _plot(grid, mgdl, times, horizons, plot_path, f"{label}: {input_path.name}", unit_label)
    return ForecastResult(frame, csv_path, plot_path, unit_label, note, label)


def read_input(path: Path, units: str,
               columns: Optional[list[str]] = None) -> tuple[pd.DataFrame, str, Optional[str]]:
    """(5-minute grid in mg/dL, the input's units, a note when they were detected) of an XML or CSV file."""
    if not path.is_file():
        raise LLMTimeError(f"--input {path} does not exist: pass an OhioT1DM .xml/.xml.gz or a timestamp,glucose .csv")
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return read_cgm_csv(path, columns, units, "--units")
    if not name.endswith((".xml", ".xml.gz")):
        raise LLMTimeError(f"--input {path}: expected an .xml, .xml.gz or .csv file")
    events = read_xml(path)[1]
    readings = events["glucose_level"]
    if readings.empty or "value" not in readings or "ts" not in readings:
        raise LLMTimeError(f"--input {path} has no glucose readings")
    values = pd.to_numeric(readings["value"], errors="coerce")
    order = np.argsort(readings["ts"].to_numpy(), kind="stable")
    unit_label, note = glucose_units(values.to_numpy(dtype=float)[order],
                                     lambda i: f"the reading at {readings['ts'].iloc[order[i]]}", units, str(path),
                                     "--units")
    if unit_label == "mmol/L" and values.notna().sum() == readings["value"].notna().sum():
        readings = readings.assign(value=values * MGDL_PER_MMOL)  # non-numeric values stay for the reader's error
    notes: list[str] = []
    grid = build_grid({**events, "glucose_level": readings}, path, notes)
    for message in notes:
        warnings.warn(message, stacklevel=2)
    return grid, unit_label, note


def _full_windows(ok: np.ndarray, seq_len: int) -> np.ndarray:
    """Origins whose ``seq_len`` inputs (ending at the origin) are all present after carrying forward."""
    bad = np.concatenate(([0], np.cumsum(~ok)))
    origins = np.arange(seq_len - 1, len(ok))
    return origins[bad[origins + 1] - bad[origins + 1 - seq_len] == 0]


def _plot(grid: pd.DataFrame, mgdl: np.ndarray, times: pd.DatetimeIndex, horizons: list[int], path: Path,
          title: str, units: str) -> None:
    """Measured glucose and each horizon's forecast at the time it predicts, over the most recent days, in
    ``units`` (the input's, as in the CSV: a user reading both must not have to convert between them)."""
    per_unit = MGDL_PER_MMOL if units == "mmol/L" else 1.0
    end = times[-1] + pd.Timedelta(minutes=max(horizons))
    index = pd.date_range(max(grid.index[0], end - pd.Timedelta(days=PLOT_DAYS)), end, freq=f"{STEP_MINUTES}min")
    truth = grid["glucose"].reindex(index).to_numpy(dtype=float) / per_unit
    series = {
        f"{h} min": pd.Series(mgdl[:, minutes_to_step(h)] / per_unit, index=times + pd.Timedelta(minutes=h))
        .reindex(index).to_numpy()
        for h in horizons
    }
    plot_forecast(index, truth, series, path, title, span_days=PLOT_DAYS + 1, units=units)


def _model_label(name: str, model: Forecaster) -> str:
    row = model.backbone_row
    return f"{name} ({row.name}, {model.weights_source})" if row is not None else name


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".xml.gz", ".xml", ".csv.gz", ".csv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
