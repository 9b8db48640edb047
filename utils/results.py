"""Appending rows to a results CSV that several runs may write at once.

An exclusive file lock serialises writers; the new table is written to a temporary file and renamed, so readers
never see a half-written CSV and no row is lost or interleaved. New columns widen the table instead of failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from utils.io import atomic_path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def append_row(path: str | os.PathLike, row: dict[str, Any]) -> None:
    path = Path(path)
    with locked(path):
        frame = pd.read_csv(path) if path.is_file() and path.stat().st_size else pd.DataFrame()
        frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
