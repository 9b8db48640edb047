"""Bring your own data: the dataset registry, ``--data csv`` against the XML reader, unit checks on both CSV paths
(training data and the forecast command), and what an unlogged basal or a gap between two files means."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

import forecast as forecast_cli
import run_main
from builders import TINY, cgm_times, sine_glucose, write_patient_xml
from configs import DataConfig, ModelConfig, RunConfig
from data_provider.channels import BASAL_LOGGED, channel_names
from data_provider.data_factory import Scaler, build_splits
from data_provider.datasets import dataset, dataset_name, description, patient_ids
from exp.forecast import forecast_file, read_input
from models import build_model
from models.prompt import PromptBuilder, render
from scripts import xml_to_csv
from utils.errors import LLMTimeError

PATIENTS = ["1001", "1002"]
MMOL = 18.016


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Two bundled patients written as CSV by the converter, and the splits of both layouts (meals and insulin on)."""
    folder = tmp_path_factory.mktemp("csv")
    assert xml_to_csv.main(["--root", "dataset/simulated", "--out", str(folder), "--patients", ",".join(PATIENTS)]) == 0
    xml = DataConfig(patients=PATIENTS, covariates=True)
    csv = dataclasses.replace(xml, data="csv", root_path=str(folder))
    return folder, xml, build_splits(xml), csv, build_splits(csv)


def _same_windows(a, b, exact=True) -> None:
    for part in ("train", "val", "test"):
        x, y = getattr(a, part), getattr(b, part)
        np.testing.assert_array_equal(x.origins.numpy(), y.origins.numpy())
        np.testing.assert_array_equal(x.mask.numpy(), y.mask.numpy())
        np.testing.assert_array_equal(x.origin_time, y.origin_time)
        check = np.testing.assert_array_equal if exact else lambda u, v: np.testing.assert_allclose(u, v, atol=1e-5)
        check(x.inputs.numpy(), y.inputs.numpy())
        check(x.targets.numpy(), y.targets.numpy())


def _ridge_forecasts(cfg: DataConfig, splits) -> np.ndarray:
    model = build_model(ModelConfig(model="Ridge"), cfg, splits.scaler, splits.description)
    model.fit_closed_form(splits.train)
    with torch.no_grad():
        return model(splits.test.__getitems__(list(range(len(splits.test))))["x"]).numpy()


def test_a_converted_cohort_gives_the_xml_windows(converted):
    folder, xml, from_xml, csv, from_csv = converted
    names = [f"{p}-{part}.csv" for p in PATIENTS for part in ("test", "train")]
    assert sorted(p.name for p in folder.iterdir()) == names
    _same_windows(from_xml, from_csv)
    np.testing.assert_array_equal(from_xml.scaler.mean, from_csv.scaler.mean)
    np.testing.assert_array_equal(from_xml.scaler.std, from_csv.scaler.std)
    assert len(from_csv.train.inputs[0]) == len(channel_names(csv)) == 6  # glucose, basal, bolus, carbs, logged, filled


def test_one_file_per_patient_and_one_cohort_file_cut_by_date(converted, tmp_path):
    """The same patient as one unsorted file cut by --test_start or --test_days, and in a cohort file with other
    column names (Nightscout's) and mmol/L readings, gives the windows of its two files."""
    folder, _, _, csv, from_csv = converted
    frames = {p: pd.concat([pd.read_csv(folder / f"{p}-{part}.csv") for part in ("train", "test")]) for p in PATIENTS}
    test_file = pd.read_csv(folder / "1001-test.csv")
    test_start = test_file.loc[test_file["glucose"].notna(), "timestamp"].min()  # its first reading's mark
    one = tmp_path / "one"
    one.mkdir()
    frames["1001"].sample(frac=1.0, random_state=0).to_csv(one / "1001.csv", index=False)
    by_date = build_splits(dataclasses.replace(csv, root_path=str(one), patients=["1001"], test_start=test_start))
    reference = build_splits(dataclasses.replace(csv, patients=["1001"]))
    _same_windows(reference, by_date)
    test_days = (pd.Timestamp(frames["1001"]["timestamp"].max()) - pd.Timestamp(test_start)).days + 1
    by_days = build_splits(dataclasses.replace(csv, root_path=str(one), patients=["1001"], test_days=test_days))
    assert len(by_days.test) >= len(reference.test) > 0

    cohort = pd.concat([f.assign(subject=p) for p, f in frames.items()]).rename(
        columns={"timestamp": "dateString", "glucose": "sgv"})
    cohort["sgv"] = cohort["sgv"] / MMOL
    cohort.sample(frac=1.0, random_state=1).to_csv(tmp_path / "cohort.csv", index=False)
    columns = ["patient=subject", "timestamp=dateString", "glucose=sgv"]
    long = dataclasses.replace(csv, root_path=str(tmp_path / "cohort.csv"), csv_columns=columns,
                               test_start=test_start, patients=["1001"])
    _same_windows(reference, build_splits(long), exact=False)
    assert patient_ids(long) == PATIENTS and patient_ids(csv) == PATIENTS


