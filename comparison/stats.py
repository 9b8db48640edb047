"""Paired per-patient comparisons of one row (Time-LLM) against another, in plain words.

Each patient's RMSE is first averaged over the seeds both rows ran, so a patient counts once; the difference is
reference minus other (positive: the reference is worse). Across patients: the mean difference, on how many
patients each row is lower, and the two-sided Wilcoxon signed-rank p-value (patients with no difference drop out,
scipy's default). A difference counts as a win or a loss only at p < ALPHA; a lower mean without it is said to be
no measurable difference, so a reader never takes noise for a ranking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import pandas as pd

ALPHA = 0.05  # two-sided significance level of the signed-rank test


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


def differences(per_patient: pd.DataFrame, reference: str, other: str, horizon: int) -> pd.Series:
    """Per patient (index), the reference's RMSE at ``horizon`` minus the other row's, each averaged over the seeds
    both rows ran; empty when they share no (patient, seed)."""
    col = f"rmse_{horizon}"
    keys = ["patient", "seed"]
    a = per_patient.loc[per_patient["label"] == reference, keys + [col]]
    b = per_patient.loc[per_patient["label"] == other, keys + [col]]
    both = a.merge(b, on=keys, suffixes=("_ref", "_other")).dropna()
    by_patient = both.groupby("patient")[[f"{col}_ref", f"{col}_other"]].mean()
    return by_patient[f"{col}_ref"] - by_patient[f"{col}_other"]


def paired(per_patient: pd.DataFrame, reference: str, other: str, horizon: int) -> Optional[Paired]:
    """The comparison at ``horizon`` minutes from per-patient rows (label, patient, seed, rmse_<h>); None when the
    two rows share no (patient, seed)."""
    diff = differences(per_patient, reference, other, horizon)
    if diff.empty:
        return None
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


def outcome(c: Paired) -> str:
    """'better' or 'worse' when the Wilcoxon test across patients says so at ALPHA, else 'level'."""
    if math.isnan(c.p) or c.p >= ALPHA or abs(c.mean_diff) < 0.005:
        return "level"
    return "worse" if c.mean_diff > 0 else "better"


def statement(c: Paired) -> str:
    """E.g. 'TimeLLM (MS) is worse than DLinear (S) at 30 min: higher RMSE on 11 of 12 patients, by 4.1 mg/dL on
    average, p = 0.001.' A difference without p < ALPHA is called no measurable difference, with its numbers."""
    where = f"{c.other} at {c.horizon} min"
    side = "higher" if c.mean_diff > 0 else "lower"
    count = c.worse if c.mean_diff > 0 else c.better
    result = outcome(c)
    if result == "level":
        if abs(c.mean_diff) < 0.005:
            detail = f"lower RMSE on {c.better}, higher on {c.worse} of {c.patients} patients"
        else:
            detail = (f"{side} RMSE on {count} of {c.patients} patients, {_mgdl(abs(c.mean_diff))} mg/dL {side} on "
                      "average")
        return f"{c.reference} is not measurably different from {where} ({detail}, {_p_text(c.p)})."
    return (f"{c.reference} is {result} than {where}: {side} RMSE on {count} of {c.patients} patients, by "
            f"{_mgdl(abs(c.mean_diff))} mg/dL on average, {_p_text(c.p)}.")


def verdict(per_patient: pd.DataFrame, reference: str, others: list[str], horizon: int) -> str:
    """One sentence grouping the other rows by outcome at ``horizon``: what the reference beats, what beats it,
    and where no difference is measurable."""
    groups: dict[str, list[str]] = {"better": [], "worse": [], "level": []}
    for other in others:
        c = paired(per_patient, reference, other, horizon)
        if c is not None:
            groups[outcome(c)].append(other)
    parts = [f"beats {', '.join(groups['better'])}" if groups["better"] else "beats none",
             f"loses to {', '.join(groups['worse'])}" if groups["worse"] else "loses to none",
             f"is not measurably different from {', '.join(groups['level'])}" if groups["level"] else ""]
    return (f"At {horizon} min (Wilcoxon across patients, p < {ALPHA}), {reference} "
            + "; ".join(p for p in parts if p) + ".")


def statements(per_patient: pd.DataFrame, reference: str, others: list[str], horizons=(30, 60)) -> list[str]:
    """One markdown bullet per other row and horizon that shares patients with ``reference``."""
    lines = []
    for other in others:
        for h in horizons:
            c = paired(per_patient, reference, other, h)
            if c is not None:
                lines.append(f"- {statement(c)}")
    return lines
