"""The comparison's report in ``--out``: ``summary.csv`` (one row per grid row), ``summary.md`` (the tables, the
command, plain findings) and RMSE charts at 30 and 60 minutes, written from the finished runs of the grid.

Rewritten after every finished cell, so a partial grid always has a valid partial report that says how many of the
planned runs it covers; ``--merge`` and ``--report`` rewrite it without training.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from comparison import tables
from comparison.grid import Grid
from comparison.markdown import markdown
from comparison.summary import summarise

SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"
PLOTS = {30: "rmse_by_model.png", 60: "rmse_by_model_60.png"}


def grid_rows(out: Path, grid: Grid) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(tidy, per-patient) rows of the grid's cells found in ``out``, and how many other runs the folder holds."""
    tidy, per_patient = tables.read_rows(out)
    if tidy.empty:
        return tidy, per_patient, 0
    keys = {c.key for c in grid.cells}
    mine = tidy["cell_key"].isin(keys)
    rows = tidy[mine].reset_index(drop=True)
    for column in ("backbone", "variant"):
        rows[column] = rows[column].fillna("") if column in rows else ""
    if len(per_patient):
        per_patient = per_patient[per_patient["cell_key"].isin(keys)].reset_index(drop=True)
    return rows, per_patient, int((~mine).sum())


def write_reports(out: Path, grid: Grid, command: str) -> str:
    """summary.csv, summary.md and the charts from the grid's finished runs in ``out``; the markdown, or a line
    saying there is nothing to report yet."""
    from utils.io import atomic_path, write_text
    from utils.plots import plot_bars

    rows, per_patient, others = grid_rows(out, grid)
    note = (f"({others} run(s) in {out} have other settings and are left out: rerun with the grid's flags, e.g. "
            "the same --mixed-precision, to report them)") if others else ""
    if rows.empty:
        return f"no finished run of this grid in {out} yet {note}".strip()
    summary = summarise(rows, grid.labels)
    with atomic_path(out / SUMMARY_CSV) as tmp:
        summary.to_csv(tmp, index=False)
    text = markdown(summary, rows, per_patient, grid, command)
    write_text(out / SUMMARY_MD, text)
    spread = "seeds" if grid.preset == "standard" else "patients and seeds"
    for h, name in PLOTS.items():
        plot_bars(list(summary["label"]), summary[f"rmse_{h}_mean"].to_numpy(), summary[f"rmse_{h}_sd"].to_numpy(),
                  out / name, f"RMSE at {h} min (mean ± sd over {spread})", "RMSE (mg/dL)")
    return text + (f"\n{note}\n" if note else "")

