"""Atomic file writing: write to a temporary name beside the target, then rename.

An interrupted run therefore never leaves a half-written checkpoint, CSV or JSON behind; readers see either the old
file or the complete new one. A full disk is the user's to fix: it ends in one line naming the file and the space
free on its disk, not an ``OSError`` traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional

from utils.errors import LLMTimeError

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it over the target, else delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared like any other file
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except Exception as e:
        if not _disk_filled(e):
            raise
        raise LLMTimeError(disk_full(target, tmp_path.stat().st_size if tmp_path.exists() else 0)) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[BinaryIO]:
    """An open binary file that becomes ``target`` on success (``atomic_path``). Give it to writers that take a file
    (``torch.save``): torch's own file writer reports a full disk as an unexplained RuntimeError ("unexpected pos"),
    a Python file as an OSError (under the error torch then raises) that becomes one line here."""
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        yield f


def _disk_filled(error: Optional[BaseException]) -> bool:
    """Whether ``error`` or one it arose from is a full disk (torch's writer raises its own error over the OSError)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full(target: Path, written: int) -> str:
    """The one-line message for a disk that filled while ``target`` was written (``written`` bytes of it so far)."""
    try:
        usage = shutil.disk_usage(target.parent)
        free = f"{_size(usage.free)} free of {_size(usage.total)} there"
    except OSError:
        free = "the free space there is unknown"
    needed = f"it needs more than the {_size(written)} written before the disk filled; " if written else ""
    return f"no space left to write {target}: {needed}{free}: free some space, or write to another disk"


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def write_json(target: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write text atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
