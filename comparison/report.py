"""The comparison's report in ``--out``: ``summary.csv`` (one row per grid row; on the standard grid also Time-LLM
(MS)'s paired test against the row, raw and Holm-corrected p per horizon, ``comparison.stats``), ``summary.md`` (the
tables, the command, plain findings) and RMSE charts at 30 and 60 minutes (the standard grid adds Time-LLM (MS) minus
each other row, patient by patient), written from the finished runs of the grid.

Rewritten after every finished cell, so a partial grid always has a valid partial report that says how many of the
planned runs it covers; ``--merge`` and ``--report`` rewrite it without training.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from comparison import standard, stats, tables
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
    note = (f"({others} run(s) in {out / tables.TIDY} have other settings than this grid (an earlier recipe or "
            "flag) and are left out of this summary: rerun with the grid's flags, e.g. the same --mixed-precision, "
            "to report them)") if others else ""
    if rows.empty:
        return f"no finished run of this grid in {out} yet {note}".strip()
    summary = summarise(rows, grid.labels)
    if grid.preset == "standard":
        summary = stats.p_columns(summary, stats.family(per_patient, standard.REFERENCE, list(summary["label"])))
    with atomic_path(out / SUMMARY_CSV) as tmp:
        summary.to_csv(tmp, index=False)
    text = markdown(summary, rows, per_patient, grid, command) + (f"\n{note}\n" if note else "")
    write_text(out / SUMMARY_MD, text)  # the note too: a reader of tidy.csv must know why it holds more runs
    spread = "seeds" if grid.preset == "standard" else "patients and seeds"
    for h, name in PLOTS.items():
        plot_bars(list(summary["label"]), summary[f"rmse_{h}_mean"].to_numpy(), summary[f"rmse_{h}_sd"].to_numpy(),
                  out / name, f"RMSE at {h} min (mean ± sd over {spread})", "RMSE (mg/dL)")
    if grid.preset == "standard":
        paired_charts(out, summary, per_patient)
    return text


def paired_charts(out: Path, summary: pd.DataFrame, per_patient: pd.DataFrame) -> None:
    """The standard report's per-patient picture of its findings: Time-LLM (MS) minus every other row, one dot per
    patient, coloured by the Holm-corrected Wilcoxon verdict (``comparison.stats``), at 30 and 60 min."""
    from utils.plots import plot_paired

    ref = standard.REFERENCE
    others = [label for label in summary["label"] if label != ref]
    if ref not in set(summary["label"]) or per_patient.empty:
        return
    tests = stats.family(per_patient, ref, list(summary["label"]))
    for h, name in standard.PAIRED_PLOTS.items():
        diffs = {o: stats.differences(per_patient, ref, o, h) for o in others}
        diffs = {o: d for o, d in diffs.items() if len(d)}
        if diffs:
            outcomes = {o: stats.outcome(tests[(o, h)]) for o in diffs}
            plot_paired(diffs, outcomes, out / name, f"{ref} minus each row at {h} min, one dot per patient",
                        "RMSE difference, mg/dL (< 0: TimeLLM better; green / red: better / worse at Holm-corrected "
                        f"Wilcoxon p < {stats.ALPHA}, grey: cannot be told apart)")

