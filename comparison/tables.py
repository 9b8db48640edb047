"""The comparison's tables in ``--out``: ``tidy.csv`` (one row per run) and ``per_patient.csv`` (one row per run and
patient), or per shard of a job array ``tidy.shard-I-of-N.csv`` and ``per_patient.shard-I-of-N.csv``.

A cell counts as finished when its key is in any tidy table of the folder, so a grid can move between sharded and
unsharded runs without redoing work. Reading joins every table; a cell found twice with different results (two
shards that both ran it and disagree) is an error, never silently one of the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from utils.errors import LLMTimeError
from utils.io import atomic_path
from utils.results import locked

TIDY, PER_PATIENT = "tidy.csv", "per_patient.csv"
# What two copies of one cell must agree on.
RESULT_COLUMNS = ("rmse_30", "rmse_60", "mae_30", "mae_60")
# Per patient: the run's metrics and persistence (the last reading, held) on the same windows.
PATIENT_METRICS = ("rmse_30", "rmse_60", "mae_30", "mae_60", "n_30", "n_60")
PERSISTENCE_METRICS = ("rmse_30", "rmse_60", "mae_30", "mae_60")
TEXT_COLUMNS = {"patients": str, "test_patients": str, "backbone": str, "variant": str, "patient": str,
                "features": str, "cell_key": str, "label": str}


def table_names(shard: Optional[tuple[int, int]]) -> tuple[str, str]:
    """(tidy, per-patient) file names for a shard (index, count), or the joined tables for None."""
    if shard is None:
        return TIDY, PER_PATIENT
    index, count = shard
    return f"tidy.shard-{index}-of-{count}.csv", f"per_patient.shard-{index}-of-{count}.csv"


def sources(out: Path, joined: str) -> list[Path]:
    """The joined table (when present) and every shard table of its kind in ``out``."""
    stem = Path(joined).stem
    found = [out / joined] if (out / joined).is_file() else []
    return found + sorted(out.glob(f"{stem}.shard-*-of-*.csv"))


def read_table(path: Path) -> pd.DataFrame:
    if not path.is_file() or not path.stat().st_size:
        return pd.DataFrame()
    try:
        return pd.read_csv(path, dtype=TEXT_COLUMNS, keep_default_na=False, na_values=[""])
    except (ValueError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LLMTimeError(f"{path} is not a readable CSV ({first}): move it aside and run again") from None


def _joined(out: Path, joined: str) -> pd.DataFrame:
    frames = [read_table(p).assign(source=p.name) for p in sources(out, joined)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def finished_keys(out: Path) -> set[str]:
    """Keys of the cells with a row in any tidy table of ``out``."""
    tidy = _joined(out, TIDY)
    return set(tidy["cell_key"].astype(str)) if len(tidy) else set()


def read_rows(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tidy, per-patient) rows of every table in ``out``, one per cell (and patient), with a ``source`` column."""
    tidy = _joined(out, TIDY)
    if tidy.empty:
        return tidy, pd.DataFrame()
    _check_agreement(tidy)
    tidy = tidy.drop_duplicates("cell_key", keep="first").reset_index(drop=True)
    per_patient = _joined(out, PER_PATIENT)
    if len(per_patient):
        # a run killed between its two writes left its patient rows twice: its rerun wrote them again
        per_patient = per_patient[per_patient["cell_key"].isin(set(tidy["cell_key"]))]
        per_patient = per_patient.drop_duplicates(["cell_key", "patient"], keep="last").reset_index(drop=True)
    return tidy, per_patient


def _check_agreement(tidy: pd.DataFrame) -> None:
    repeated = tidy[tidy.duplicated("cell_key", keep=False)]
    columns = [c for c in RESULT_COLUMNS if c in repeated]
    for key, copies in repeated.groupby("cell_key", sort=False):
        if len(copies[columns].round(6).drop_duplicates()) > 1:
            seen = "; ".join(f"{r['source']}: RMSE30 {r['rmse_30']:.3f}" for _, r in copies.iterrows())
            raise LLMTimeError(f"two tables disagree on cell {key} ({seen}): delete the wrong row and merge again")


def merge(out: Path) -> tuple[int, int]:
    """Join every table of ``out`` into tidy.csv and per_patient.csv; (cells, shard tables read)."""
    shards = [p for p in sources(out, TIDY) if p.name != TIDY]
    with locked(out / TIDY), locked(out / PER_PATIENT):
        tidy, per_patient = read_rows(out)
        if tidy.empty:
            raise LLMTimeError(f"--merge: no tidy tables with rows in {out}")
        for frame, name in ((tidy, TIDY), (per_patient, PER_PATIENT)):
            if frame.empty:
                continue
            with atomic_path(out / name) as tmp:
                frame.drop(columns="source", errors="ignore").to_csv(tmp, index=False)
    return len(tidy), len(shards)
