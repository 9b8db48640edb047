"""Test data shared by several test files: synthetic OhioT1DM-layout patient files, tiny Time-LLM sizes, and the
sine-wave windows and linear model the engine tests train.

Plain functions and constants rather than fixtures, because some tests build their cases at import time (the
parametrize tables of test_errors.py, the fuzzing seed of test_fuzz.py). pytest's default (prepend) import mode puts
tests/ on sys.path, so test files import this module as ``from builders import ...``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
from torch import Tensor, nn

from data_provider.data_factory import WindowDataset
from models.base import Forecaster

# Time-LLM sizes for the tiny saved backbones of conftest.py on 24-point windows: a few patches, a few prototypes and
# heads, d_ff within every tiny backbone's width (16 of 32), so a forward pass takes milliseconds.
TINY = dict(patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2, num_tokens=16, top_k=3)
# The tiny Time-LLM trained end to end on a synthetic patient (default 72-point windows) on the tiny BERT: d_ff as
# wide as that backbone (32).
TINY_BERT = dict(llm_model="BERT", d_ff=32, num_tokens=16)
# The distillation tests' Time-LLM widths (default windows, patches and lags), and the same as pipeline flags.
TINY_WIDTHS = dict(d_model=8, d_ff=16, n_heads=2, num_tokens=16)
TINY_FLAGS = [item for key, value in TINY_WIDTHS.items() for item in (f"--{key.replace('_', '-')}", str(value))]
# The engine tests' windows: L readings in, H steps forecast.
L, H = 12, 3


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


def sine_windows(n: int = 512, noise: float = 0.05, seed: int = 0, patients: tuple[str, ...] = ("p",)) -> WindowDataset:
    """``n + 1`` windows of ``L`` readings and an ``H``-step target on a slow sine plus Gaussian noise of sd ``noise``
    drawn with ``seed`` (none at 0), every target scored; the origins are shared out in time order, in equal spans,
    among ``patients``."""
    t = np.arange(n + L + H)
    series = np.sin(t / 5.0) + noise * np.random.default_rng(seed).normal(size=len(t)) if noise else np.sin(t / 5.0)
    origins = np.arange(L - 1, len(t) - H)
    patient = np.array(patients, dtype=object)[np.minimum(origins // (len(t) // len(patients)), len(patients) - 1)]
    return WindowDataset(series[:, None], series, origins, np.ones((len(origins), H), bool), patient,
                         pd.date_range("2022-01-01", periods=len(t), freq="5min").to_numpy()[origins], L, H)


class Linear(Forecaster):
    """The last ``L`` glucose readings mapped linearly to the ``H``-step forecast: the smallest trainable model."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(L, H)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x[..., 0])


def pipeline_args(cohort: Path, backbones: dict[str, Path], out: Path, *extra: str, student: str = "bert") -> list[str]:
    """The distillation pipeline's flags at the smallest scale: conftest's saved tiny GPT-2 (``backbones``) teaching
    its saved tiny BERT (``student="bert"``) or a model without a language model (``student="mlp"``), patient 1001 of
    ``cohort``, 48 training and 24 validation windows, one epoch per phase, two latency repeats, ``TINY_FLAGS``;
    ``extra`` comes last, so its flags win."""
    own = (["--student", "google-bert/bert-base-uncased", "--student-path", str(backbones["bert"])]
           if student == "bert" else ["--student", student])
    return ["--teacher", "gpt2", "--teacher-path", str(backbones["gpt2"]), *own, "--root-path", str(cohort),
            "--patients", "1001", "--max-train-windows", "48", "--max-val-windows", "24", "--teacher-epochs", "1",
            "--student-epochs", "1", "--distill-epochs", "1", "--latency-repeats", "2", "--out", str(out), *TINY_FLAGS,
            *extra]
