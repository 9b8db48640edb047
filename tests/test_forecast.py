"""The forecast command: CSV in mg/dL and mmol/L (detected), OhioT1DM XML, and too-short input, on saved runs.

A Persistence checkpoint makes the pipeline checkable to the digit (its forecast is the carried-forward reading at
the origin); a tiny Time-LLM checkpoint shows units and file formats reach the model identically.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import forecast as forecast_cli
import run_main
from builders import TINY_BERT, cgm_times, sine_glucose, write_patient_xml
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from exp.forecast import forecast_file
from exp.run import train_and_test
from utils.errors import LLMTimeError

# Every test forecasts with runs trained end to end (and one through both command lines): the quick loop skips them.
pytestmark = pytest.mark.slow

SEQ_LEN = 72
MMOL = 18.016


def _readings(start: str, n: int, seed: int) -> pd.DataFrame:
    """Off-the-clock 5-minute readings in mmol/L (1 decimal) with a dropout, like a sensor export."""
    rng = np.random.default_rng(seed)
    ts = cgm_times(pd.Timestamp(start) + pd.Timedelta(seconds=83), n)
    mmol = np.round(sine_glucose(n, 7.8, 2.5, 18.0, 0.3, rng), 1)
    keep = np.ones(n, bool)
    keep[n // 2 : n // 2 + 4] = False  # a 20-minute dropout: inputs carried forward across it
    return pd.DataFrame({"ts": ts[keep], "mmol": mmol[keep]})


def _write_xml(folder, part: str, frame: pd.DataFrame):
    """Patient 7's file of these readings, in mg/dL as the OhioT1DM files hold them."""
    return write_patient_xml(folder, "7", part, frame.ts, frame.mmol * MMOL, value_format=".4f")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_backbones):
    """A tiny Time-LLM run and a Persistence run on a synthetic OhioT1DM-layout patient, plus its test readings."""
    root = tmp_path_factory.mktemp("forecast")
    data_dir = root / "data"
    data_dir.mkdir()
    train, test = _readings("2024-03-01 00:00", 3 * 288, 0), _readings("2024-03-04 00:10", 288, 1)
    _write_xml(data_dir, "training", train)
    test_file = _write_xml(data_dir, "testing", test)
    data = DataConfig(data="ohio", root_path=str(data_dir), patients=["7"], max_train_windows=64, max_val_windows=32)
    tiny = ModelConfig(llm_path=str(tiny_backbones["bert"]), **TINY_BERT)
    out = {}
    for name, model in (("timellm", tiny), ("persistence", ModelConfig(model="Persistence"))):
        cfg = RunConfig(checkpoints=str(root / "runs"), data=data, model=model, train=TrainConfig(train_epochs=1))
        out[name] = train_and_test(cfg).run_dir
    return out, test, test_file


def _write_csv(path, test: pd.DataFrame, mmol: bool):
    values = test.mmol if mmol else test.mmol * MMOL
    pd.DataFrame({"timestamp": test.ts.dt.strftime("%Y-%m-%d %H:%M:%S"), "glucose": values}).to_csv(path, index=False)
    return path


def test_csv_mgdl_persistence_is_the_carried_reading(runs, tmp_path):
    paths, test, _ = runs
    csv = _write_csv(tmp_path / "cgm.csv", test, mmol=False)
    result = forecast_file(paths["persistence"], csv, tmp_path / "out.csv")
    f = pd.read_csv(result.csv_path, parse_dates=["timestamp", "target_time_30", "target_time_60"])
    assert list(f.columns) == ["timestamp", "glucose_now", "forecast_30", "forecast_60", "target_time_30",
                               "target_time_60", "carried_inputs", "units"]
    grid = pd.Series((test.mmol * MMOL).to_numpy(), index=test.ts.dt.round("5min"))
    grid = grid.reindex(pd.date_range(grid.index[0], grid.index[-1], freq="5min"))
    assert len(f) == len(grid) - SEQ_LEN + 1  # every grid point with 6 h behind it, none skipped
    carried = grid.ffill().to_numpy()[SEQ_LEN - 1 :]
    np.testing.assert_allclose(f.forecast_30, carried, atol=0.051)
    np.testing.assert_allclose(f.forecast_60, carried, atol=0.051)
    assert (f.target_time_30 - f.timestamp == pd.Timedelta(minutes=30)).all()
    assert (f.target_time_60 - f.timestamp == pd.Timedelta(minutes=60)).all()
    assert f.glucose_now.isna().sum() == 4 and f.carried_inputs.max() == 4 and (f.units == "mg/dL").all()
    assert result.plot_path.stat().st_size > 10_000 and result.units_note is None


