"""Appending rows to a results CSV that several runs may write at once.

An exclusive file lock serialises writers (``filelock``, which works on POSIX and Windows alike; ``fcntl`` would keep
the entry points from even importing on Windows); the new table is written to a temporary file and renamed, so
readers never see a half-written CSV and no row is lost or interleaved. New columns widen the table instead of failing.
The rows already there are read and written back as the text they are: read as numbers, a hash such as "1961e791"
would come back as "inf" and "01234567" as "1234567".
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Optional

import pandas as pd
from filelock import FileLock

from utils.errors import LLMTimeError
from utils.io import atomic_path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (the file ``<name>.lock`` beside it) for the block."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        yield


def read_as_text(path: Path) -> pd.DataFrame:
    """The CSV's rows as the text they are (an empty table for a missing or empty file), to be written back."""
    if path.is_dir():
        raise LLMTimeError(f"results CSV {path} is a folder: pass --results_csv a file name")
    if not path.is_file() or not path.stat().st_size:
        return pd.DataFrame()
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)  # verbatim: see the module docstring
    except (ValueError, UnicodeDecodeError, OSError) as e:  # pandas' parser errors are ValueErrors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LLMTimeError(
            f"results CSV {path} is not a readable CSV ({first}): move it aside or pass another --results_csv"
        ) from None


def check_appendable(path: str | os.PathLike) -> None:
    """Raise now if a row could not be appended to ``path`` later, so a long run does not end in a lost row."""
    path = Path(path)
    try:
        with locked(path):
            read_as_text(path)
    except OSError as e:
        raise LLMTimeError(f"cannot write results CSV {path} ({e.strerror}): pass another --results_csv") from None


def append_row(path: str | os.PathLike, row: dict[str, Any]) -> None:
    append_rows(path, [row])


def append_rows(path: str | os.PathLike, rows: list[dict[str, Any]], replace: Optional[str] = None) -> None:
    """Append ``rows`` in one atomic write; with ``replace`` (a column), first drop the rows already there whose value
    in it is one of the new rows' (a rerun's rows supersede those an interrupted run left), so none is there twice."""
    path = Path(path)
    with locked(path):
        old = read_as_text(path)
        if replace is not None and replace in old:
            old = old[~old[replace].isin({str(r[replace]) for r in rows})]
        frame = pd.concat([old, pd.DataFrame(rows, dtype=object)], ignore_index=True)  # 1 stays "1"
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