@pytest.mark.slow
def test_a_converted_cohort_gives_the_xml_forecasts(converted, tmp_path):
    """Ridge (closed form: deterministic) fit on either layout forecasts every test window identically; a Ridge run
    forecasts a test file identically from the XML and from the CSV through the forecast command, and a forecast
    whose inputs lie inside the test file equals the run's own test forecast for that origin."""
    folder, xml, from_xml, csv, from_csv = converted
    np.testing.assert_array_equal(_ridge_forecasts(xml, from_xml), _ridge_forecasts(csv, from_csv))
    cfg = RunConfig(checkpoints=str(tmp_path), data=dataclasses.replace(xml, patients=["1001"]),
                    model=ModelConfig(model="Ridge"))
    from exp.run import train_and_test

    run = train_and_test(cfg).run_dir
    via_xml = forecast_file(run, "dataset/simulated/1001-ws-testing.xml.gz", tmp_path / "a.csv")
    via_csv = forecast_file(run, folder / "1001-test.csv", tmp_path / "b.csv")
    pd.testing.assert_frame_equal(via_xml.frame, via_csv.frame)
    predictions = pd.read_csv(run / "predictions.csv", parse_dates=["timestamp"])
    at_30 = predictions[predictions["horizon_min"] == 30].set_index("timestamp")["forecast"]
    frame = via_csv.frame.set_index("target_time_30")["forecast_30"]
    inside = frame.index[72 + 6 :]  # origins whose 6 h of inputs are all in the testing file
    common = inside.intersection(at_30.index)
    assert len(common) > 2000
    np.testing.assert_allclose(frame[common], at_30[common], atol=0.051)  # both rounded to 0.1 mg/dL


# --- bad files: one line saying what is wrong, on the --data csv path and the forecast path --------------------------

def _readings(n: int = 3 * 288, start: str = "2024-03-01 00:01:23", level: float = 140.0) -> pd.DataFrame:
    values = np.round(sine_glucose(n, level, 40, 18.0, 3, np.random.default_rng(0)))
    return pd.DataFrame({"timestamp": cgm_times(start, n).strftime("%Y-%m-%d %H:%M:%S"), "glucose": values})


def _switching() -> pd.DataFrame:
    """Two days in mg/dL, then (from line 578) the same trace in mmol/L: the export changed units part-way."""
    frame = _readings(3 * 288, level=234.0)
    frame["glucose"] = frame["glucose"].astype(float)
    frame.loc[576:, "glucose"] = np.round(frame.loc[576:, "glucose"] / MMOL, 1)
    return frame


