"""The simulated cohort: a one-patient, ~1.25-day cohort goes through the same code as dataset/simulated."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from data_provider.cohort_files import generate_patient, patient_files, persistence_rmse
from data_provider.ohio import FIELDS, TIME_FORMAT
from data_provider.simulate import cohort_specs
from scripts.generate_cohort import main
from utils.errors import USER_ERROR_EXIT

TRAIN_DAYS, TEST_DAYS = 1.0, 0.25


def _write(out: Path, seed: int) -> tuple[Path, Path]:
    spec = cohort_specs(1, TRAIN_DAYS, TEST_DAYS, seed)[0]
    generate_patient(spec, out)
    return patient_files(out, spec.patient_id)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _write(tmp_path_factory.mktemp("seed1"), seed=1)


def _root(path: Path) -> ET.Element:
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b", f"{path} is not gzip"
    return ET.fromstring(gzip.decompress(raw))


def _cgm(root: ET.Element) -> tuple[list[datetime], list[int]]:
    events = root.find("glucose_level")
    assert events is not None
    times = [datetime.strptime(e.attrib["ts"], TIME_FORMAT) for e in events]
    return times, [int(e.attrib["value"]) for e in events]


def test_files_have_the_ohio_layout(cohort: tuple[Path, Path]) -> None:
    for path in cohort:
        assert path.exists()
        root = _root(path)
        assert root.tag == "patient"
        assert root.attrib["id"] == "1001" and root.attrib["insulin_type"] == "Humalog"
        assert 20 < float(root.attrib["weight"]) < 200
        assert [child.tag for child in root] == list(FIELDS)
        assert all(e.tag == "event" for child in root for e in child)
    text = gzip.decompress(cohort[0].read_bytes()).decode()
    assert "\n\t<glucose_level>\n\t\t<event ts=" in text and "\t<exercise/>" in text


def test_events_carry_the_published_attributes(cohort: tuple[Path, Path]) -> None:
    root = _root(cohort[0])
    expected = {
        "glucose_level": {"ts", "value"},
        "finger_stick": {"ts", "value"},
        "basal": {"ts", "value"},
        "temp_basal": {"ts_begin", "ts_end", "value"},
        "bolus": {"ts_begin", "ts_end", "type", "dose", "bwz_carb_input"},
        "meal": {"ts", "type", "carbs"},
    }
    for name, attrs in expected.items():
        for event in root.find(name) or []:
            assert set(event.attrib) == attrs, name
    assert len(root.find("bolus") or []) >= 2 and len(root.find("meal") or []) >= 2
    assert len(root.find("basal") or []) >= 1


def test_timestamps_are_day_first_continuous_and_off_the_clock_marks(cohort: tuple[Path, Path]) -> None:
    train_t, train_v = _cgm(_root(cohort[0]))
    test_t, test_v = _cgm(_root(cohort[1]))
    times = train_t + test_t
    # Parsed day-first, ~1.25 days of readings are in order and span ~1.25 days (month-first would jump by months).
    assert times == sorted(times)
    assert timedelta(hours=24) < times[-1] - times[0] < timedelta(hours=31)
    assert train_t[-1] < test_t[0] < train_t[-1] + timedelta(hours=5)
    assert any(t.second != 0 or t.minute % 5 != 0 for t in times)
    # Every reading has its own nearest 5-minute mark (never halfway between two).
    seconds = np.array([(t - datetime(1970, 1, 1)).total_seconds() for t in times])
    assert np.all(seconds % 300 != 150)
    assert len(np.unique(np.round(seconds / 300))) == len(times)
    # Mostly a 5-minute cadence, with no more than ~a third of the slots missing.
    steps = np.diff([t.timestamp() for t in times])
    assert np.median(steps) == 300
    assert len(times) > 0.66 * (TRAIN_DAYS + TEST_DAYS) * 288
    values = np.array(train_v + test_v)
    assert values.min() >= 40 and values.max() <= 400 and 70 < values.mean() < 250


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_data(cohort: tuple[Path, Path], tmp_path: Path) -> None:
    again = _write(tmp_path / "again", seed=1)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in cohort]
    other = _write(tmp_path / "other", seed=2)
    assert _cgm(_root(other[0])) != _cgm(_root(cohort[0]))


def test_persistence_rmse_on_a_ramp_with_gaps_and_offsets() -> None:
    start = datetime(2025, 3, 14, 8, 2, 41)  # off the clock marks: rounded to the 5-minute grid
    minutes = [m for m in range(0, 300, 5) if not 100 <= m < 130]  # a 30-minute dropout
    times = [start + timedelta(minutes=m) for m in minutes]
    values = [100.0 + m for m in minutes]  # 1 mg/dL per minute
    # Off the gap, the value 30 min earlier is 30 lower. Targets 130-155 reach back into the gap and hold the
    # reading at minute 95 (errors 35..60); 60-min targets 160-185 hold it too (errors 65..90).
    r30 = persistence_rmse(times, values, 30)
    r60 = persistence_rmse(times, values, 60)
    scored30 = [m for m in minutes if m >= 60]
    err30 = [30.0 + max(0, m - 30 - 95) if 100 <= m - 30 < 130 else 30.0 for m in scored30]
    err60 = [60.0 + max(0, m - 60 - 95) if 100 <= m - 60 < 130 else 60.0 for m in scored30]
    assert r30 == pytest.approx(np.sqrt(np.mean(np.square(err30))))
    assert r60 == pytest.approx(np.sqrt(np.mean(np.square(err60))))
    assert persistence_rmse(times, [120.0] * len(times), 30) == 0.0
    assert np.isnan(persistence_rmse(times[:5], values[:5], 30))  # nothing 60 min in


@pytest.mark.parametrize(
    "args",
    [["--patients", "0"], ["--patients", "21"], ["--train-days", "0"], ["--workers", "0"], ["--seed", "x"]],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--out", str(tmp_path), *args]) == USER_ERROR_EXIT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_cli_writes_files_and_readme(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    assert main(["--out", str(out), "--patients", "1", "--train-days", "0.3", "--test-days", "0.2",
                 "--workers", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["1001-ws-testing.xml.gz", "1001-ws-training.xml.gz",
                                                    "README.md"]
    readme = (out / "README.md").read_text()
    assert "--train-days 0.3 --test-days 0.2 --seed 2024" in readme and "| 1001 | adult#001 |" in readme
