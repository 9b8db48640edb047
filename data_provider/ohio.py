"""Reader for the OhioT1DM XML layout (2018 and 2020 releases) and the bundled simulated cohort written in it.

The published files are read as they are: day-first timestamps (``DD-MM-YYYY HH:MM:SS``), one element per data
field, each a list of ``<event .../>``. Every field is kept in ``PatientPart.events`` (attributes typed: timestamps
parsed, numbers numeric) so nothing in the release is lost; the forecasting code uses the 5-minute grid built from
it.

Grid: CGM readings are not on a fixed clock (each sensor session has its own offset), so each reading is moved to
the nearest 5-minute clock mark (00:00, 00:05, ...). When two readings land on one mark the one closer to it is kept.
Slots with no reading stay NaN: values are never invented here. Training and testing files share one clock grid, so
test inputs can reach back into the training tail. Event covariates (bolus, carbs, finger sticks) go to the first
mark at or after the event, so a window never sees an event before it happened; the basal rate is a step function
(``basal`` rate changes, overridden by ``temp_basal`` intervals).
"""

from __future__ import annotations

import gzip
import re
import warnings
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_provider.values import MMOL_MEDIAN_LIMIT, check_series, quote
from utils.cgm import STEP_MINUTES
from utils.errors import LLMTimeError
from utils.metrics import MGDL_PER_MMOL  # re-exported: the XML reader converts mmol/L files with it

GRID = pd.Timedelta(minutes=STEP_MINUTES)
TIME_FORMAT = "%d-%m-%Y %H:%M:%S"
TIME_ATTRS = ("ts", "ts_begin", "ts_end", "tbegin", "tend")
TEXT_ATTRS = ("type", "description", "competitive", "symptom")
FIELDS = (
    "glucose_level", "finger_stick", "basal", "temp_basal", "bolus", "meal", "sleep", "work", "stressors",
    "hypo_event", "illness", "exercise", "basis_heart_rate", "basis_gsr", "basis_skin_temperature",
    "basis_air_temperature", "basis_steps", "basis_sleep", "acceleration",
)
GRID_COLUMNS = ("glucose", "basal", "bolus", "carbs", "finger_stick")
# Plausible CGM range in mg/dL; sensors report 40-400. Values outside are rejected (set missing) and counted.
# A file whose median is below MMOL_MEDIAN_LIMIT (data_provider/values.py) is in mmol/L: reading it as mg/dL would
# reject nearly every value as impossible.
GLUCOSE_RANGE = (10.0, 1000.0)
_FILE_RE = re.compile(r"^(?P<pid>[^/\\]+)-ws-(?P<part>training|testing)\.xml(?:\.gz)?$")


@dataclass
class PatientPart:
    """One file (training or testing) of one patient: raw typed events and the 5-minute grid."""

    path: Path
    events: dict[str, pd.DataFrame]
    grid: pd.DataFrame  # index: 5-min DatetimeIndex; columns GRID_COLUMNS


@dataclass
class PatientRecord:
    """A patient: attributes of the ``<patient>`` root, and the training and testing parts kept distinct."""

    patient_id: str
    attributes: dict[str, str]
    train: PatientPart
    test: PatientPart | None
    notes: list[str] = field(default_factory=list)  # data-quality messages (rejected values, duplicates)


def discover(root: str | Path) -> dict[str, dict[str, Path]]:
    """Find ``<id>-ws-training.xml[.gz]`` / ``-ws-testing`` files anywhere under ``root``.

    Walking the tree accepts the release folders (OhioT1DM-training, OhioT1DM-2-testing, ...) and a flat folder alike.
    """
    root = Path(root)
    if not root.is_dir():
        raise LLMTimeError(f"data folder {root} does not exist: pass --root_path pointing at the XML files")
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(root.rglob("*-ws-*.xml*")):
        m = _FILE_RE.match(path.name)
        if not m or not path.is_file():
            continue
        pid, part = m["pid"], "train" if m["part"] == "training" else "test"
        if part in found.setdefault(pid, {}):
            raise LLMTimeError(f"patient {pid} has two {m['part']} files ({found[pid][part]} and {path}): keep one")
        found[pid][part] = path
    if not found:
        raise LLMTimeError(f"no <id>-ws-training.xml[.gz] files under {root}: see dataset/README.md")
    return found


