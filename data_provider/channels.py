"""A patient's 5-minute grid as model inputs: the one place the input channels are named and made.

Training, validation, test (``data_factory.build_splits``) and a forecast of a new file (``exp/forecast.py``) all
call ``model_inputs``, and every model sizes its input layer from ``channel_names``, so a channel added here reaches
every split, the forecast command and the models' widths together.

Channels, in order:

- ``glucose`` (mg/dL): NaN where no reading; the window cutting fills those inputs (carried forward, or linearly
  with ``--input_fill linear``) and never a target;
- with ``--features MS``: ``basal`` (U/h), a rate that holds until the next basal record (so it is carried over
  slots with no record, also over the slots between a training and a testing file) and 0 before the first one;
  ``bolus`` (U) and ``carbs`` (g), instantaneous events, 0 wherever none is logged and never carried (a meal or bolus
  carried forward would be counted again);
- with ``--features MS`` and ``basal_logged``: ``basal_logged``, 1 where a basal rate is on record and 0 where none
  is, so a window with no basal record ("not logged") differs from a suspended pump (a logged 0 U/h);
- with ``horizon_events`` (the privileged view a distillation teacher may train on, never a deployable model's):
  ``basal_ahead``, ``bolus_ahead`` and ``carbs_ahead``, the log ``pred_len`` steps later, so a window's last
  ``pred_len`` points of them are the basal, boluses and meals logged within its forecast horizon (after the
  origin), known afterwards from the log and never at forecast time; glucose is never shifted. Past a series' end
  no meal or bolus is logged and the basal rate holds;
- with ``filled_channel``: ``filled``, 1 where the glucose input was filled rather than read.

The two 0/1 markers (``MARKERS``) are left unscaled, so they read the same in every split and patient.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from configs import DataConfig
from utils.cgm import COVARIATES

BASAL_LOGGED = "basal_logged"
FILLED = "filled"
MARKERS = (BASAL_LOGGED, FILLED)  # 0/1 channels: never scaled
EVENT_INPUTS = (*COVARIATES, BASAL_LOGGED)  # the channels of the pump and meal logs (Time-LLM --event_channels)
AHEAD = tuple(f"{name}_ahead" for name in COVARIATES)  # the horizon's logs (horizon_events), in COVARIATES order


def channel_names(cfg: DataConfig) -> tuple[str, ...]:
    """Names of the input channels, in the order the windows carry them (glucose first)."""
    events = (*COVARIATES, *((BASAL_LOGGED,) if cfg.basal_logged else ())) if cfg.covariates else ()
    ahead = AHEAD if cfg.horizon_events else ()
    return ("glucose", *events, *ahead, *((FILLED,) if cfg.filled_channel else ()))


def marker_index(cfg: DataConfig) -> list[int]:
    """Positions of the unscaled 0/1 channels among ``channel_names(cfg)``."""
    return [i for i, name in enumerate(channel_names(cfg)) if name in MARKERS]


def model_inputs(grid: pd.DataFrame, cfg: DataConfig, glucose: Optional[np.ndarray] = None) -> np.ndarray:
    """[T, len(channel_names(cfg))] unscaled inputs of a 5-minute grid (columns glucose, basal, bolus, carbs; NaN
    where nothing is recorded); ``glucose`` replaces the grid's readings as inputs (a degraded-input scenario).

    Glucose keeps its NaNs (how they are filled depends on the split); every other channel is finite.
    """
    g = grid["glucose"].to_numpy(dtype=float) if glucose is None else np.asarray(glucose, dtype=float)
    channels = [g]
    basal = grid["basal"].ffill()
    logs = {"basal": basal.fillna(0.0), "bolus": grid["bolus"].fillna(0.0), "carbs": grid["carbs"].fillna(0.0)}
    if cfg.covariates:
        channels += [logs[name].to_numpy(dtype=float) for name in COVARIATES]
        if cfg.basal_logged:
            channels.append(basal.notna().to_numpy(dtype=float))
    if cfg.horizon_events:
        later = {name: log.shift(-cfg.pred_len) for name, log in logs.items()}
        later["basal"] = later["basal"].fillna(logs["basal"].iloc[-1] if len(grid) else 0.0)
        channels += [later[name].fillna(0.0).to_numpy(dtype=float) for name in COVARIATES]
    if cfg.filled_channel:
        channels.append(np.isnan(g).astype(float))
    return np.stack(channels, axis=1)
