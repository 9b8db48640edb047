"""Paired per-patient comparisons of one row (Time-LLM) against another, in plain words.

Each patient's RMSE is first averaged over the seeds both rows ran, so a patient counts once; the difference is
reference minus other (positive: the reference is worse). Across patients: the mean difference, on how many
patients each row is lower, and the two-sided Wilcoxon signed-rank p-value (patients with no difference drop out,
scipy's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import pandas as pd


@dataclass(frozen=True)
class Paired:
    reference: str
    other: str
    horizon: int  # minutes
    patients: int  # patients both rows ran on at least one common seed
    better: int  # patients where the reference's RMSE is lower
    worse: int  # patients where it is higher
    mean_diff: float  # mean over patients of reference minus other RMSE, mg/dL
    p: float  # Wilcoxon signed-rank, two-sided; nan when no patient differs


def paired(per_patient: pd.DataFrame, reference: str, other: str, horizon: int) -> Optional[Paired]:
    """The comparison at ``horizon`` minutes from per-patient rows (label, patient, seed, rmse_<h>); None when the
    two rows share no (patient, seed)."""
    col = f"rmse_{horizon}"
    keys = ["patient", "seed"]
    a = per_patient.loc[per_patient["label"] == reference, keys + [col]]
    b = per_patient.loc[per_patient["label"] == other, keys + [col]]
    both = a.merge(b, on=keys, suffixes=("_ref", "_other")).dropna()
    if both.empty:
        return None
    by_patient = both.groupby("patient")[[f"{col}_ref", f"{col}_other"]].mean()
    diff = by_patient[f"{col}_ref"] - by_patient[f"{col}_other"]
    return Paired(reference, other, horizon, len(diff), int((diff < 0).sum()), int((diff > 0).sum()),
                  float(diff.mean()), wilcoxon_p(diff))


def wilcoxon_p(diff: pd.Series) -> float:
    if not (diff != 0).any():
        return math.nan
    from scipy.stats import wilcoxon  # deferred: scipy is only needed once there is something to test

    return float(wilcoxon(diff.to_numpy()).pvalue)


def _p_text(p: float) -> str:
    if math.isnan(p):
        return "p not defined (no patient differs)"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _mgdl(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def statement(c: Paired) -> str:
    """E.g. 'TimeLLM (MS) is worse than DLinear (S) at 30 min on 11 of 12 patients, by 4.1 mg/dL, p = 0.001.'"""
    where = f"{c.other} at {c.horizon} min"
    if abs(c.mean_diff) < 0.005:
        return (f"{c.reference} is level with {where} (lower RMSE on {c.better}, higher on {c.worse} of "
                f"{c.patients} patients), {_p_text(c.p)}.")
    verb, count = ("worse than", c.worse) if c.mean_diff > 0 else ("better than", c.better)
    return (f"{c.reference} is {verb} {where} on {count} of {c.patients} patients, by "
            f"{_mgdl(abs(c.mean_diff))} mg/dL, {_p_text(c.p)}.")


def statements(per_patient: pd.DataFrame, reference: str, others: list[str], horizons=(30, 60)) -> list[str]:
    """One markdown bullet per other row and horizon that shares patients with ``reference``."""
    lines = []
    for other in others:
        for h in horizons:
            c = paired(per_patient, reference, other, h)
            if c is not None:
                lines.append(f"- {statement(c)}")
    return lines