def _open_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise LLMTimeError(f"cannot read {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise LLMTimeError(f"{path} is a damaged gzip file ({e}): re-copy it") from None
    if path.suffix == ".gz":
        raise LLMTimeError(f"{path} ends in .gz but is not gzip data: rename it to .xml or re-compress it")
    return raw


def _parse_times(values: pd.Series, path: Path, name: str, attr: str) -> pd.Series:
    values = values.where(values.str.strip() != "")  # empty attributes (e.g. an open illness interval) = missing
    parsed = pd.to_datetime(values, format=TIME_FORMAT, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise LLMTimeError(
            f"{path}: {int(bad.sum())} {name} {attr} timestamps are not DD-MM-YYYY HH:MM:SS (e.g. {quote(example)})"
        )
    return parsed


def _typed_frame(rows: list[dict[str, str]], path: Path, name: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        if col in TIME_ATTRS:
            frame[col] = _parse_times(frame[col], path, name, col)
        elif col not in TEXT_ATTRS:
            numeric = pd.to_numeric(frame[col], errors="coerce")
            # Keep text attributes (e.g. free-form quality labels) as text; only all-numeric columns become numbers.
            if numeric.notna().sum() == frame[col].notna().sum():
                frame[col] = numeric
    return frame


def read_xml(path: str | Path) -> tuple[dict[str, str], dict[str, pd.DataFrame]]:
    """Parse one OhioT1DM XML file into (root attributes, {field: typed events frame})."""
    path = Path(path)
    data = _open_bytes(path)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise LLMTimeError(f"{path} is not well-formed XML ({e}): the file may be truncated") from None
    except (LookupError, ValueError) as e:  # e.g. an unknown or unsupported encoding in the XML declaration
        raise LLMTimeError(f"{path} is not readable XML ({e}): re-export it as UTF-8") from None
    if root.tag != "patient":
        raise LLMTimeError(f"{path}: root element is <{root.tag}>, expected <patient> (OhioT1DM layout)")
    events: dict[str, pd.DataFrame] = {}
    for child in root:
        rows = []
        for ev in child:
            row = dict(ev.attrib)
            # hypo_event carries <symptom> children; keep their text attributes joined.
            symptoms = [s.attrib.get("name", "") for s in ev if s.tag == "symptom"]
            if symptoms:
                row["symptom"] = ";".join(symptoms)
            rows.append(row)
        events[child.tag] = _typed_frame(rows, path, child.tag)
    for name in FIELDS:
        events.setdefault(name, pd.DataFrame())
    return dict(root.attrib), events


def _glucose_grid(frame: pd.DataFrame, path: Path, notes: list[str]) -> pd.Series:
    if frame.empty or "value" not in frame or "ts" not in frame:
        raise LLMTimeError(f"{path} has no <glucose_level> readings: a patient needs CGM data")
    values = pd.to_numeric(frame["value"], errors="coerce")
    non_numeric = values.isna() & frame["value"].notna()
    if non_numeric.any():
        example = frame["value"][non_numeric].iloc[0]
        raise LLMTimeError(f"{path}: {int(non_numeric.sum())} glucose values are not numbers (e.g. {quote(example)})")
    ts = frame["ts"]
    order = np.argsort(ts.to_numpy(), kind="stable")  # the unit rules read the readings in time order
    median = check_series(values.to_numpy(dtype=float)[order], lambda i: f"the reading at {ts.iloc[order[i]]}",
                          str(path))
    if median < MMOL_MEDIAN_LIMIT:
        raise LLMTimeError(
            f"{path}: glucose values look like mmol/L (median {median:.1f}); this layout is mg/dL: "
            f"multiply them by {MGDL_PER_MMOL:g}"
        )
    lo, hi = GLUCOSE_RANGE
    impossible = (values < lo) | (values > hi)
    if impossible.any():
        examples = ", ".join(
            f"{v:g} at {t:%Y-%m-%d %H:%M:%S}" if pd.notna(t) else f"{v:g}"
            for t, v in zip(ts[impossible][:3], values[impossible][:3])
        )
        notes.append(
            f"{path.name}: rejected {int(impossible.sum())} glucose values outside {lo:g}-{hi:g} mg/dL "
            f"(e.g. {examples})"
        )
    incomplete = ts.isna() | values.isna()
    if incomplete.any():
        notes.append(f"{path.name}: skipped {int(incomplete.sum())} glucose readings without a timestamp or value")
    earlier = int((ts.diff() < pd.Timedelta(0)).sum())
    if earlier:
        notes.append(
            f"{path.name}: {earlier} CGM readings are earlier than the one before them in the file; sorted by time "
            "(if the file should be in time order, check its date format: month-first dates read as other days)"
        )
    keep = ~impossible & ~incomplete
    if not keep.any():
        raise LLMTimeError(f"{path} has no usable glucose reading (all outside {lo:g}-{hi:g} mg/dL or incomplete)")
    ts, values = ts[keep], values[keep].astype(float)
    slots = ts.dt.round(GRID)
    distance = (ts - slots).abs()
    order = np.lexsort((distance.to_numpy(), slots.to_numpy()))
    slots, values, ts = slots.iloc[order], values.iloc[order], ts.iloc[order]
    duplicate = slots.duplicated(keep="first")
    if duplicate.any():
        exact = ts.duplicated(keep="first").sum()
        notes.append(
            f"{path.name}: {int(duplicate.sum())} CGM readings share a 5-minute slot with a closer one "
            f"({int(exact)} exact duplicate timestamps); kept the closest"
        )
    series = pd.Series(values[~duplicate].to_numpy(), index=pd.DatetimeIndex(slots[~duplicate]), name="glucose")
    return series.sort_index()


def _basal_grid(events: dict[str, pd.DataFrame], index: pd.DatetimeIndex) -> np.ndarray:
    basal = events["basal"]
    rate = np.full(len(index), np.nan)
    if not basal.empty and {"ts", "value"} <= set(basal.columns):
        b = basal.dropna(subset=["ts", "value"]).sort_values("ts")
        pos = np.searchsorted(b["ts"].to_numpy(), index.to_numpy(), side="right") - 1
        valid = pos >= 0
        rate[valid] = b["value"].to_numpy(dtype=float)[pos[valid]]
    temp = events["temp_basal"]
    if not temp.empty and {"ts_begin", "ts_end", "value"} <= set(temp.columns):
        for begin, end, value in temp[["ts_begin", "ts_end", "value"]].itertuples(index=False):
            rate[(index >= begin) & (index < end)] = float(value)
    return rate


def _event_sum(frame: pd.DataFrame, time_col: str, value_col: str, index: pd.DatetimeIndex) -> np.ndarray:
    out = np.zeros(len(index))
    if frame.empty or time_col not in frame or value_col not in frame:
        return out
    f = frame.dropna(subset=[time_col, value_col])
    slots = f[time_col].dt.ceil(GRID)
    pos = index.get_indexer(slots)
    inside = pos >= 0
    np.add.at(out, pos[inside], f[value_col].to_numpy(dtype=float)[inside])
    return out


def _usable(frame: pd.DataFrame, time_cols: tuple[str, ...], value_col: str, path: Path, name: str,
            notes: list[str]) -> pd.DataFrame:
    """The events of one covariate field that have every time and a finite number; text in a number is an error.

    Empty or missing attributes are skipped and counted, as for CGM readings, so one blank dose never sinks a file.
    """
    if frame.empty or value_col not in frame or any(c not in frame for c in time_cols):
        return pd.DataFrame()
    raw = frame[value_col]
    values = pd.to_numeric(raw, errors="coerce")
    text = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if text.any():
        raise LLMTimeError(
            f"{path}: {int(text.sum())} <{name}> {value_col} values are not numbers (e.g. {quote(raw[text].iloc[0])})"
        )
    out = frame[list(time_cols)].assign(**{value_col: values})
    usable = out[list(time_cols)].notna().all(axis=1) & np.isfinite(values.to_numpy(dtype=float))
    if not usable.all():
        notes.append(f"{path.name}: skipped {int((~usable).sum())} <{name}> events without a time or {value_col}")
    return out[usable]


# Covariate fields the grid uses: (time attributes, value attribute).
_GRID_FIELDS = {"basal": (("ts",), "value"), "temp_basal": (("ts_begin", "ts_end"), "value"),
                "bolus": (("ts_begin",), "dose"), "meal": (("ts",), "carbs"), "finger_stick": (("ts",), "value")}


def grid_events(events: dict[str, pd.DataFrame], path: Path, notes: list[str]) -> dict[str, pd.DataFrame]:
    """``events`` with each covariate field the grid reads cut to its usable events (``_usable``)."""
    return {**events, **{name: _usable(events[name], times, value, path, name, notes)
                         for name, (times, value) in _GRID_FIELDS.items()}}


def build_grid(events: dict[str, pd.DataFrame], path: Path, notes: list[str]) -> pd.DataFrame:
    """The 5-minute grid from the first to the last CGM reading of one file."""
    glucose = _glucose_grid(events["glucose_level"], path, notes)
    events = grid_events(events, path, notes)
    index = pd.date_range(glucose.index[0], glucose.index[-1], freq=GRID)
    grid = pd.DataFrame(index=index)
    grid["glucose"] = glucose.reindex(index)
    grid["basal"] = _basal_grid(events, index)
    grid["bolus"] = _event_sum(events["bolus"], "ts_begin", "dose", index)
    grid["carbs"] = _event_sum(events["meal"], "ts", "carbs", index)
    fs = events["finger_stick"]
    sticks = np.full(len(index), np.nan)
    if not fs.empty and {"ts", "value"} <= set(fs.columns):
        f = fs.dropna(subset=["ts", "value"])
        pos = index.get_indexer(f["ts"].dt.ceil(GRID))
        sticks[pos[pos >= 0]] = f["value"].to_numpy(dtype=float)[pos >= 0]
    grid["finger_stick"] = sticks
    return grid


def read_part(path: str | Path, notes: list[str]) -> tuple[dict[str, str], PatientPart]:
    path = Path(path)
    attributes, events = read_xml(path)
    return attributes, PatientPart(path=path, events=events, grid=build_grid(events, path, notes))


def load_patient(files: dict[str, Path], patient_id: str) -> PatientRecord:
    """Read one patient's training (required) and testing (optional) files."""
    if "train" not in files:
        raise LLMTimeError(f"patient {patient_id} has a testing file but no {patient_id}-ws-training.xml")
    notes: list[str] = []
    attributes, train = read_part(files["train"], notes)
    test = read_part(files["test"], notes)[1] if "test" in files else None
    if test is not None and test.grid.index[0] <= train.grid.index[-1]:
        raise LLMTimeError(f"patient {patient_id}: the testing file starts before the training file ends")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return PatientRecord(patient_id, attributes, train, test, notes)


def load_cohort(root: str | Path, patients: list[str] | None = None) -> dict[str, PatientRecord]:
    """Load the named patients (all found when None) from ``root``, in id order."""
    found = discover(root)
    wanted = sorted(found, key=_id_key) if patients is None else list(patients)
    unknown = [p for p in wanted if p not in found]
    if unknown:
        raise LLMTimeError(
            f"unknown patient id(s) {', '.join(unknown)} under {root}; available: {', '.join(sorted(found, key=_id_key))}"
        )
    return {pid: load_patient(found[pid], pid) for pid in wanted}


def _id_key(pid: str) -> tuple[int, str]:
    return (int(pid), pid) if pid.isdigit() else (1 << 30, pid)
