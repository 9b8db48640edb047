"""Write an OhioT1DM-layout cohort (XML) as the CSV layout ``--data csv`` reads: one long-format CSV per file.

    python -m scripts.xml_to_csv --root dataset/simulated --out /tmp/simulated_csv [--patients 1001,1002]

Each ``<id>-ws-training.xml[.gz]`` becomes ``<id>-train.csv`` and each testing file ``<id>-test.csv``, with columns
``timestamp,glucose,carbs,bolus,basal``: one row per CGM reading, meal, bolus and basal rate change, in time order.
The result reads back (``--data csv --root_path OUT``) to the same 5-minute grid, windows and forecasts as the XML,
which is how the CSV reader is checked against the XML one (tests/test_csv_data.py), and it is a worked example of
the CSV layout for people converting other exports (docs/data.md).

Basal: the XML holds a schedule (``<basal>``) overridden by temporary rates (``<temp_basal>`` intervals), the CSV a
rate per row that holds until the next row; so a row is written at every schedule change and at each start and end
of a temporary rate, with the rate that applies from then on. Finger sticks, sleep, exercise and the other XML
fields have no CSV column and are left out (the models do not read them).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from configs import DataConfig
from configs.flags import add_config_flags
from data_provider.ohio import build_grid, discover, grid_events, read_xml
from utils.cli import OneLineArgumentParser, run_cli
from utils.errors import LLMTimeError
from utils.io import atomic_path

COLUMNS = ("timestamp", "glucose", "carbs", "bolus", "basal")


def basal_rows(events: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(ts, basal) rows of the XML's effective rate: the schedule, with each temporary rate applied over
    [ts_begin, ts_end), the later of two overlapping ones winning, as ``ohio._basal_grid`` reads them."""
    schedule, temp = events["basal"], events["temp_basal"]
    times = [] if schedule.empty else [schedule["ts"]]
    if not temp.empty:
        times += [temp["ts_begin"], temp["ts_end"]]
    if not times:
        return pd.DataFrame(columns=["ts", "basal"])
    marks = pd.DatetimeIndex(pd.concat(times).drop_duplicates().sort_values())
    rate = np.full(len(marks), np.nan)
    if not schedule.empty:
        pos = np.searchsorted(schedule["ts"].to_numpy(), marks.to_numpy(), side="right") - 1
        rate[pos >= 0] = schedule["value"].to_numpy(dtype=float)[pos[pos >= 0]]
    if not temp.empty:
        for begin, end, value in temp[["ts_begin", "ts_end", "value"]].itertuples(index=False):
            rate[(marks >= begin) & (marks < end)] = float(value)
    rows = pd.DataFrame({"ts": marks, "basal": rate}).dropna()
    return rows[rows["basal"].ne(rows["basal"].shift())]  # a row where the rate changes


def xml_rows(path: Path) -> pd.DataFrame:
    """One XML file as long-format CSV rows (timestamp text, numbers), in time order. The file is first read as a
    run reads it (``build_grid``), so one the XML reader refuses is refused here with the same message."""
    notes: list[str] = []
    events = read_xml(path)[1]
    build_grid(events, path, notes)
    usable = grid_events(events, path, notes)
    usable["basal"] = usable["basal"].sort_values("ts", kind="stable")
    glucose = events["glucose_level"]
    frames = [
        pd.DataFrame({"ts": glucose.get("ts"), "glucose": glucose.get("value")}) if not glucose.empty else None,
        _rows(usable["meal"], "ts", "carbs", "carbs"),
        _rows(usable["bolus"], "ts_begin", "dose", "bolus"),
        basal_rows(usable),
    ]
    rows = pd.concat([f for f in frames if f is not None and not f.empty], ignore_index=True)
    rows = rows.sort_values("ts", kind="stable")
    out = pd.DataFrame({"timestamp": rows["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")})
    for name in COLUMNS[1:]:
        out[name] = rows[name] if name in rows else np.nan
    return out


def _rows(frame: pd.DataFrame, time_col: str, value_col: str, name: str) -> Optional[pd.DataFrame]:
    return None if frame.empty else pd.DataFrame({"ts": frame[time_col], name: frame[value_col]})


def convert(root: Path, out: Path, patients: Optional[list[str]] = None) -> list[Path]:
    """Write ``out/<id>-train.csv`` (and ``-test.csv``) for each patient (all when None); returns the files."""
    found = discover(root)
    unknown = [p for p in patients or [] if p not in found]
    if unknown:
        raise LLMTimeError(f"unknown patient id(s) {', '.join(unknown)} under {root}; available: "
                           f"{', '.join(sorted(found))}")
    written = []
    for pid in patients or sorted(found):
        for part, path in sorted(found[pid].items()):
            target = out / f"{pid}-{part}.csv"
            with atomic_path(target) as tmp:
                xml_rows(path).to_csv(tmp, index=False)
            written.append(target)
    return written


def main(argv: Optional[list[str]] = None) -> int:
    def body() -> int:
        p = OneLineArgumentParser(prog="python -m scripts.xml_to_csv", description=__doc__.splitlines()[0])
        p.add_argument("--root", required=True, help="folder of <id>-ws-training.xml[.gz] / -ws-testing files")
        p.add_argument("--out", required=True, help="folder to write <id>-train.csv / <id>-test.csv into")
        add_config_flags(p, DataConfig, only=("patients",))
        args = p.parse_args(argv)
        files = convert(Path(args.root), Path(args.out), args.patients)
        print(f"wrote {len(files)} CSV files to {args.out}: read them with --data csv --root_path {args.out}")
        return 0

    return run_cli(body, "interrupted: each CSV is written whole or not at all; run the command again")


if __name__ == "__main__":
    sys.exit(main())
