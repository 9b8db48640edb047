"""Metric tests on points and arrays small enough to check by hand (error grids: test_error_grids.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from utils.errors import LLMTimeError
from utils.metrics import (
    evaluate,
    horizon_metrics,
    event_detection,
    minutes_to_step,
    summary_row,
)

# ---------------------------------------------------------------------------------------------------------------------
# Point metrics
# ---------------------------------------------------------------------------------------------------------------------


def test_minutes_to_step() -> None:
    assert minutes_to_step(30) == 5
    assert minutes_to_step(60) == 11
    assert minutes_to_step(5) == 0
    assert minutes_to_step(60, step_minutes=15) == 3
    for bad in (7, 0, -5):
        with pytest.raises(LLMTimeError):
            minutes_to_step(bad)


def test_horizon_metrics_hand_computed() -> None:
    # 30-min steps so step 0 is the 30-min and step 1 the 60-min horizon.
    truth = np.array([[100.0, 100.0], [200.0, 200.0]])
    forecast = np.array([[110.0, 90.0], [180.0, 230.0]])
    m = horizon_metrics(truth, forecast, np.ones_like(truth, dtype=bool), step_minutes=30)
    # step 0: errors +10, -20 -> RMSE sqrt(250), MAE 15, MAPE (10 % + 10 %) / 2
    # step 1: errors -10, +30 -> RMSE sqrt(500), MAE 20, MAPE (10 % + 15 %) / 2
    assert m["rmse"] == pytest.approx([math.sqrt(250), math.sqrt(500)])
    assert m["mae"] == pytest.approx([15.0, 20.0])
    assert m["mape"] == pytest.approx([10.0, 12.5])
    assert m["mard"] == m["mape"] and m["mard_60"] == m["mape_60"]  # MARD: the field's name, the old key kept
    assert m["lag"] == [None, None]  # needs window times (evaluate)
    assert m["n"] == [2, 2]
    assert (m["rmse_30"], m["mae_60"], m["mape_60"], m["n_30"]) == pytest.approx((math.sqrt(250), 20.0, 12.5, 2))


def test_masked_and_nan_truth_are_ignored() -> None:
    truth = np.array([[100.0], [200.0], [np.nan], [150.0]])
    forecast = np.array([[110.0], [190.0], [999.0], [np.nan]])
    mask = np.array([[True], [True], [True], [False]])  # NaN truth ignored despite its mask; masked NaN forecast ok
    m = horizon_metrics(truth, forecast, mask, step_minutes=30)
    assert m["rmse"] == pytest.approx([10.0])
    assert m["n"] == [2]


def test_named_horizons_at_5_min_sampling() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(60, 300, size=(20, 12))
    forecast = truth + rng.normal(0, 10, size=truth.shape)
    m = horizon_metrics(truth, forecast, np.ones(truth.shape, dtype=bool))
    assert m["rmse_30"] == m["rmse"][5]
    assert m["rmse_60"] == m["rmse"][11]
    short = horizon_metrics(truth[:, :6], forecast[:, :6], np.ones((20, 6), dtype=bool))
    assert short["rmse_30"] == short["rmse"][5]
    assert short["rmse_60"] is None and short["n_60"] is None


def test_step_without_scored_points_is_none() -> None:
    m = horizon_metrics([[100.0, 100.0]], [[100.0, 100.0]], [[True, False]], step_minutes=30)
    assert m["rmse"] == [0.0, None]
    assert m["n"] == [1, 0]


def test_input_errors() -> None:
    ok = np.ones((2, 3))
    with pytest.raises(LLMTimeError, match="shape"):
        horizon_metrics(ok * 100, np.ones((2, 2)), ok.astype(bool))
    with pytest.raises(LLMTimeError, match="non-finite"):
        horizon_metrics(ok * 100, np.full((2, 3), np.nan), ok.astype(bool))
    with pytest.raises(LLMTimeError, match="positive"):
        horizon_metrics(ok * -0.5, ok, ok.astype(bool))
    with pytest.raises(LLMTimeError, match="patient"):
        evaluate(ok * 100, ok * 100, ok.astype(bool), ["a"])


# ---------------------------------------------------------------------------------------------------------------------
# evaluate / summary_row
# ---------------------------------------------------------------------------------------------------------------------


def _two_patient_case() -> dict:
    """Patient 1: one window, error 10. Patient 2: three windows, error 30. 30-min steps, H = 2."""
    truth = np.full((4, 2), 100.0)
    forecast = np.array([[110.0, 110.0], [130.0, 130.0], [130.0, 130.0], [130.0, 130.0]])
    return evaluate(truth, forecast, np.ones((4, 2), dtype=bool), np.array([1, 2, 2, 2]), step_minutes=30)


def test_mean_over_patients_differs_from_pooled() -> None:
    result = _two_patient_case()
    assert list(result["per_patient"]) == ["1", "2"]
    assert result["per_patient"]["1"]["rmse_30"] == pytest.approx(10.0)
    assert result["per_patient"]["2"]["rmse_30"] == pytest.approx(30.0)
    assert result["mean_over_patients"]["rmse_30"] == pytest.approx(20.0)  # (10 + 30) / 2
    assert result["pooled"]["rmse_30"] == pytest.approx(math.sqrt((100 + 3 * 900) / 4))
    assert result["pooled"]["mae_30"] == pytest.approx(25.0)  # (10 + 3 * 30) / 4
    assert result["mean_over_patients"]["n_patients_30"] == 2
    assert result["horizon_minutes"] == [30, 60]


def test_patient_without_scored_points_is_skipped_in_mean() -> None:
    truth = np.full((3, 1), 100.0)
    forecast = np.array([[110.0], [130.0], [500.0]])
    mask = np.array([[True], [True], [False]])
    result = evaluate(truth, forecast, mask, ["a", "b", "c"], step_minutes=30)
    assert result["per_patient"]["c"]["rmse_30"] is None
    assert result["mean_over_patients"]["rmse_30"] == pytest.approx(20.0)
    assert result["mean_over_patients"]["n_patients_30"] == 2


def test_zone_shares_in_evaluate() -> None:
    # 30-min step: (100,100) A, (100,130) B, (50,200) E, (300,100) D; the 60-min step is all exact (A).
    truth = np.array([[100.0, 100.0], [100.0, 100.0], [50.0, 100.0], [300.0, 100.0]])
    forecast = np.array([[100.0, 100.0], [130.0, 100.0], [200.0, 100.0], [100.0, 100.0]])
    result = evaluate(truth, forecast, np.ones((4, 2), dtype=bool), ["p"] * 4, step_minutes=30)
    assert result["clarke_30"] == {"A": 25.0, "B": 25.0, "C": 0.0, "D": 25.0, "E": 25.0, "A+B": 50.0, "n": 4}
    assert result["clarke_60"]["A"] == 100.0
    assert result["parkes_60"]["A+B"] == 100.0
    assert sum(result["parkes_30"][z] for z in "ABCDE") == pytest.approx(100.0)


def test_evaluate_is_strict_json_and_short_horizon_keeps_keys() -> None:
    truth = np.full((2, 6), 120.0)
    result = evaluate(truth, truth + 5, np.ones((2, 6), dtype=bool), ["a", "b"])  # 5-min steps, 30 min only
    json.dumps(result, allow_nan=False)
    assert result["pooled"]["rmse_60"] is None
    assert result["clarke_60"] == {"A": None, "B": None, "C": None, "D": None, "E": None, "A+B": None, "n": 0}
    assert result["clarke_30"]["A"] == 100.0


def test_summary_row() -> None:
    row = summary_row(_two_patient_case())
    assert set(row) == {
        "rmse_30", "mae_30", "mard_30", "mape_30", "lag_30", "rmse_60", "mae_60", "mard_60", "mape_60", "lag_60",
        "pooled_rmse_30", "pooled_rmse_60",
        *(f"pooled_{e}_{s}_{m}" for e in ("hypo", "hyper") for s in ("sensitivity", "precision", "mcc")
          for m in (30, 60)),
        "clarke_ab_30", "clarke_a_30", "clarke_ab_60", "clarke_a_60",
        "parkes_ab_30", "parkes_ab_60",
    }  # fmt: skip
    assert row["rmse_30"] == pytest.approx(20.0)
    assert row["pooled_rmse_30"] == pytest.approx(math.sqrt(700))
    # +10 % is A, +30 % is B on both grids at 100 mg/dL (Parkes A upper at 100 is 126.4).
    assert row["clarke_a_30"] == pytest.approx(25.0)
    assert row["clarke_ab_30"] == pytest.approx(100.0)
    assert row["parkes_ab_60"] == pytest.approx(100.0)


# ---------------------------------------------------------------------------------------------------------------------
# Hypo/hyper detection and time lag
# ---------------------------------------------------------------------------------------------------------------------

# truth, forecast (mg/dL); 70 is not a hypo and 180 not a hyper (strict thresholds).
EVENT_TRUTH = np.array([60.0, 65, 100, 150, 190, 200, 65, 120, 70])
EVENT_FORECAST = np.array([65.0, 80, 68, 150, 185, 170, 60, 190, 180])


def test_event_detection_hand_computed() -> None:
    hypo = event_detection(EVENT_TRUTH, EVENT_FORECAST, "hypo")
    # real < 70: 0, 1, 6; flagged < 70: 0, 2, 6 -> TP 2, FP 1, FN 1, TN 5
    assert hypo["sensitivity"] == pytest.approx(2 / 3) and hypo["precision"] == pytest.approx(2 / 3)
    assert hypo["mcc"] == pytest.approx((2 * 5 - 1 * 1) / math.sqrt(3 * 3 * 6 * 6)) and hypo["events"] == 3
    hyper = event_detection(EVENT_TRUTH, EVENT_FORECAST, "hyper")
    # real > 180: 4, 5; flagged > 180: 4, 7 -> TP 1, FP 1, FN 1, TN 6
    assert hyper["sensitivity"] == pytest.approx(0.5) and hyper["precision"] == pytest.approx(0.5)
    assert hyper["mcc"] == pytest.approx((1 * 6 - 1 * 1) / math.sqrt(2 * 2 * 7 * 7)) and hyper["events"] == 2


def test_event_detection_undefined_ratios_are_none() -> None:
    none = event_detection(np.array([100.0, 120.0]), np.array([100.0, 60.0]), "hypo")  # no hypo; one false alarm
    assert none == {"sensitivity": None, "precision": 0.0, "mcc": None, "events": 0}
    with pytest.raises(LLMTimeError, match="event"):
        event_detection(EVENT_TRUTH, EVENT_FORECAST, "low")


def test_events_in_evaluate_per_patient_mean_and_pooled() -> None:
    # 30-min steps: step 0 is 30 min. Patient a holds the first 4 points, b the other 5.
    truth = np.column_stack([EVENT_TRUTH, EVENT_TRUTH])
    forecast = np.column_stack([EVENT_FORECAST, EVENT_TRUTH])  # the 60-min forecast is perfect
    result = evaluate(truth, forecast, np.ones_like(truth, dtype=bool), ["a"] * 4 + ["b"] * 5, step_minutes=30)
    pooled, a, b = result["pooled"], result["per_patient"]["a"], result["per_patient"]["b"]
    assert pooled["hypo_sensitivity_30"] == pytest.approx(2 / 3) and pooled["hyper_events_30"] == 2
    assert pooled["hypo_mcc_60"] == pytest.approx(1.0) and pooled["hyper_precision_60"] == pytest.approx(1.0)
    # a: hypo real 0, 1, flagged 0, 2 -> sens 1/2, prec 1/2; b: hypo real 6, flagged 6 -> 1, 1
    assert (a["hypo_sensitivity_30"], b["hypo_sensitivity_30"]) == pytest.approx((0.5, 1.0))
    assert result["mean_over_patients"]["hypo_sensitivity_30"] == pytest.approx(0.75)
    # a has no hyper (sensitivity undefined); b has 4 (caught) and 5 (missed): the mean is b's alone
    assert a["hyper_sensitivity_30"] is None and b["hyper_sensitivity_30"] == pytest.approx(0.5)
    assert result["mean_over_patients"]["hyper_sensitivity_30"] == pytest.approx(0.5)
    assert summary_row(result)["pooled_hypo_precision_30"] == pytest.approx(2 / 3)
    json.dumps(result, allow_nan=False)


def test_time_lag_hand_computed_per_patient_mean_and_pooled() -> None:
    """One 30-min step. a repeats the previous reading (lag 30 min); b is perfect (lag 0).

    a, k=0: f-y = 50, -100, 100, -100 -> MSE 8125; k=1: f(t+1)-y(t) = 0, 0, 0 -> MSE 0.
    b, k=0: MSE 0; k=1: 10, -10 -> MSE 100. Pooled: k=0 32500/7, k=1 200/5 -> 30 min.
    """
    truth = np.array([[100.0], [200.0], [100.0], [200.0], [100.0], [110.0], [100.0]])
    forecast = np.array([[150.0], [100.0], [200.0], [100.0], [100.0], [110.0], [100.0]])
    times = np.array([0, 30, 60, 90, 0, 30, 60], dtype=float)
    result = evaluate(truth, forecast, np.ones_like(truth, dtype=bool), list("aaaabbb"), step_minutes=30, times=times)
    assert result["per_patient"]["a"]["lag"] == [30.0] and result["per_patient"]["a"]["lag_30"] == 30.0
    assert result["per_patient"]["b"]["lag_30"] == 0.0
    assert result["mean_over_patients"]["lag_30"] == pytest.approx(15.0)
    assert result["pooled"]["lag_30"] == 30.0
    assert summary_row(result)["lag_30"] == pytest.approx(15.0)


def test_time_lag_aligns_by_time_not_by_row() -> None:
    """Targets at grid positions 1, 2, 4 (a missing window): y = 100, 200, 300; f = 100, 180, 200.

    k=0: (0 + 400 + 10000) / 3 = 3467; k=1 pairs only f(2)-y(1) = 80 -> 6400, so the lag is 0. Shifting by rows
    would pair 200 with 200 as well and wrongly find (6400 + 0) / 2 = 3200 at one step.
    """
    truth, forecast = np.array([[100.0], [200.0], [300.0]]), np.array([[100.0], [180.0], [200.0]])
    stamps = np.array(["2024-01-01T00:00", "2024-01-01T00:30", "2024-01-01T01:30"], dtype="datetime64[ns]")
    result = evaluate(truth, forecast, np.ones((3, 1), dtype=bool), ["p"] * 3, step_minutes=30, times=stamps)
    assert result["pooled"]["lag_30"] == 0.0


def test_persistence_lag_is_its_lead_time() -> None:
    g = 120 + 50 * np.sin(np.arange(300) / 20)
    origins = np.arange(12, 300 - 12)
    truth = np.stack([g[origins + h + 1] for h in range(12)], axis=1)
    forecast = np.repeat(g[origins][:, None], 12, axis=1)
    result = evaluate(truth, forecast, np.ones_like(truth, dtype=bool), ["p"] * len(origins), times=origins * 5.0)
    assert result["pooled"]["lag"] == [5.0 * (h + 1) for h in range(12)]
    assert (result["pooled"]["lag_30"], result["pooled"]["lag_60"]) == (30.0, 60.0)


def test_time_lag_input_errors() -> None:
    ones = np.ones((2, 1))
    with pytest.raises(LLMTimeError, match="grid"):
        evaluate(ones * 100, ones * 100, ones.astype(bool), ["p", "p"], step_minutes=30, times=[0.0, 45.0])
    with pytest.raises(LLMTimeError, match="same origin time"):
        evaluate(ones * 100, ones * 100, ones.astype(bool), ["p", "p"], step_minutes=30, times=[0.0, 0.0])
    with pytest.raises(LLMTimeError, match="one origin time per window"):
        evaluate(ones * 100, ones * 100, ones.astype(bool), ["p", "p"], step_minutes=30, times=[0.0])


def test_printed_table_footer_shows_mard_lag_and_events() -> None:
    from pathlib import Path as FsPath

    from exp.run import RunResult, format_table

    truth = np.column_stack([EVENT_TRUTH, EVENT_TRUTH])
    forecast = np.column_stack([EVENT_FORECAST, EVENT_TRUTH])
    metrics = evaluate(truth, forecast, np.ones_like(truth, dtype=bool), ["a"] * 4 + ["b"] * 5, step_minutes=30,
                       times=np.array([0, 30, 60, 90, 0, 30, 60, 90, 120], dtype=float))
    row = {**summary_row(metrics), "weights_source": "none", "trainable_params": 0, "total_params": 0}
    footer = format_table(RunResult(FsPath("run"), metrics, row, None, None)).splitlines()
    assert footer[-3].startswith(f"MARD: {row['mard_30']:.2f}% (30 min), 0.00% (60 min); time lag: ")
    assert footer[-2] == ("hypo (< 70 mg/dL), all points: 30 min sensitivity 0.67, precision 0.67, MCC 0.50; "
                          "60 min sensitivity 1.00, precision 1.00, MCC 1.00")
    assert footer[-1].startswith("hyper (> 180 mg/dL), all points: 30 min sensitivity 0.50, precision 0.50, MCC 0.36")