BAD = {
    "empty file": ("", "is empty"),
    "no glucose column": ("timestamp,sgv\n2024-03-01 00:00,120\n", "has no glucose column.*--csv_columns"),
    "unparseable times": ("timestamp,glucose\n2024-03-01 00:00,120\nyesterday,130\n",
                          "1 timestamps are neither ISO 8601.*line 3: 'yesterday'"),
    "a unit change": (_switching(), r"glucose units change at line 578 \(2024-03-03 00:01:23\): readings before it "
                                    r"look like mg/dL .* from it on like mmol/L"),
    "all negative": (_readings().assign(glucose=lambda f: -f["glucose"] * 16), r"glucose values are negative "
                                                                                r"\(median -2\d\d\d\.\d\)"),
    "duplicate timestamps": ("timestamp,glucose\n2024-03-01 00:00,120\n2024-03-01 00:05,125\n2024-03-01 00:00,180\n",
                             "lines 2 and 4 give different glucose readings at 2024-03-01 00:00:00 .120 and 180."),
    "a 20 MB value": ("timestamp,glucose\n2024-03-01 00:00," + "9x" * 10_000_000 + "\n",
                      r"1 glucose values are not numbers \(e.g. line 2: '(9x){20}'...\)$"),
    "offsets and none": ("timestamp,glucose\n2024-03-01T00:00:00Z,120\n2024-03-01 00:05,125\n",
                         "some timestamps have a UTC offset .line 2.*and some do not .line 3"),
}


def _write(path, content):
    if isinstance(content, pd.DataFrame):
        content.to_csv(path, index=False)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("case", BAD)
def test_a_bad_csv_is_one_line_on_both_paths(case, tmp_path):
    content, message = BAD[case]
    folder = tmp_path / "cohort"
    folder.mkdir()
    path = _write(folder / "7.csv", content)
    for read in (lambda: build_splits(DataConfig(data="csv", root_path=str(folder), test_days=1)),
                 lambda: forecast_file(tmp_path / "no_run", path, tmp_path / "out.csv")):  # fails before the model
        with pytest.raises(LLMTimeError, match=message) as err:
            read()
        assert "\n" not in str(err.value) and len(str(err.value)) < 400


