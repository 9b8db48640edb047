"""Reader for CGM exports kept as CSV tables (Dexcom Clarity, LibreView, Nightscout, Tidepool, study exports):
``--data csv``, and the CSV input of the forecast command.

Layouts (``--root_path``):

- a folder with one CSV per patient (``.csv`` or ``.csv.gz``, not searched below the folder): ``<id>-train.csv`` and
  ``<id>-test.csv``, a training and a testing file as OhioT1DM has; or ``<id>.csv``, cut into a training and a
  testing part by ``--test_start DATE`` (readings from then on are tested) or ``--test_days N`` (each patient's
  last N days);
- one CSV holding every patient, told apart by a ``patient`` column and cut the same way (a file without that
  column is one patient, named by the file's stem).

Columns, matched case-insensitively, other names mapped with ``--csv_columns FIELD=NAME,...``: ``timestamp``,
``glucose`` (mg/dL or mmol/L) and optionally ``carbs`` (g), ``bolus`` (U), ``basal`` (U/h, a rate that holds until
the next basal row) and ``patient``; other columns are ignored. Exports are long-format: a row carries any subset of
the values (a meal row has no glucose) and rows come in any order.

Times: ISO 8601 (``2024-05-01 08:05``, ``2024-05-01T08:05:00.000``), OhioT1DM's day-first ``DD-MM-YYYY HH:MM[:SS]``,
or Unix epoch seconds or milliseconds. A timestamp with a UTC offset (``Z``, ``+01:00``: Nightscout's dateString)
is converted to UTC, and so is an epoch time; one without an offset is taken as written (the local clock). A file
mixing both is refused: they cannot be put on one clock. The 5-minute grid has no time of day in it, so either is
as good; UTC has no daylight-saving hour that occurs twice.

Units are decided per file (per patient in a one-file cohort), and a unit change inside one is refused
(``data_provider/values.py``). Two rows giving different glucose readings at one time are refused (which one is
right cannot be known); identical repeats, common in Nightscout exports, are dropped and counted.

The rows then become the XML reader's event frames and go through its grid (``ohio.build_grid``): the same 5-minute
marks, closest reading per mark, range check, events at the first mark at or after them, basal as a step function.
So a CSV written from an OhioT1DM-layout file (``scripts/xml_to_csv.py``) gives the same windows as the XML.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from configs import DataConfig
from data_provider.ohio import FIELDS as XML_FIELDS
from data_provider.ohio import GRID, TIME_FORMAT, PatientPart, PatientRecord, build_grid
from data_provider.values import clip, glucose_units, quote
from utils.errors import LLMTimeError
from utils.metrics import MGDL_PER_MMOL

FIELDS = ("patient", "timestamp", "glucose", "carbs", "bolus", "basal")
NUMBERS = ("glucose", "carbs", "bolus", "basal")
MISSING = ("", "na", "nan", "null", "none")  # cells that hold no value
FORMATS = ("ISO8601", TIME_FORMAT, "%d-%m-%Y %H:%M")
_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)
_EPOCH = re.compile(r"^\d{9,}(?:\.\d*)?$")
_PART = re.compile(r"^(?P<pid>.+)-(?P<part>train|test)$")
_SUFFIXES = (".csv.gz", ".csv")
UNITS_FLAG = "--glucose_units"
SPLIT_FLAGS = "--test_start/--test_days"


@dataclass(frozen=True)
class CsvOptions:
    """How to read a CSV cohort: column names by field, glucose units, and where a one-file patient's test begins."""

    columns: dict[str, str]
    units: str = "auto"
    test_start: Optional[pd.Timestamp] = None
    test_days: Optional[int] = None


def column_map(pairs: Optional[list[str]]) -> dict[str, str]:
    """``--csv_columns`` FIELD=NAME items -> {field: lower-case column name}, the field's own name by default."""
    mapping = {name: name for name in FIELDS}
    for pair in pairs or []:
        field, sep, name = (part.strip() for part in pair.partition("="))
        if not sep or not name or field.lower() not in FIELDS:
            raise LLMTimeError(f"--csv_columns {quote(pair)}: expected FIELD=NAME with FIELD one of "
                               f"{', '.join(FIELDS)} (e.g. timestamp=dateString,glucose=sgv)")
        mapping[field.lower()] = name.lower()
    repeated = sorted({n for n in mapping.values() if list(mapping.values()).count(n) > 1})
    if repeated:
        raise LLMTimeError(f"--csv_columns names column {repeated[0]!r} for two fields: give each field its own column")
    return mapping


