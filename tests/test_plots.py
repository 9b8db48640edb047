"""Each plot writes a real PNG atomically; grid letters sit in the zones they name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils.errors import LLMTimeError
from utils.error_grids import clarke_zones, parkes_zones
from utils.plots import (
    CLARKE_LABELS,
    PARKES_LABELS,
    _with_gap_breaks,
    plot_bars,
    plot_clarke,
    plot_forecast,
    plot_paired,
    plot_parkes,
    plot_scatter,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == [path.name], "temporary file left behind"


def _pairs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ref = rng.uniform(40, 400, 300)
    pred = ref * rng.lognormal(0, 0.3, ref.size)
    # NaN pairs are dropped; out-of-frame and negative predictions are drawn on the edge.
    return np.r_[ref, np.nan, 120.0, 300.0], np.r_[pred, 100.0, -20.0, 900.0]


def test_plot_clarke_writes_png(tmp_path: Path) -> None:
    ref, pred = _pairs()
    plot_clarke(ref, pred, tmp_path / "clarke.png", "test")
    _assert_png(tmp_path / "clarke.png")


@pytest.mark.parametrize("diabetes_type", [1, 2])
def test_plot_parkes_writes_png(tmp_path: Path, diabetes_type: int) -> None:
    ref, pred = _pairs()
    plot_parkes(ref, pred, tmp_path / "parkes.png", "test", diabetes_type=diabetes_type)
    _assert_png(tmp_path / "parkes.png")


def test_grid_plots_accept_empty_input(tmp_path: Path) -> None:
    plot_clarke([], [], tmp_path / "clarke.png", "empty")
    _assert_png(tmp_path / "clarke.png")


def test_zone_letters_sit_in_their_zones() -> None:
    for zone, ref, pred in CLARKE_LABELS:
        assert clarke_zones([ref], [pred])[0] == zone, (zone, ref, pred)
    for diabetes_type in (1, 2):
        for zone, ref, pred in PARKES_LABELS:
            assert parkes_zones([ref], [pred], diabetes_type)[0] == zone, (diabetes_type, zone, ref, pred)


def test_plot_forecast_writes_png(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=3 * 288, freq="5min")
    truth = 140 + 50 * np.sin(np.arange(times.size) / 30)
    truth[100:120] = np.nan
    keep = np.ones(times.size, dtype=bool)
    keep[300:330] = False  # dropped rows: the line must break here too
    forecasts = {"30 min": truth[keep] + 5, "60 min": truth[keep] - 10}
    plot_forecast(times[keep], truth[keep], forecasts, tmp_path / "trace.png", "patient 1")
    _assert_png(tmp_path / "trace.png")


def test_plot_forecast_checks_alignment(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=10, freq="5min")
    with pytest.raises(LLMTimeError):
        plot_forecast(times, np.ones(10), {"30 min": np.ones(9)}, tmp_path / "x.png", "bad")
    with pytest.raises(LLMTimeError):
        plot_forecast(times[::-1], np.ones(10), {}, tmp_path / "x.png", "unsorted")


def test_gap_breaks_insert_nan_only_at_missing_rows() -> None:
    times = pd.DatetimeIndex(pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:10",
                                             "2024-01-01 01:00", "2024-01-01 01:05"]))  # fmt: skip
    stamps, values = _with_gap_breaks(times, np.arange(5.0))
    assert len(stamps) == 6
    assert np.isnan(values[3]) and np.count_nonzero(np.isnan(values)) == 1


def test_plot_paired_writes_png_and_needs_an_outcome_per_row(tmp_path: Path) -> None:
    diffs = {"Ridge (MS)": [1.0, 3.5, 2.0], "Persistence (S)": np.array([-2.0, -1.0, -3.0]), "Empty (S)": []}
    plot_paired(diffs, {"Ridge (MS)": "worse", "Persistence (S)": "better", "Empty (S)": "level"},
                tmp_path / "paired.png", "TimeLLM (MS) minus each row", "mg/dL")
    _assert_png(tmp_path / "paired.png")
    with pytest.raises(LLMTimeError, match="an outcome for each"):
        plot_paired(diffs, {"Ridge (MS)": "worse"}, tmp_path / "bad.png", "t", "x")
    assert not (tmp_path / "bad.png").exists()


def test_plot_bars_writes_png(tmp_path: Path) -> None:
    plot_bars(["a", "b", "c"], [20.0, 25.0, 22.0], [1.0, 2.0, np.nan], tmp_path / "bars.png", "RMSE", "mg/dL")
    _assert_png(tmp_path / "bars.png")
    plot_bars(["a", "b"], [20.0, 25.0], None, tmp_path / "bars.png", "RMSE", "mg/dL")
    _assert_png(tmp_path / "bars.png")
    with pytest.raises(LLMTimeError):
        plot_bars(["a"], [1.0, 2.0], None, tmp_path / "bad.png", "t", "y")


def test_plot_scatter_writes_png(tmp_path: Path) -> None:
    latency, rmse = [10.0, 50.0, 200.0], [21.0, 19.5, 18.7]
    plot_scatter(latency, rmse, ["arima", "llama", "gpt2"], tmp_path / "s.png", "t", "ms", "RMSE")
    _assert_png(tmp_path / "s.png")
    with pytest.raises(LLMTimeError):
        plot_scatter([1.0], [1.0, 2.0], ["a"], tmp_path / "bad.png", "t", "x", "y")