def test_the_command_lines_print_one_line_and_exit_2(tmp_path, capsys):
    path = _write(tmp_path / "7.csv", _switching())
    assert run_main.main(["--data", "csv", "--root_path", str(tmp_path), "--test_days", "1"]) == 2
    assert forecast_cli.main(["--checkpoint", str(tmp_path), "--input", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") and "units change at line 578" in line for line in err)


def test_xml_files_get_the_same_unit_checks(tmp_path):
    """OhioT1DM XML, for training and for the forecast command: a unit change is refused, negative values are
    called negative (not 'mmol/L'), and a non-numeric value is quoted cut short."""
    frame = _switching()
    times = pd.to_datetime(frame["timestamp"])
    cases = {
        "switch": (frame["glucose"], "units change at the reading at 2024-03-03 00:01:23"),
        "negative": (-frame["glucose"] * 16, "glucose values are negative"),
    }
    for name, (values, message) in cases.items():
        folder = tmp_path / name
        path = write_patient_xml(folder, "7", "training", times, values, value_format=".1f")
        with pytest.raises(LLMTimeError, match=message):
            build_splits(DataConfig(data="ohio", root_path=str(folder)))
        with pytest.raises(LLMTimeError, match=message):
            read_input(path, "auto")
    long = write_patient_xml(tmp_path / "text", "7", "training", ["01-03-2024 00:00:00"], [1.0])
    long.write_text(long.read_text().replace('value="1"', 'value="' + "x" * 5000 + '"'))
    with pytest.raises(LLMTimeError, match=r"\(e.g. 'x{40}'...\)$"):
        read_input(long, "auto")


def test_units_are_decided_per_file_and_can_be_given(tmp_path):
    """A patient's training file in mg/dL and testing file in mmol/L read as the same patient in mg/dL throughout;
    --glucose_units mgdl on a mmol/L file is refused; the forecast command reports a mmol/L file in mmol/L."""
    train, test = _readings(3 * 288), _readings(288, start="2024-03-04 01:01:23")
    _write(tmp_path / "7-train.csv", train)
    _write(tmp_path / "7-test.csv", test.assign(glucose=test["glucose"] / MMOL))
    _write(tmp_path / "8-train.csv", train)
    _write(tmp_path / "8-test.csv", test)
    auto = build_splits(DataConfig(data="csv", root_path=str(tmp_path), patients=["7", "8"]))
    seven, eight = (auto.test.patient == "7"), (auto.test.patient == "8")
    np.testing.assert_allclose(auto.test.targets_mgdl[: len(auto.test.targets_mgdl) // 2],
                               auto.test.targets_mgdl[len(auto.test.targets_mgdl) // 2 :], atol=1e-9, equal_nan=True)
    assert seven.sum() == eight.sum() > 0
    mgdl_given = r"7-test.csv looks like mmol/L \(median \d+\.\d\) but --glucose_units mgdl was given"
    with pytest.raises(LLMTimeError, match=mgdl_given):
        build_splits(DataConfig(data="csv", root_path=str(tmp_path), patients=["7"], glucose_units="mgdl"))
    grid, units, note = read_input(_write(tmp_path / "m.csv", test.assign(glucose=test["glucose"] / MMOL)), "auto")
    assert units == "mmol/L" and "read as mmol/L" in note
    np.testing.assert_allclose(grid["glucose"].dropna().to_numpy(), test["glucose"].to_numpy(), atol=1e-9)


def test_time_zones_and_epoch_times(tmp_path):
    """Offsets (Nightscout's dateString) are converted to UTC, epoch milliseconds too; naive times stay as written."""
    frame = _readings(288)
    utc = pd.to_datetime(frame["timestamp"])
    local = (utc.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris"))
    grids = {}
    for name, stamps in {"naive": frame["timestamp"], "offsets": local.map(lambda t: t.isoformat()),
                         "epoch_ms": ((utc - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)).astype(str)}.items():
        grids[name] = read_input(_write(tmp_path / f"{name}.csv", frame.assign(timestamp=stamps)), "auto")[0]
    pd.testing.assert_frame_equal(grids["naive"], grids["offsets"], check_index_type=False)
    pd.testing.assert_frame_equal(grids["naive"], grids["epoch_ms"], check_index_type=False)


# --- real logs: an unlogged basal is not a suspended pump; events are not carried over a gap -------------------------

def _pair(folder, gap_hours: float = 1.0):
    """Patient 7: two days of training readings with a basal record only from noon of day 1 (0.0 U/h: suspended),
    a 40 g meal and a 4 U bolus on the training file's last 5-minute mark; a testing day ``gap_hours`` later."""
    train, test = _readings(2 * 288), _readings(288, start=str(pd.Timestamp("2024-03-03 00:01:23")
                                                               + pd.Timedelta(hours=gap_hours - 5 / 60)))
    last = "2024-03-02 23:55:00"  # the mark of the last reading (23:56:23)
    train = pd.concat([train, pd.DataFrame({"timestamp": ["2024-03-01 12:00:00", last], "basal": [0.0, np.nan],
                                            "carbs": [np.nan, 40.0], "bolus": [np.nan, 4.0]})])
    _write(folder / "7-train.csv", train)
    _write(folder / "7-test.csv", test)
    return DataConfig(data="csv", root_path=str(folder), covariates=True, seq_len=24, pred_len=12)


def test_no_basal_record_is_not_logged_and_a_suspended_pump_is_zero(tmp_path, wordpiece_tokenizer):
    cfg = _pair(tmp_path)
    splits = build_splits(cfg)
    names = channel_names(cfg)
    assert names == ("glucose", "basal", "bolus", "carbs", BASAL_LOGGED, "filled")
    assert splits.scaler.mean[names.index(BASAL_LOGGED)] == 0 and splits.scaler.std[names.index(BASAL_LOGGED)] == 1
    builder = PromptBuilder(wordpiece_tokenizer, None, 24, 12, 3, splits.scaler.glucose, events=True, channels=names,
                            scaler_mean=splits.scaler.mean, scaler_std=splits.scaler.std)
    train = splits.train
    rows = [int(np.flatnonzero(train.origin_time == np.datetime64(t))[0])
            for t in ("2024-03-01T11:55", "2024-03-01T12:00")]
    x = train.__getitems__(rows)["x"]
    assert x[:, -1, names.index(BASAL_LOGGED)].tolist() == [0.0, 1.0]
    texts = [render(builder.pieces, builder.statistics(x), i) for i in range(2)]
    assert "; basal not logged; insulin on board" in texts[0]
    assert "; basal 0.0 U/h; insulin on board" in texts[1]


def test_a_meal_and_bolus_at_the_training_end_are_not_carried_over_the_gap(tmp_path):
    splits = build_splits(_pair(tmp_path, gap_hours=1.0))
    names = channel_names(_pair(tmp_path))
    test = splits.test
    x = test.inputs.numpy() * splits.scaler.std + splits.scaler.mean  # the joined training and testing series
    carbs, bolus = x[:, names.index("carbs")], x[:, names.index("bolus")]
    glucose, filled, basal, logged = (x[:, names.index(n)] for n in ("glucose", "filled", "basal", BASAL_LOGGED))
    gap = np.flatnonzero(filled[: len(filled) - 12] == 1)  # slots between the files (nothing else is missing)
    assert len(gap) == 11
    np.testing.assert_allclose(carbs[: gap[0]][-1], 40, atol=1e-6)  # the meal, once, at the training file's end
    np.testing.assert_allclose(carbs[gap], 0, atol=1e-6)
    np.testing.assert_allclose(bolus[gap], 0, atol=1e-6)
    assert np.isclose(carbs[: len(carbs) - 12], 40, atol=1e-6).sum() == 1
    np.testing.assert_allclose(basal[gap], 0, atol=1e-6)  # the rate on record (0 U/h) holds over the gap
    assert (logged[gap] == 1).all()
    np.testing.assert_allclose(glucose[gap], glucose[gap[0] - 1], atol=1e-6)  # glucose alone is carried forward


# --- the registry and its checks -----------------------------------------------------------------------------------

def test_one_registry_names_the_datasets_and_their_descriptions(tmp_path):
    assert [dataset_name(n) for n in ("OhioT1DM", "ohiot1dm", "CSV", " simulated ")] == ["ohio", "ohio", "csv",
                                                                                         "simulated"]
    assert dataset("OhioT1DM").name == "ohio" and dataset("csv").bundled is None
    assert "exported" in description(DataConfig(data="csv"))
    with pytest.raises(LLMTimeError, match="unknown --data 'dexcom'; choose one of: simulated, ohio .ohiot1dm., csv"):
        build_splits(DataConfig(data="dexcom"))
    with pytest.raises(LLMTimeError, match="--test_days goes with --data csv"):
        build_splits(DataConfig(test_days=3))
    with pytest.raises(LLMTimeError, match="no bundled copy: pass --root_path to a folder of CSV files"):
        build_splits(DataConfig(data="csv"))
    _write(tmp_path / "7.csv", _readings())
    with pytest.raises(LLMTimeError, match="patient 7 is one series .7.csv.: pass --test_start DATE or --test_days N"):
        build_splits(DataConfig(data="csv", root_path=str(tmp_path)))
    with pytest.raises(LLMTimeError, match="--csv_columns 'glucose:sgv': expected FIELD=NAME"):
        build_splits(DataConfig(data="csv", root_path=str(tmp_path), test_days=1, csv_columns=["glucose:sgv"]))
    with pytest.raises(LLMTimeError, match="--test_start 'next week' is not a date"):
        build_splits(DataConfig(data="csv", root_path=str(tmp_path), test_start="next week"))


def test_time_llm_event_channels_off_leaves_the_basal_marker_out(tiny_backbones):
    data = DataConfig(covariates=True, seq_len=24, pred_len=12)
    scaler = Scaler(np.zeros(6), np.ones(6))
    for channels, expected in ((True, [0, 1, 2, 3, 4, 5]), (False, [0, 5])):
        model = build_model(ModelConfig(llm_model="BERT", llm_path=str(tiny_backbones["bert"]), event_channels=channels,
                                        **TINY), data, scaler, "")
        assert model.channel_index == expected


def test_saved_runs_from_before_the_basal_marker_keep_their_width():
    old = RunConfig().to_dict()
    del old["data"]["basal_logged"]
    cfg = RunConfig.from_dict(json.loads(json.dumps({**old, "data": {**old["data"], "covariates": True}})))
    assert channel_names(cfg.data) == ("glucose", "basal", "bolus", "carbs", "filled")
    assert RunConfig.from_dict(RunConfig().to_dict()).data.basal_logged
