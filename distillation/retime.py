"""Measure the speed of finished distillation rows again, on a quiet machine, keeping everything else.

A row's latencies are taken the moment it finishes, often while other training jobs share the CPU (the row records
the 1-minute load then), and the standard report's rows finish hours apart under different loads, so its speed-ups
are not comparable with one another. ``retime_csv`` reloads each row's teacher and distilled student from their run
folders and takes the CPU latencies, and the INT8 student's figures, again, one row after another, so every
speed-up in a report is measured under the same conditions. Accuracy, sizes, chosen weights and costs come from the
runs and stay as they are; so does the INT8 student's error, which the same calibration on the same windows
reproduces (a check that the right models were reloaded).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import torch

from data_provider.data_factory import build_splits
from distillation.deploy import int8_figures
from distillation.report import machine_load, measure_latency, runs_here
from exp.checkpoint import CHECKPOINT_NAME, rebuild_model
from utils.errors import LLMTimeError
from utils.io import atomic_path
from utils.progress import progress
from utils.results import locked, read_as_text


def retime_row(row: dict[str, Any], repeats: int, threads: int, int8: bool) -> dict[str, Any]:
    """The speed columns of one row, measured now: teacher and student latency at batch 1 and 64, the speed-ups,
    the INT8 student's figures (when ``int8`` and the row has them) and the machine's load."""
    cfg, scaler, teacher, _ = rebuild_model(row["teacher_run"])
    student_cfg, student_scaler, student, _ = rebuild_model(row["distilled_run"])
    # the data the row's runs were scored on, scaled as in training; a privileged teacher has its own view of it
    teacher_splits = build_splits(cfg.data, scaler=scaler)
    splits = (teacher_splits if student_cfg.data == cfg.data
              else build_splits(student_cfg.data, scaler=student_scaler))
    with torch.no_grad():
        new = measure_latency(splits, teacher.eval(), student.eval(), repeats, threads, teacher_splits)
        if int8 and pd.notna(row.get("int8_size_mb")):
            new.update(int8_figures(student, splits, True, threads))
    return {**new, **machine_load()}


def retime_csv(csv: Path, repeats: int, threads: int, int8: bool, seeds: Optional[Collection[int]] = None) -> int:
    """Measure every reported row of a pipeline CSV again (the last row of each ``config_key``, the one a report
    reads), or only those of ``seeds`` (so finished seeds can be timed while another still trains), and rewrite the
    CSV in place; returns how many rows were measured. Nothing is written if a row fails."""
    if not csv.is_file() or not csv.stat().st_size:
        raise LLMTimeError(f"{csv} does not exist: there are no finished rows to time")
    with locked(csv):
        rows = pd.read_csv(csv, dtype={"patient": str, "config_key": str})
    latest = rows.drop_duplicates("config_key", keep="last")
    latest = latest if seeds is None else latest[latest["seed"].astype(int).isin(list(seeds))]
    here = latest.apply(runs_here, axis=1, phases=("teacher", "distilled"), names=(CHECKPOINT_NAME,)).astype(bool)
    if (~here).any():  # a report grown over sessions: earlier machines' run folders are not on this one
        warnings.warn(f"{int((~here).sum())} of {len(latest)} row(s) not timed: their run folders are not on this "
                      f"machine (e.g. {latest[~here].iloc[0]['teacher_run']}); they keep the "
                      "latencies taken where they ran (timed_on)", stacklevel=2)
    latest = latest[here].index
    updates = {}
    for i in progress(latest, desc="timing rows", unit="row"):
        row = rows.loc[i].to_dict()
        updates[i] = retime_row(row, repeats, threads, int8)
        old, new = row.get("int8_max_abs_diff_mgdl"), updates[i].get("int8_max_abs_diff_mgdl")
        if pd.notna(old) and new is not None and abs(new - old) > 0.01:
            raise LLMTimeError(f"row {i} of {csv}: the reloaded INT8 student differs from the float one by "
                               f"{new:.2f} mg/dL where the row says {old:.2f}: are {row['distilled_run']} and its "
                               "teacher the runs the row was made from? Nothing was written")
    with locked(csv):
        rows = read_as_text(csv)  # the other cells go back exactly as written; rows appended meanwhile stay
        for i, new in updates.items():
            for column, value in new.items():
                if column not in rows:
                    rows[column] = ""
                rows.at[i, column] = "" if value is None else str(value)
        with atomic_path(csv) as tmp:
            rows.to_csv(tmp, index=False)
    return len(updates)
