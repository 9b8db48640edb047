"""Write simulated patients as the bundled cohort's files: OhioT1DM XML, gzip'd byte for byte, and README numbers.

Why a module of its own: ``data_provider.simulate`` decides what happens to a virtual patient; this one decides how
that looks on disk (the published XML layout, attribute formats, a basal rate re-stated at the start of each file,
gzip headers without names or times so equal text gives equal bytes) and summarises each patient for the cohort
README (coverage, glycaemia and the persistence baseline the cohort was calibrated to OhioT1DM with).
:func:`generate_patient` joins the two: one spec in, two files and a summary out.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import quoteattr

import numpy as np

from data_provider.ohio import FIELDS, TIME_FORMAT  # the reader's layout is the one written here
from data_provider.simulate import CGM_PERIOD_S, EPOCH, Event, PatientSpec, SimulatedPatient, simulate_patient
from utils.io import atomic_path

INSULIN_TYPE = "Humalog"


# --- writing ----------------------------------------------------------------------------------------------------------


def _format(value: object) -> str:
    return value.strftime(TIME_FORMAT) if isinstance(value, datetime) else str(value)


def _basal_in_effect(events: list[Event], at: datetime) -> Event | None:
    """The basal rate running at ``at``, re-stated at that time so a file on its own knows its starting rate."""
    before = [e for e in events if e[0] <= at]
    return (at, {"ts": at, "value": before[-1][1]["value"]}) if before else None


def ohio_xml(sim: SimulatedPatient, start: datetime, end: datetime) -> str:
    """The OhioT1DM XML text for events in [start, end): field order, tab indentation and attributes as published."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<patient id="{sim.spec.patient_id}" weight="{round(sim.weight_kg)}" insulin_type="{INSULIN_TYPE}">']
    for name in FIELDS:
        chosen = sorted((e for e in sim.events[name] if start <= e[0] < end), key=lambda e: e[0])
        if name == "basal":
            first = _basal_in_effect(sorted(sim.events[name], key=lambda e: e[0]), start)
            if first is not None and (not chosen or chosen[0][0] != start):
                chosen.insert(0, first)
        if not chosen:
            lines.append(f"\t<{name}/>")
            continue
        lines.append(f"\t<{name}>")
        for _, attrs in chosen:
            body = " ".join(f"{k}={quoteattr(_format(v))}" for k, v in attrs.items())
            lines.append(f"\t\t<event {body}/>")
        lines.append(f"\t</{name}>")
    lines.append("</patient>")
    return "\n".join(lines) + "\n"


def write_gzip_text(target: Path, text: str) -> None:
    """Write gzip'd text atomically, with no name or time in the gzip header so equal text gives equal bytes."""
    with atomic_path(target) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(text.encode("utf-8"))


# --- statistics -------------------------------------------------------------------------------------------------------


def persistence_rmse(times: Sequence[datetime], values: Sequence[float], horizon_min: int,
                     skip_min: int = 60) -> float:
    """RMSE of predicting each CGM value by the one ``horizon_min`` earlier, on the 5-minute grid.

    Readings are moved to the nearest 5-minute clock mark (the closer one wins a shared mark), as the OhioT1DM reader
    does. Targets are real readings at least ``skip_min`` after the first one; the prediction is the last real reading
    at or before target - horizon (a forecaster only knows the past, so across a gap it holds the last value). This
    is the baseline the cohort was calibrated to OhioT1DM with.
    """
    if len(times) == 0:
        return float("nan")
    marks = np.array([(t - EPOCH).total_seconds() / CGM_PERIOD_S for t in times])
    slots = np.round(marks).astype(np.int64)
    order = np.lexsort((np.abs(marks - slots), slots))
    slots, vals = slots[order], np.asarray(values, dtype=float)[order]
    keep = np.r_[True, slots[1:] != slots[:-1]]
    slots, vals = slots[keep], vals[keep]
    step, skip = horizon_min // 5, skip_min // 5
    targets = np.flatnonzero(slots >= slots[0] + skip)
    if targets.size == 0:
        return float("nan")
    ref = np.searchsorted(slots, slots[targets] - step, side="right") - 1
    errors = vals[targets] - vals[ref]
    return float(np.sqrt(np.mean(errors**2)))


@dataclass(frozen=True)
class PatientSummary:
    """Per-patient numbers for the cohort README: coverage, persistence baseline on the test file, glycaemia."""

    patient_id: int
    virtual_patient: str
    cgm_train: int
    cgm_test: int
    missing_pct: float
    rmse30: float
    rmse60: float
    mean_glucose: float
    below70_pct: float
    above180_pct: float


def summarize(sim: SimulatedPatient) -> PatientSummary:
    """Statistics computed from the written CGM readings (train and test together unless stated)."""
    cgm = [(t, int(a["value"])) for t, a in sim.events["glucose_level"] if sim.train_start <= t < sim.test_end]
    train = [c for c in cgm if c[0] < sim.test_start]
    test = [c for c in cgm if c[0] >= sim.test_start]
    slots = (sim.test_end - sim.train_start).total_seconds() / CGM_PERIOD_S
    values = np.array([v for _, v in cgm], dtype=float)
    test_t, test_v = [t for t, _ in test], [v for _, v in test]
    return PatientSummary(
        patient_id=sim.spec.patient_id,
        virtual_patient=sim.spec.virtual_patient,
        cgm_train=len(train),
        cgm_test=len(test),
        missing_pct=max(0.0, 100 * (1 - len(cgm) / slots)),  # both ends can hold a reading: clip at 0
        rmse30=persistence_rmse(test_t, test_v, 30),
        rmse60=persistence_rmse(test_t, test_v, 60),
        mean_glucose=float(values.mean()),
        below70_pct=float(100 * np.mean(values < 70)),
        above180_pct=float(100 * np.mean(values > 180)),
    )


def patient_files(out_dir: Path, patient_id: int) -> tuple[Path, Path]:
    """Training and testing file paths of a patient, named as in OhioT1DM (gzip'd)."""
    return out_dir / f"{patient_id}-ws-training.xml.gz", out_dir / f"{patient_id}-ws-testing.xml.gz"


def generate_patient(spec: PatientSpec, out_dir: str | Path) -> PatientSummary:
    """Simulate a patient, write its training and testing files under ``out_dir`` and return its summary."""
    sim = simulate_patient(spec)
    train_path, test_path = patient_files(Path(out_dir), spec.patient_id)
    write_gzip_text(train_path, ohio_xml(sim, sim.train_start, sim.test_start))
    write_gzip_text(test_path, ohio_xml(sim, sim.test_start, sim.test_end))
    return summarize(sim)
