"""Forecast accuracy for CGM horizons: point errors per horizon step, MARD, time lag and hypo/hyper detection.

Everything is in mg/dL. Forecasts are scored on ``[N, H]`` arrays (N windows, H horizon steps of ``step_minutes``)
with a boolean mask, because CGM traces have gaps: a target position that was imputed or missing must not count, or a
model would be rewarded for reproducing the imputation. NaN truth is never scored, whatever the mask says.

Beside RMSE/MAE the CGM literature reports three more things, so they are here too: MARD (mean absolute relative
difference, the field's name for what forecasting papers call MAPE; both keys are written), the time lag of a
forecast (how far the forecast trails the truth it predicts, the usual failure of a forecaster that mostly repeats
the last reading) and hypo-/hyperglycaemia detection (whether a forecast below 70 / above 180 mg/dL flags a real
one), because an RMSE can improve while a forecaster still misses the events that matter clinically.

Two averages are reported because the literature uses both: the BGLP challenge (OhioT1DM) ranks by the *mean over
patients* of each patient's RMSE, which weights every patient equally, while *pooled* metrics weight every scored point
equally and so favour patients with long traces. Both are kept so results compare with either convention.

The Clarke and Parkes error-grid zones are defined in ``utils.error_grids``; :func:`evaluate` reports their shares
at 30 and 60 min beside the point metrics.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from utils.cgm import NAMED_HORIZONS_MIN, STEP_MINUTES, minutes_to_step
from utils.error_grids import clarke_zones, parkes_zones, zone_shares
from utils.errors import LLMTimeError

MGDL_PER_MMOL = 18.016  # glucose molar mass 180.16 g/mol: 1 mmol/L = 18.016 mg/dL

HYPO_MGDL, HYPER_MGDL = 70.0, 180.0  # consensus thresholds (Battelino et al. 2019, Diabetes Care 42:1593)
EVENTS = ("hypo", "hyper")
EVENT_STATS = ("sensitivity", "precision", "mcc", "events")


# ----------------------------------------------------------------------------------------------------------------------
# Point metrics
# ----------------------------------------------------------------------------------------------------------------------

# A point metric maps one set of windows' scored errors to one value per horizon step: ``err`` is forecast - truth
# ([N, H], 0 where not scored), ``rel`` is |err| / truth (0 where not scored), ``n`` the scored points per step ([H]).
PointMetric = Callable[[NDArray, NDArray, NDArray], NDArray]


def _rmse(err: NDArray, rel: NDArray, n: NDArray) -> NDArray:
    return np.sqrt((err**2).sum(axis=0) / n)


def _mae(err: NDArray, rel: NDArray, n: NDArray) -> NDArray:
    return np.abs(err).sum(axis=0) / n


def _mard(err: NDArray, rel: NDArray, n: NDArray) -> NDArray:
    return 100.0 * rel.sum(axis=0) / n


# Every point metric by name: adding one here is all it takes for ``evaluate`` to report it per step, at 30 and 60 min
# (``<name>_30``), pooled, per patient and as the mean over patients, and for ``summary_row`` to write its
# ``<name>_30`` / ``<name>_60`` columns to the results CSV. mard and mape are one number under two names (see
# evaluate).
POINT_METRICS: dict[str, PointMetric] = {"rmse": _rmse, "mae": _mae, "mard": _mard, "mape": _mard}


def _num(value: float) -> float | None:
    """A JSON-safe number: ``None`` where nothing was scored (NaN is not valid JSON)."""
    return float(value) if np.isfinite(value) else None


def _scored(truth: ArrayLike, forecast: ArrayLike, mask: ArrayLike) -> tuple[NDArray, NDArray, NDArray]:
    """Validate the ``[N, H]`` inputs and return float truth, float forecast and the effective scoring mask."""
    truth = np.asarray(truth, dtype=float)
    forecast = np.asarray(forecast, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if truth.ndim != 2 or forecast.shape != truth.shape or mask.shape != truth.shape:
        raise LLMTimeError(
            f"truth, forecast and mask must share one [N, H] shape; got {truth.shape}, {forecast.shape}, {mask.shape}"
        )
    scored = mask & np.isfinite(truth)
    bad_forecast = int((scored & ~np.isfinite(forecast)).sum())
    if bad_forecast:
        raise LLMTimeError(f"forecast has {bad_forecast} non-finite values at scored points; the model has diverged")
    if np.any(truth[scored] <= 0):
        raise LLMTimeError("truth must be positive glucose in mg/dL at scored points; were normalised values passed?")
    return truth, forecast, scored


def _named(per_step: dict[str, list], step_minutes: float) -> dict[str, Any]:
    """Pick the 30- and 60-min entries out of per-step lists; ``None`` where the horizon is too short."""
    named: dict[str, Any] = {}
    for minutes in NAMED_HORIZONS_MIN:
        step = minutes_to_step(minutes, step_minutes)
        for key, values in per_step.items():
            named[f"{key}_{minutes}"] = values[step] if step < len(values) else None
    return named


def event_detection(truth: NDArray, forecast: NDArray, event: str) -> dict[str, float | int | None]:
    """Point-wise detection of one glucose event by the forecast, from already scored 1-D arrays (mg/dL).

    ``"hypo"`` is a reading below 70 mg/dL, ``"hyper"`` one above 180 (strict, as in the time-below/above-range
    consensus); a forecast flags the event when it is itself below 70 / above 180. Each scored point is one
    classification: sensitivity = TP / (TP + FN), precision = TP / (TP + FP), and Matthews' correlation
    MCC = (TP TN - FP FN) / sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN)), which stays honest when events are rare.
    A ratio whose denominator is 0 (e.g. sensitivity of a patient with no hypo) is ``None``: undefined, not 0.
    ``"events"`` counts the true event points.
    """
    if event not in EVENTS:
        raise LLMTimeError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
    if event == "hypo":
        real, flagged = truth < HYPO_MGDL, forecast < HYPO_MGDL
    else:
        real, flagged = truth > HYPER_MGDL, forecast > HYPER_MGDL
    tp, fp = int(np.sum(real & flagged)), int(np.sum(~real & flagged))
    fn, tn = int(np.sum(real & ~flagged)), int(np.sum(~real & ~flagged))
    ratio = lambda a, b: a / b if b else None  # noqa: E731
    denominator = float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return {
        "sensitivity": ratio(tp, tp + fn),
        "precision": ratio(tp, tp + fp),
        "mcc": (tp * tn - fp * fn) / np.sqrt(denominator) if denominator else None,
        "events": tp + fn,
    }


def _lag_costs(truth: NDArray, forecast: NDArray, scored: NDArray, origin_steps: NDArray) -> tuple[NDArray, NDArray]:
    """Squared-error sums and pair counts ``[H, H + 1]`` of each horizon step's forecast series shifted back by k.

    ``origin_steps`` places each window's origin on the 5-min grid (whole steps); step h of window i predicts grid
    position ``origin_steps[i] + h + 1``. Only scored points enter either series, so the forecast series of a step is
    exactly what that step is scored on.
    """
    horizon = truth.shape[1]
    length = int(origin_steps.max()) + horizon + 1 if len(origin_steps) else 0
    sse, count = np.zeros((horizon, horizon + 1)), np.zeros((horizon, horizon + 1), dtype=int)
    for h in range(horizon):
        rows = scored[:, h]
        at = origin_steps[rows] + h + 1
        y, f = np.full(length, np.nan), np.full(length, np.nan)
        y[at], f[at] = truth[rows, h], forecast[rows, h]
        for k in range(horizon + 1):
            diff = f[k:] - y[: length - k]
            ok = np.isfinite(diff)
            sse[h, k], count[h, k] = float(np.sum(diff[ok] ** 2)), int(ok.sum())
    return sse, count


def _lag_minutes(sse: NDArray, count: NDArray, step_minutes: float) -> list[float | None]:
    """Per horizon step, the shift (in minutes) with the lowest mean squared error; ties go to the smaller shift."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = np.where(count > 0, sse / np.maximum(count, 1), np.inf)
    return [float(np.argmin(row) * step_minutes) if np.isfinite(row).any() else None for row in mse]


