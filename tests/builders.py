"""Test data shared by several test files: synthetic OhioT1DM-layout patient files and tiny Time-LLM sizes.

Plain functions and constants rather than fixtures, because some tests build their cases at import time (the
parametrize tables of test_errors.py, the fuzzing seed of test_fuzz.py). pytest's default (prepend) import mode puts
tests/ on sys.path, so test files import this module as ``from builders import ...``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

# Time-LLM sizes for the tiny saved backbones of conftest.py on 24-point windows: a few patches, a few prototypes and
# heads, d_ff within every tiny backbone's width (16 of 32), so a forward pass takes milliseconds.
TINY = dict(patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2, num_tokens=16, top_k=3)
# The tiny Time-LLM trained end to end on a synthetic patient (default 72-point windows) on the tiny BERT: d_ff as
# wide as that backbone (32).
TINY_BERT = dict(llm_model="BERT", d_ff=32, num_tokens=16)


def cgm_times(start: str | pd.Timestamp, n: int, offset: int = 0) -> pd.DatetimeIndex:
    """n readings 5 minutes apart, the first ``offset`` steps after ``start`` (a testing file continuing a training
    file passes the training file's length)."""
    return pd.Timestamp(start) + pd.to_timedelta((np.arange(n) + offset) * 5, unit="min")


def sine_glucose(n: int, level: float, amplitude: float, period: float, noise: float = 0.0,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """A slow sine around ``level`` plus Gaussian sensor noise drawn from ``rng``: learnable, never constant."""
    values = level + amplitude * np.sin(np.arange(n) / period)
    return values + rng.normal(0, noise, n) if noise else values


def patient_xml(pid: str, times, values, *, events: str = "", attrs: dict[str, str] | None = None,
                value_format: str = "g") -> str:
    """The text of an OhioT1DM patient file holding these CGM readings, laid out as the release files are.

    A time given as a string is written as is (to test bad timestamps), a Timestamp day first; a NaN value leaves its
    reading out (a sensor dropout). ``events`` is XML for further fields, placed after <glucose_level>.
    """
    readings = "\n".join(
        f'\t\t<event ts="{t if isinstance(t, str) else f"{t:%d-%m-%Y %H:%M:%S}"}" value="{v:{value_format}}"/>'
        for t, v in zip(times, values) if pd.notna(v)
    )
    header = "".join(f' {k}="{v}"' for k, v in {"id": pid, **(attrs or {})}.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<patient{header}>\n\t<glucose_level>\n{readings}\n'
            f"\t</glucose_level>\n{events}</patient>\n")


def write_file(path: Path, content: str | bytes, gz: bool = False) -> Path:
    """Write text or bytes to path (its folders created), gzip-compressed when ``gz``; returns path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_patient_xml(folder: Path, pid: str, part: str, times, values, *, gz: bool = False, **xml) -> Path:
    """``folder/<pid>-ws-<part>.xml[.gz]`` holding these readings (``part`` is "training" or "testing"); ``xml`` goes
    to :func:`patient_xml`."""
    name = f"{pid}-ws-{part}.xml" + (".gz" if gz else "")
    return write_file(Path(folder) / name, patient_xml(pid, times, values, **xml), gz)