def test_csv_mmol_is_detected_and_reported_in_mmol(runs, tmp_path):
    paths, test, _ = runs
    mgdl = forecast_file(paths["timellm"], _write_csv(tmp_path / "a.csv", test, mmol=False), tmp_path / "a_out.csv")
    mmol = forecast_file(paths["timellm"], _write_csv(tmp_path / "b.csv", test, mmol=True), tmp_path / "b_out.csv")
    assert mmol.units == "mmol/L" and "read as mmol/L" in mmol.units_note and "mmol/L" in mmol.summary()
    assert (mmol.frame.units == "mmol/L").all()
    np.testing.assert_allclose(mmol.frame.glucose_now.dropna(), test.mmol.iloc[SEQ_LEN - 1 :], atol=1e-9)
    # Same readings, other units: the model saw the same mg/dL inputs (forecasts rounded to 0.01 mmol/L).
    np.testing.assert_allclose(mmol.frame.forecast_30 * MMOL, mgdl.frame.forecast_30, atol=0.2)
    forced = forecast_file(paths["timellm"], tmp_path / "b.csv", tmp_path / "c_out.csv", units="mmol")
    pd.testing.assert_frame_equal(forced.frame, mmol.frame)


def test_xml_input_through_both_commands_matches_the_csv(runs, tmp_path, capsys, monkeypatch):
    paths, test, xml = runs
    monkeypatch.chdir(tmp_path)
    assert run_main.main(["--is_training", "0", "--checkpoint", str(paths["timellm"]), "--input", str(xml)]) == 0
    assert "forecasts (30 and 60 min ahead)" in capsys.readouterr().out
    via_run_main = pd.read_csv(tmp_path / "7-ws-testing_forecast.csv")
    assert (tmp_path / "7-ws-testing_forecast.png").is_file()
    assert forecast_cli.main(["--checkpoint", str(paths["timellm"]), "--input", str(xml), "--output", "x.csv"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "x.csv"), via_run_main)
    from_csv = forecast_file(paths["timellm"], _write_csv(tmp_path / "c.csv", test, mmol=False), tmp_path / "c_o.csv")
    np.testing.assert_allclose(via_run_main.forecast_60, from_csv.frame.forecast_60, atol=0.051)


def test_too_short_input_is_one_line(runs, tmp_path, capsys):
    paths, test, _ = runs
    short = _write_csv(tmp_path / "short.csv", test.iloc[:60], mmol=False)  # 5 h: one 6-hour window needs 72 points
    with pytest.raises(LLMTimeError, match="needs 6 h of history"):
        forecast_file(paths["timellm"], short, tmp_path / "o.csv")
    assert forecast_cli.main(["--checkpoint", str(paths["persistence"]), "--input", str(short)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "short.csv" in err[0]
    assert not (tmp_path / "o.csv").exists()


def test_covariate_model_reads_a_file_without_events_as_none_and_says_so(runs, tmp_path):
    """Real logs are incomplete: a --features MS model still forecasts a file with no insulin or meal log, reading
    the missing events as none (as training does), and a warning line says so in case it is the wrong file."""
    paths, test, xml = runs
    data = DataConfig(data="ohio", root_path=str(xml.parent), patients=["7"], covariates=True)
    cfg = RunConfig(checkpoints=str(tmp_path), data=data, model=ModelConfig(model="Ridge"))
    run = train_and_test(cfg).run_dir
    for path in (xml, _write_csv(tmp_path / "cgm.csv", test, mmol=False)):
        with pytest.warns(UserWarning, match="logs no basal, bolus or meal.*reads them as none"):
            forecast_file(run, path, tmp_path / "o.csv")
        assert len(pd.read_csv(tmp_path / "o.csv")) > 0


def test_plot_is_in_the_units_of_the_csv(runs, tmp_path, monkeypatch):
    """mmol/L in, mmol/L out: the PNG's measured trace, forecasts and axis are in the CSV's units, not mg/dL."""
    import utils.plots

    paths, test, _ = runs
    drawn = {}
    save = utils.plots._save
    monkeypatch.setattr(utils.plots, "_save", lambda fig, path: (drawn.update(fig=fig), save(fig, path)))
    for mmol in (True, False):
        result = forecast_file(paths["persistence"], _write_csv(tmp_path / f"{mmol}.csv", test, mmol=mmol),
                               tmp_path / f"{mmol}_out.csv")
        ax = drawn["fig"].axes[0]
        assert ax.get_ylabel() == f"Glucose ({result.units})"
        lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
        measured, forecast_30 = np.asarray(lines["measured"], float), np.asarray(lines["forecast 30 min"], float)
        readings = test.mmol.to_numpy() if mmol else test.mmol.to_numpy() * MMOL
        assert np.nanmax(measured) == pytest.approx(readings.max(), abs=1e-6)
        assert np.nanmax(forecast_30) == pytest.approx(result.frame.forecast_30.max(), abs=0.051)


def test_predictions_csv_is_sorted_and_holds_the_readings_as_read(runs):
    """Truth is the reading from the file (no float32 round trip); rows go patient, time, horizon."""
    paths, test, _ = runs
    pred = pd.read_csv(paths["persistence"] / "predictions.csv", parse_dates=["timestamp"])
    readings = set(float(f"{v * MMOL:.4f}") for v in test.mmol)  # the XML holds 4 decimals
    assert set(pred.truth) <= readings
    order = pred.sort_values(["patient", "timestamp", "horizon_min"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(pred, order)