def _horizon_metrics(
    truth: NDArray, forecast: NDArray, scored: NDArray, step_minutes: float, lag: list[float | None] | None = None
) -> dict[str, Any]:
    """Point metrics for already validated arrays (see :func:`horizon_metrics`); ``lag`` per step if computed."""
    n = scored.sum(axis=0)
    err = np.where(scored, forecast - truth, 0.0)
    rel = np.abs(err) / np.where(scored, truth, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_step: dict[str, list] = {name: [_num(v) for v in metric(err, rel, n)]
                                     for name, metric in POINT_METRICS.items()}
    per_step["lag"] = lag if lag is not None else [None] * truth.shape[1]
    per_step["n"] = [int(v) for v in n]
    return {**per_step, **_named(per_step, step_minutes), **_events(truth, forecast, scored, step_minutes)}


def _events(truth: NDArray, forecast: NDArray, scored: NDArray, step_minutes: float) -> dict[str, Any]:
    """``{event}_{stat}_{minutes}`` for both events at 30 and 60 min; ``None`` where the horizon is too short."""
    out: dict[str, Any] = {}
    for minutes in NAMED_HORIZONS_MIN:
        step = minutes_to_step(minutes, step_minutes)
        for event in EVENTS:
            if step < truth.shape[1]:
                rows = scored[:, step]
                stats = event_detection(truth[rows, step], forecast[rows, step], event)
            else:
                stats = dict.fromkeys(EVENT_STATS)
            out.update({f"{event}_{stat}_{minutes}": stats[stat] for stat in EVENT_STATS})
    return out


def horizon_metrics(
    truth: ArrayLike, forecast: ArrayLike, mask: ArrayLike, step_minutes: float = STEP_MINUTES
) -> dict[str, Any]:
    """RMSE, MAE (mg/dL) and MARD (%, also as ``mape``) at every horizon step, the 30- and 60-min values by name, and
    hypo/hyper detection at 30 and 60 min (see :func:`event_detection`).

    Returns ``{"rmse": [H], "mae": [H], "mard": [H], "mape": [H], "lag": [H], "n": [H], "rmse_30", "mae_30",
    "mard_30", "mape_30", "lag_30", "n_30", ... "_60", "hypo_sensitivity_30", ..., "hyper_events_60"}``; a step with
    no scored point, or a named horizon beyond H, is ``None``. ``lag`` needs window times and so is ``None`` here
    (see :func:`evaluate`).
    """
    truth, forecast, scored = _scored(truth, forecast, mask)
    return _horizon_metrics(truth, forecast, scored, step_minutes)


def _mean_over_patients(per_patient: Sequence[dict[str, Any]], horizon: int, step_minutes: float) -> dict[str, Any]:
    """Average each patient's metric with equal weight per patient, skipping patients where it is ``None`` (nothing
    scored there, an undefined detection ratio, or no lag computed)."""
    out: dict[str, Any] = {}
    for key in (*POINT_METRICS, "lag"):
        values = [[np.nan if v is None else v for v in p[key]] for p in per_patient]
        table = np.array(values, dtype=float).reshape(len(per_patient), horizon)
        counts = np.isfinite(table).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[key] = [_num(v) for v in np.nansum(table, axis=0) / counts]
        if key == "rmse":  # None exactly when n is 0, so its count is the number of patients scored at a step
            out["n_patients"] = [int(c) for c in counts]
    events: dict[str, Any] = {}
    for minutes in NAMED_HORIZONS_MIN:
        for event in EVENTS:
            for stat in ("sensitivity", "precision", "mcc"):
                key = f"{event}_{stat}_{minutes}"
                values = [p[key] for p in per_patient if p[key] is not None]
                events[key] = float(np.mean(values)) if values else None
    return {**out, **_named(out, step_minutes), **events}


# ----------------------------------------------------------------------------------------------------------------------
# Full evaluation
# ----------------------------------------------------------------------------------------------------------------------


def evaluate(
    truth: ArrayLike, forecast: ArrayLike, mask: ArrayLike, patient: ArrayLike, step_minutes: float = STEP_MINUTES,
    times: ArrayLike | None = None,
) -> dict[str, Any]:
    """All metrics for one test set, as a JSON-serialisable dict.

    Structure (``H`` = horizon steps; every number a float, int or ``None`` where nothing was scored)::

        {
          "step_minutes": 5, "horizon_minutes": [5, 10, ..., 5H],
          "pooled": {"rmse": [H], "mae": [H], "mard": [H], "mape": [H], "lag": [H], "n": [H],
                     "rmse_30", "mae_30", "mard_30", "mape_30", "lag_30", "n_30", ... the same with _60,
                     "hypo_sensitivity_30", "hypo_precision_30", "hypo_mcc_30", "hypo_events_30",
                     ... the same for hyper and for _60},
          "mean_over_patients": {"rmse": [H], "mae": [H], "mard": [H], "mape": [H], "lag": [H], "n_patients": [H],
                                 "rmse_30", ..., "n_patients_30", ... _60, and the event keys without _events},
          "per_patient": {patient_id: <same keys as "pooled">, ...},   # ids as strings, sorted
          "clarke_30": {"A", "B", "C", "D", "E", "A+B": percent, "n": points},
          "clarke_60": ..., "parkes_30": ..., "parkes_60": ...
        }

    RMSE/MAE are mg/dL; MARD and zone shares are percent. ``mape`` is the same number as ``mard`` (MARD is the CGM
    field's name for it; ``mape`` stays so older readers keep working). The mean over patients averages each
    patient's metric (BGLP convention) over the patients where it is defined. Zone shares and the pooled event
    counts pool all scored points at that horizon; Parkes uses the type 1 grid. Horizons beyond ``H`` give ``None``
    values with the same keys. Event detection: see :func:`event_detection`.

    Time lag (``lag``, minutes) needs ``times``, the origin time of each window (datetime64, or numbers in minutes;
    without it every lag is ``None``). For one patient and horizon step h, take the scored forecasts of step h and
    their truths as two series on the ``step_minutes`` grid of target times, f(t) and y(t). The lag is ``k *
    step_minutes`` for the shift k in 0..H that minimises the mean of (f(t + k) - y(t))^2 over the t where both
    exist (ties: the smaller k), i.e. how far the forecast series must be moved back in time to line up best with
    the truth. A forecaster that repeats the last reading has lag = its lead time; a perfect one has 0. The pooled
    lag minimises the squared error summed over all patients' pairs; the mean over patients averages the
    per-patient lags.
    """
    truth, forecast, scored = _scored(truth, forecast, mask)
    patient = np.asarray(patient).astype(str)
    if patient.shape != (truth.shape[0],):
        raise LLMTimeError(f"patient must hold one id per window ({truth.shape[0]}), got shape {patient.shape}")
    steps = None if times is None else _origin_steps(times, patient, step_minutes)

    horizon = truth.shape[1]
    per_patient: dict[str, dict[str, Any]] = {}
    pooled_sse, pooled_count = np.zeros((horizon, horizon + 1)), np.zeros((horizon, horizon + 1), dtype=int)
    for pid in sorted(set(patient.tolist())):
        rows = patient == pid
        lag = None
        if steps is not None:
            sse, count = _lag_costs(truth[rows], forecast[rows], scored[rows], steps[rows])
            pooled_sse, pooled_count = pooled_sse + sse, pooled_count + count
            lag = _lag_minutes(sse, count, step_minutes)
        per_patient[pid] = _horizon_metrics(truth[rows], forecast[rows], scored[rows], step_minutes, lag)
    pooled_lag = None if steps is None else _lag_minutes(pooled_sse, pooled_count, step_minutes)
    result: dict[str, Any] = {
        "step_minutes": step_minutes,
        "horizon_minutes": [(k + 1) * step_minutes for k in range(horizon)],
        "pooled": _horizon_metrics(truth, forecast, scored, step_minutes, pooled_lag),
        "mean_over_patients": _mean_over_patients(list(per_patient.values()), horizon, step_minutes),
        "per_patient": per_patient,
    }
    for minutes in NAMED_HORIZONS_MIN:
        step = minutes_to_step(minutes, step_minutes)
        if step < truth.shape[1]:
            ref, pred = truth[scored[:, step], step], forecast[scored[:, step], step]
        else:
            ref = pred = np.empty(0)
        result[f"clarke_{minutes}"] = zone_shares(clarke_zones(ref, pred))
        result[f"parkes_{minutes}"] = zone_shares(parkes_zones(ref, pred, diabetes_type=1))
    return result


def _origin_steps(times: ArrayLike, patient: NDArray, step_minutes: float) -> NDArray:
    """Each window's origin as a whole number of steps after its patient's first origin (checked: whole, unique)."""
    times = np.asarray(times)
    if times.shape != patient.shape:
        raise LLMTimeError(f"times must hold one origin time per window ({patient.shape[0]}), got shape {times.shape}")
    if np.issubdtype(times.dtype, np.datetime64):
        minutes = (times - times.min()) / np.timedelta64(1, "m") if len(times) else np.zeros(0)
    else:
        minutes = times.astype(float)
    steps = np.zeros(len(times), dtype=np.int64)
    for pid in set(patient.tolist()):
        rows = patient == pid
        offset = (minutes[rows] - minutes[rows].min()) / step_minutes
        if not np.allclose(offset, np.round(offset)):
            raise LLMTimeError(f"window times of patient {pid} are not on a {step_minutes}-min grid")
        steps[rows] = np.round(offset).astype(np.int64)
        if len(np.unique(steps[rows])) != int(rows.sum()):
            raise LLMTimeError(f"patient {pid} has two windows with the same origin time")
    return steps


def summary_row(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The flat headline numbers of an :func:`evaluate` result, one results-CSV row.

    Unprefixed point metrics and lags are means over patients (the BGLP ranking number); ``pooled_*`` are over all
    points. ``mard_*`` and ``mape_*`` are both written (one number; see :func:`evaluate`).
    """
    mean, pooled = metrics["mean_over_patients"], metrics["pooled"]
    row: dict[str, float | None] = {
        f"{key}_{minutes}": mean[f"{key}_{minutes}"]
        for minutes in NAMED_HORIZONS_MIN
        for key in (*POINT_METRICS, "lag")
    }
    for minutes in NAMED_HORIZONS_MIN:
        row[f"pooled_rmse_{minutes}"] = pooled[f"rmse_{minutes}"]
    # Events are rare per patient (a patient without a hypo has no hypo sensitivity), so the headline is pooled.
    for minutes in NAMED_HORIZONS_MIN:
        for event in EVENTS:
            for stat in ("sensitivity", "precision", "mcc"):
                row[f"pooled_{event}_{stat}_{minutes}"] = pooled[f"{event}_{stat}_{minutes}"]
    for minutes in NAMED_HORIZONS_MIN:
        row[f"clarke_ab_{minutes}"] = metrics[f"clarke_{minutes}"]["A+B"]
        row[f"clarke_a_{minutes}"] = metrics[f"clarke_{minutes}"]["A"]
    for minutes in NAMED_HORIZONS_MIN:
        row[f"parkes_ab_{minutes}"] = metrics[f"parkes_{minutes}"]["A+B"]
    return row
