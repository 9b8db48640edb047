"""The datasets a run can name with ``--data``: one registry, so a new format is one entry here.

Each entry maps a name (and its other spellings) to a reader returning ``PatientRecord``s (``data_provider/ohio.py``:
a training and an optional testing part per patient, each on the 5-minute grid), a lister of its patient ids, and
the prompt's dataset description (``dataset/prompt_bank/<name>.txt``). ``build_splits``, the forecast command and
the callers that list patients go through it; everything after the records (windows, scaler, scoring) is the same
for every dataset.

- ``simulated``: the bundled cohort, OhioT1DM XML layout (``dataset/simulated``);
- ``ohio`` (``ohiot1dm``, ``OhioT1DM``): the licensed OhioT1DM XML files, under ``--root_path``;
- ``csv``: CGM exports as CSV tables (``data_provider/cgm_csv.py``, ``docs/data.md``), under ``--root_path``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from configs import DataConfig
from data_provider.cgm_csv import csv_patient_ids, load_csv_cohort, options
from data_provider.ohio import PatientRecord, discover, load_cohort
from utils.errors import LLMTimeError

DATASET_DIR = Path(__file__).resolve().parents[1] / "dataset"
CSV_SETTINGS = ("csv_columns", "glucose_units", "test_start", "test_days")  # DataConfig fields only --data csv reads


def _xml_records(root: Path, cfg: DataConfig, patients: Optional[list[str]]) -> dict[str, PatientRecord]:
    return load_cohort(root, patients)


def _xml_ids(root: Path, cfg: DataConfig) -> list[str]:
    found = discover(root)
    return sorted(found, key=lambda p: (int(p), p) if p.isdigit() else (1 << 30, p))


@dataclass(frozen=True)
class Dataset:
    """A ``--data`` name: how its records are read, how its patients are listed, what ``--root_path`` holds."""

    name: str  # also the prompt description's file name and the run folders' data part
    aliases: tuple[str, ...]
    load: Callable[[Path, DataConfig, Optional[list[str]]], dict[str, PatientRecord]]
    patient_ids: Callable[[Path, DataConfig], list[str]]
    holds: str  # what --root_path points at, for the error when it is missing
    testing: str  # a patient's testing file, for the error when one is missing ({pid}: the patient's id)
    bundled: Optional[Path] = None

    @property
    def description_path(self) -> Path:
        return DATASET_DIR / "prompt_bank" / f"{self.name}.txt"


DATASETS = {d.name: d for d in (
    Dataset("simulated", (), _xml_records, _xml_ids, "OhioT1DM-layout XML files", "{pid}-ws-testing.xml",
            DATASET_DIR / "simulated"),
    Dataset("ohio", ("ohiot1dm",), _xml_records, _xml_ids, "the OhioT1DM XML files", "{pid}-ws-testing.xml"),
    Dataset("csv", (), load_csv_cohort, csv_patient_ids, "a folder of CSV files or one cohort CSV (docs/data.md)",
            "{pid}-test.csv"),
)}


def dataset_name(name: str) -> str:
    """The one spelling of a ``--data`` name: case-insensitive, and OhioT1DM's full name ('ohiot1dm', 'OhioT1DM') is
    'ohio', so the name people type for the dataset finds its prompt description and names its runs the same way.
    An unknown name comes back lower-cased, for ``dataset`` to refuse. The spellings are read from ``DATASETS`` at
    each call, so its entry is all a new dataset needs."""
    key = name.strip().lower()
    spellings = {alias: d.name for d in DATASETS.values() for alias in (d.name, *d.aliases)}
    return spellings.get(key, key)


def dataset(name: str) -> Dataset:
    """The registry entry of a ``--data`` name, in any of its spellings."""
    key = dataset_name(name)
    if key not in DATASETS:
        spellings = ", ".join(f"{d.name}" + (f" ({', '.join(d.aliases)})" if d.aliases else "")
                              for d in DATASETS.values())
        raise LLMTimeError(f"unknown --data {name!r}; choose one of: {spellings}")
    return DATASETS[key]


def data_root(cfg: DataConfig) -> Path:
    """``--root_path``, or the bundled copy of the dataset."""
    if cfg.root_path:
        return Path(cfg.root_path)
    entry = dataset(cfg.data)
    if entry.bundled is None:
        raise LLMTimeError(f"--data {cfg.data} has no bundled copy: pass --root_path to {entry.holds}")
    return entry.bundled


def check(cfg: DataConfig) -> None:
    """The dataset exists, and settings that only one dataset reads are not given to another."""
    entry = dataset(cfg.data)
    if entry.name == "csv":
        options(cfg)
        return
    given = [name for name in CSV_SETTINGS if getattr(cfg, name) != getattr(DataConfig, name)]
    if given:
        raise LLMTimeError(f"--{given[0]} goes with --data csv (this run reads --data {cfg.data}): drop it")


def load_records(cfg: DataConfig, patients: Optional[list[str]] = None) -> dict[str, PatientRecord]:
    """The named patients (all when None) of the run's dataset."""
    return dataset(cfg.data).load(data_root(cfg), cfg, patients)


def patient_ids(cfg: DataConfig) -> list[str]:
    """Every patient id of the run's dataset, in id order."""
    return dataset(cfg.data).patient_ids(data_root(cfg), cfg)


def description(cfg: DataConfig) -> str:
    """The dataset's prompt description from dataset/prompt_bank/<name>.txt."""
    path = dataset(cfg.data).description_path
    if not path.is_file():
        raise LLMTimeError(f"no prompt description {path} for --data {cfg.data}: restore it from the repository")
    return path.read_text().strip()
