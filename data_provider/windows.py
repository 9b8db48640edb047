"""Cutting a patient's 5-minute grid into forecasting windows without leaking anything across a gap, a split or a patient.

Windows are described by their *origin* (grid index of the last input point); inputs are ``seq_len`` points ending at
the origin and targets the ``pred_len`` points after it. Each patient's windows index only that patient's series,
so no window ever spans two patients.

Training / validation (validation = the chronological tail of the training file), in one of two fills:
- ``carry`` (default): missing inputs are carried forward exactly as test inputs are, across gaps of any length, so
  models meet at training time the flat-lined stretches that the BGLP protocol puts in 14.7% of the bundled
  cohort's test windows (more than 30 minutes carried forward); a window needs one real reading before its first
  input only so that nothing is left to carry (leading NaNs break windows);
- ``linear``: short input gaps (up to ``max_gap_fill_min``) are filled linearly, longer gaps break windows, and the
  origin itself must be a real reading, so a fill never borrows a value from the target side of the window;
- in both, every target must be a real reading (windows with missing targets are skipped; targets are never imputed);
- training targets lie before the validation tail; validation targets lie inside it.

Test (BGLP 2020 protocol): the training file's grid is joined to the testing file's on one clock grid. Every real CGM
reading from 60 minutes into the testing file onward is scored at every horizon, from the origin ``horizon`` steps
before it. Inputs may reach back into the training tail; missing inputs are only carried forward (never interpolated
across the forecast time); targets are never filled and only real readings are scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from utils.cgm import STEP_MINUTES

TEST_WARMUP_MIN = 60  # BGLP: scoring starts 60 minutes into the testing file


@dataclass
class PatientSeries:
    """The arrays windows are cut from: model inputs (possibly transformed) and clean targets on one grid."""

    patient_id: str
    index: pd.DatetimeIndex
    inputs: np.ndarray  # [T, C] float, channel 0 = glucose, NaN = missing
    targets: np.ndarray  # [T] clean glucose (mg/dL, NaN = no reading)


def gap_runs(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of runs of True in a boolean vector."""
    padded = np.concatenate(([False], missing, [False])).astype(np.int8)
    diff = np.diff(padded)
    starts = np.flatnonzero(diff == 1)
    ends = np.flatnonzero(diff == -1)
    return starts, ends - starts


def fill_short_gaps(values: np.ndarray, max_steps: int) -> np.ndarray:
    """Linearly fill interior NaN runs of at most ``max_steps`` points; longer runs and edges stay NaN."""
    out = values.astype(float, copy=True)
    if max_steps <= 0:
        return out
    starts, lengths = gap_runs(np.isnan(out))
    for s, n in zip(starts, lengths):
        if n <= max_steps and s > 0 and s + n < len(out):
            left, right = out[s - 1], out[s + n]
            out[s : s + n] = left + (right - left) * np.arange(1, n + 1) / (n + 1)
    return out


def forward_fill(values: np.ndarray) -> np.ndarray:
    """Carry the last reading forward along axis 0 (leading NaNs stay NaN)."""
    frame = pd.DataFrame(values)
    return frame.ffill().to_numpy(dtype=float)


def _all_true_windows(ok: np.ndarray, start_offset: int, length: int, origins: np.ndarray) -> np.ndarray:
    """For each origin o, whether ``ok[o + start_offset : o + start_offset + length]`` is all True."""
    bad = np.concatenate(([0], np.cumsum(~ok)))
    lo = origins + start_offset
    return bad[lo + length] - bad[lo] == 0


FILLS = ("carry", "linear")


def train_val_origins(
    series: PatientSeries, seq_len: int, pred_len: int, max_gap_fill_min: int, val_fraction: float,
    fill: str = "carry",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Origins of training and validation windows, the gap-filled inputs they index, and the split index."""
    if fill == "carry":
        filled = forward_fill(series.inputs)
    else:
        max_steps = max_gap_fill_min // STEP_MINUTES
        filled = np.stack(
            [fill_short_gaps(series.inputs[:, c], max_steps) for c in range(series.inputs.shape[1])], axis=1
        )
    n = len(series.targets)
    split = int(round(n * (1.0 - val_fraction)))
    origins = np.arange(seq_len - 1, n - pred_len)
    if len(origins) == 0:
        return origins, origins, filled, split
    inputs_ok = np.isfinite(filled).all(axis=1)
    valid = _all_true_windows(inputs_ok, -(seq_len - 1), seq_len, origins)
    if fill != "carry":
        valid &= np.isfinite(series.inputs[origins, 0])
    valid &= _all_true_windows(np.isfinite(series.targets), 1, pred_len, origins)
    train = origins[valid & (origins + pred_len < split)]
    val = origins[valid & (origins + 1 >= split)]
    return train, val, filled, split


def join_for_test(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The training and testing files' grids as one frame on their shared 5-minute clock, and the test start index.

    The slots between the two files hold nothing (NaN in every column). The frame is joined before it becomes
    model inputs, so each channel treats those slots as it treats any slot without a record
    (``data_provider/channels.py``): glucose is carried forward like any missing input, a basal rate holds, and a
    meal or bolus logged at the end of the training file is not repeated into the gap.
    """
    joined = pd.concat([train, test]).asfreq(f"{STEP_MINUTES}min")
    return joined, int(joined.index.get_loc(test.index[0]))


def bglp_origins(
    joined: PatientSeries, test_start: int, seq_len: int, pred_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BGLP test origins, their target mask [N, pred_len], and carried-forward inputs.

    Returns every origin that scores at least one reading; together they score each real reading from 60 minutes
    into the testing file at every horizon exactly once.
    """
    n = len(joined.targets)
    first_scored = test_start + TEST_WARMUP_MIN // STEP_MINUTES
    origins = np.arange(max(first_scored - pred_len, seq_len - 1), n - 1)
    steps = origins[:, None] + np.arange(1, pred_len + 1)[None, :]
    inside = steps < n
    scored = np.zeros_like(inside)
    scored[inside] = np.isfinite(joined.targets[steps[inside]]) & (steps[inside] >= first_scored)
    keep = scored.any(axis=1)
    filled = forward_fill(joined.inputs)
    return origins[keep], scored[keep], filled