def options(cfg: DataConfig) -> CsvOptions:
    """The CSV settings of ``cfg``, checked before any file is read."""
    if cfg.test_start is not None and cfg.test_days is not None:
        raise LLMTimeError("--test_start and --test_days both say where the test part begins: give one")
    start = None
    if cfg.test_start is not None:
        start = pd.to_datetime(pd.Series([cfg.test_start.strip()]), format="ISO8601", errors="coerce").iloc[0]
        if pd.isna(start):
            raise LLMTimeError(f"--test_start {quote(cfg.test_start)} is not a date: give e.g. 2024-05-01 or "
                               "2024-05-01T08:00")
        start = start.tz_convert(None) if start.tzinfo is not None else start
    return CsvOptions(column_map(cfg.csv_columns), cfg.glucose_units, start, cfg.test_days)


def read_table(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """One CSV's rows with a value, typed: ``line`` (in the file), ``patient`` (text, if the column exists), ``ts``
    (naive datetimes, NaT where empty) and each of NUMBERS (float, NaN where empty or absent)."""
    try:
        raw = pd.read_csv(path, dtype=str, skipinitialspace=True, skip_blank_lines=False, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise LLMTimeError(f"{path} is empty: a CGM export needs a header row (timestamp,glucose,...) and "
                           "readings") from None
    except (ValueError, UnicodeDecodeError, OSError) as e:  # pandas' parser errors are ValueErrors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LLMTimeError(f"{path} is not a readable CSV ({quote(first)})") from None
    found = {str(c).strip().lower(): c for c in raw.columns}
    absent = [f for f in ("timestamp", "glucose") if columns[f] not in found]
    if absent:
        shown = ", ".join(clip(c) for c in list(found)[:12]) or "none"
        raise LLMTimeError(
            f"{path} has no {' or '.join(columns[f] for f in absent)} column (found: {shown}): name the export's "
            "columns with --csv_columns, e.g. timestamp=dateString,glucose=sgv"
        )
    cells = {f: raw[found[columns[f]]].fillna("").str.strip() for f in FIELDS if columns[f] in found}
    table = pd.DataFrame({"line": np.arange(len(raw)) + 2})
    present = np.zeros(len(raw), dtype=bool)
    for f in NUMBERS:
        values = _numbers(cells[f], table["line"], path, f) if f in cells else np.full(len(raw), np.nan)
        table[f] = values
        present |= np.isfinite(values)
    if "patient" in cells:
        table["patient"] = cells["patient"]
    table["ts"] = parse_times(cells["timestamp"], table["line"], path)
    if not present.any():
        raise LLMTimeError(f"{path} has no glucose, carbs, bolus or basal value in any row: check its columns")
    return table[present].reset_index(drop=True)


def _numbers(cells: pd.Series, lines: pd.Series, path: Path, field: str) -> np.ndarray:
    empty = cells.str.lower().isin(MISSING)
    values = pd.to_numeric(cells.where(~empty), errors="coerce").to_numpy(dtype=float)
    bad = ~empty.to_numpy() & ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LLMTimeError(f"{path}: {int(bad.sum())} {field} values are not numbers (e.g. line {lines.iloc[i]}: "
                           f"{quote(cells.iloc[i])})")
    return values


def parse_times(stamps: pd.Series, lines: pd.Series, path: Path) -> pd.Series:
    """Naive timestamps (UTC for those with an offset and for epoch numbers, as written otherwise); NaT where empty."""
    given = ~stamps.str.lower().isin(MISSING)
    text = stamps[given]
    if text.empty:
        return pd.Series(pd.NaT, index=stamps.index, dtype="datetime64[ns]")
    if text.str.match(_EPOCH).all():
        numbers = text.astype(float)
        parsed = pd.to_datetime(numbers, unit="ms" if numbers.median() > 1e11 else "s")
    elif text.str.contains(_OFFSET).any():
        aware = text.str.contains(_OFFSET)
        if not aware.all():
            a, b = int(np.flatnonzero(aware.to_numpy())[0]), int(np.flatnonzero(~aware.to_numpy())[0])
            raise LLMTimeError(
                f"{path}: some timestamps have a UTC offset (line {lines[text.index[a]]}: {quote(text.iloc[a])}) and "
                f"some do not (line {lines[text.index[b]]}: {quote(text.iloc[b])}): export them all in one form"
            )
        parsed = _parsed(text, lines, path, utc=True)
    else:
        parsed = _parsed(text, lines, path, utc=False)
    return parsed.reindex(stamps.index)


def _parsed(text: pd.Series, lines: pd.Series, path: Path, utc: bool) -> pd.Series:
    """``text`` in the first of FORMATS that reads all of it; an error quoting a row the closest format cannot read."""
    failures = []
    for fmt in FORMATS[:1] if utc else FORMATS:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=utc)
        bad = parsed.isna()
        if not bad.any():
            return parsed.dt.tz_convert(None) if utc else parsed
        failures.append(bad)
    bad = min(failures, key=lambda b: int(b.sum()))
    i = int(np.flatnonzero(bad.to_numpy())[0])
    raise LLMTimeError(
        f"{path}: {int(bad.sum())} timestamps are neither ISO 8601 (YYYY-MM-DD HH:MM:SS), DD-MM-YYYY HH:MM[:SS] nor "
        f"epoch seconds (e.g. line {lines[text.index[i]]}: {quote(text.iloc[i])})"
    )


def file_events(rows: pd.DataFrame, path: Path, units: str, flag: str,
                notes: list[str]) -> tuple[dict[str, pd.DataFrame], str, Optional[str]]:
    """One file's (or one patient's) rows as the XML reader's event frames, glucose in mg/dL, with its units and
    a note when they were detected."""
    g = _distinct_readings(rows[rows["glucose"].notna()].sort_values(["ts", "line"], kind="stable"), path, notes)
    lines, times = g["line"].to_numpy(), g["ts"].to_numpy()
    label, note = glucose_units(g["glucose"].to_numpy(dtype=float),
                                lambda i: f"line {lines[i]} ({pd.Timestamp(times[i])})", units, str(path), flag)
    factor = MGDL_PER_MMOL if label == "mmol/L" else 1.0
    events = {name: pd.DataFrame() for name in XML_FIELDS}
    events["glucose_level"] = pd.DataFrame({"ts": g["ts"], "value": g["glucose"] * factor})
    for name, time_col, value_col, column in (("basal", "ts", "value", "basal"), ("bolus", "ts_begin", "dose", "bolus"),
                                              ("meal", "ts", "carbs", "carbs")):
        logged = rows[rows[column].notna()].sort_values("ts", kind="stable")
        events[name] = pd.DataFrame({time_col: logged["ts"], value_col: logged[column]})
    return events, label, note


def _distinct_readings(g: pd.DataFrame, path: Path, notes: list[str]) -> pd.DataFrame:
    """The glucose rows with each repeat of a reading (same time, same value) dropped and counted; two different
    readings at one time are an error."""
    same_time = g["ts"].notna() & g.duplicated("ts", keep=False)
    if not same_time.any():
        return g
    clash = g[same_time].groupby("ts")["glucose"].nunique() > 1
    if clash.any():
        at = clash[clash].index[0]
        pair = g[g["ts"] == at].drop_duplicates("glucose").iloc[:2]
        raise LLMTimeError(
            f"{path}: lines {pair['line'].iloc[0]} and {pair['line'].iloc[1]} give different glucose readings at "
            f"{at} ({pair['glucose'].iloc[0]:g} and {pair['glucose'].iloc[1]:g}): keep one (if the times are local "
            "and a clock went back an hour, export them with UTC offsets)"
        )
    repeat = g["ts"].notna() & g.duplicated("ts", keep="first")
    notes.append(f"{path.name}: dropped {int(repeat.sum())} repeated glucose rows (same time, same value)")
    return g[~repeat]


def _split(events: dict[str, pd.DataFrame], boundary: pd.Timestamp) -> tuple[dict, dict]:
    """(training, testing) event frames of one series: readings by their 5-minute mark, meals and boluses by the
    mark they land on, before ``boundary`` or from it on. Both parts keep every basal row: a part's rate at its
    first mark comes from the last row before it."""
    def part(before: bool) -> dict[str, pd.DataFrame]:
        out = dict(events)
        for name, time_col, mark in (("glucose_level", "ts", "round"), ("bolus", "ts_begin", "ceil"),
                                     ("meal", "ts", "ceil")):
            frame = events[name]
            marks = getattr(frame[time_col].dt, mark)(GRID)
            out[name] = frame[(marks < boundary) == before]
        return out

    return part(True), part(False)


def _boundary(events: dict[str, pd.DataFrame], opts: CsvOptions, pid: str, path: Path) -> pd.Timestamp:
    """The first 5-minute mark of a one-file patient's test part."""
    if events["glucose_level"].empty:
        raise LLMTimeError(f"patient {pid} ({path.name}) has no glucose reading: a patient needs CGM data")
    if opts.test_start is not None:
        return opts.test_start.ceil(GRID)
    if opts.test_days is not None:
        last = events["glucose_level"]["ts"].max().round(GRID)
        return last - pd.Timedelta(days=opts.test_days) + GRID
    raise LLMTimeError(
        f"patient {pid} is one series ({path.name}): pass --test_start DATE or --test_days N to say where its test "
        f"part begins, or give {pid}-train.csv and {pid}-test.csv"
    )


def _part(events: dict[str, pd.DataFrame], path: Path, pid: str, notes: list[str], where: str = "") -> PatientPart:
    """One part's grid; ``where`` says which part of a one-series patient it is (empty for a file of its own)."""
    if events["glucose_level"].empty:
        fix = f" {where}: move {SPLIT_FLAGS} so both parts hold readings" if where else ": a patient needs CGM data"
        raise LLMTimeError(f"patient {pid} ({path.name}) has no glucose reading{fix}")
    return PatientPart(path=path, events=events, grid=build_grid(events, path, notes))


def patient_record(pid: str, parts: dict[str, tuple[Path, pd.DataFrame]], opts: CsvOptions) -> PatientRecord:
    """One patient from their files' rows: ``parts`` holds 'train' (and 'test') files, or one 'whole' series."""
    notes: list[str] = []
    read = {part: (path, file_events(rows, path, opts.units, UNITS_FLAG, notes)[0])
            for part, (path, rows) in parts.items()}
    if "whole" in read:
        path, events = read["whole"]
        boundary = _boundary(events, opts, pid, path)
        train_events, test_events = _split(events, boundary)
        train = _part(train_events, path, pid, notes, f"before {boundary}")
        test: Optional[PatientPart] = _part(test_events, path, pid, notes, f"from {boundary} on")
    else:
        if opts.test_start is not None or opts.test_days is not None:
            raise LLMTimeError(f"patient {pid} has its own {pid}-test.csv; {SPLIT_FLAGS} cut patients given as one "
                               "series: drop the flag, or merge the two files")
        if "train" not in read:
            raise LLMTimeError(f"patient {pid} has a testing file but no {pid}-train.csv")
        train = _part(read["train"][1], read["train"][0], pid, notes)
        test = _part(read["test"][1], read["test"][0], pid, notes) if "test" in read else None
    if test is not None and test.grid.index[0] <= train.grid.index[-1]:
        raise LLMTimeError(f"patient {pid}: the testing file starts before the training file ends")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return PatientRecord(pid, {"id": pid}, train, test, notes)


def _stem(path: Path) -> Optional[str]:
    """The name of a CSV file without its suffix; None for a file that is not a CSV."""
    name = path.name
    return next((name[: -len(suffix)] for suffix in _SUFFIXES if name.lower().endswith(suffix)), None)


def sources(root: Path) -> dict[str, dict[str, Path]]:
    """{patient id: {'train' and/or 'test', or 'whole': file}} of a folder of one CSV per patient."""
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(root.iterdir()):
        stem = _stem(path)
        if stem is None or not path.is_file():
            continue
        m = _PART.match(stem)
        pid, part = (m["pid"], m["part"]) if m else (stem, "whole")
        held = found.setdefault(pid, {})
        if part in held or (held and ("whole" in held) != (part == "whole")):
            other = next(iter(held.values()))
            raise LLMTimeError(f"patient {pid} has both {other.name} and {path.name}: keep one series, or one "
                               f"{pid}-train.csv and one {pid}-test.csv")
        held[part] = path
    if not found:
        raise LLMTimeError(f"no .csv files in {root}: see docs/data.md for the layouts --data csv reads")
    return found


def _tables(root: Path, opts: CsvOptions,
            wanted: Optional[list[str]]) -> dict[str, dict[str, tuple[Path, pd.DataFrame]]]:
    """{patient: {part: (file, rows)}} of the wanted patients (all when None) of a folder or a one-file cohort."""
    if not root.exists():
        raise LLMTimeError(f"data path {root} does not exist: pass --root_path a folder of CSV files or one CSV")
    if root.is_file():
        table = read_table(root, opts.columns)
        if "patient" not in table:
            groups = {_stem(root) or root.stem: table}
        else:
            if (table["patient"] == "").any():
                line = int(table.loc[table["patient"] == "", "line"].iloc[0])
                raise LLMTimeError(f"{root}: line {line} has no patient id: fill the patient column of every row")
            groups = {pid: rows for pid, rows in table.groupby("patient", sort=False)}
        found = {pid: {"whole": (root, rows)} for pid, rows in groups.items()}
        _check_wanted(wanted, found, root)
        return {pid: found[pid] for pid in (wanted or sorted(found, key=_id_key))}
    files = sources(root)
    _check_wanted(wanted, files, root)
    out = {}
    for pid in wanted or sorted(files, key=_id_key):
        out[pid] = {part: (path, _one_patient(read_table(path, opts.columns), path))
                    for part, path in files[pid].items()}
    return out


def _one_patient(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    if "patient" in table and table["patient"].nunique() > 1:
        raise LLMTimeError(f"{path} holds {table['patient'].nunique()} patients: a folder holds one file per patient; "
                           "give a cohort file itself as --root_path")
    return table


def _check_wanted(wanted: Optional[list[str]], found: dict, root: Path) -> None:
    unknown = [p for p in wanted or [] if p not in found]
    if unknown:
        raise LLMTimeError(f"unknown patient id(s) {', '.join(unknown)} in {root}; available: "
                           f"{', '.join(sorted(found, key=_id_key))}")


def _id_key(pid: str) -> tuple[int, str]:
    return (int(pid), pid) if pid.isdigit() else (1 << 30, pid)


def load_csv_cohort(root: str | Path, cfg: DataConfig,
                    patients: Optional[list[str]] = None) -> dict[str, PatientRecord]:
    """The named patients (all found when None) of a CSV folder or cohort file, in id order."""
    opts = options(cfg)
    return {pid: patient_record(pid, parts, opts) for pid, parts in _tables(Path(root), opts, patients).items()}


def csv_patient_ids(root: str | Path, cfg: DataConfig) -> list[str]:
    """Every patient id of a CSV folder (from the file names) or cohort file (from its patient column)."""
    root = Path(root)
    if root.is_dir():
        return sorted(sources(root), key=_id_key)
    return list(_tables(root, options(cfg), None))


def read_cgm_csv(path: Path, columns: Optional[list[str]], units: str,
                 flag: str) -> tuple[pd.DataFrame, str, Optional[str]]:
    """(5-minute grid in mg/dL, the file's units, a note when they were detected) of one patient's CSV, for the
    forecast command; ``flag`` names its units option in errors."""
    table = _one_patient(read_table(path, column_map(columns)), path)
    notes: list[str] = []
    events, label, note = file_events(table, path, units, flag, notes)
    grid = build_grid(events, path, notes)
    for message in notes:
        warnings.warn(message, stacklevel=2)
    return grid, label, note
