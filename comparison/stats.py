"""Paired per-patient comparisons of one row (Time-LLM) against every other, in plain words.

Each patient's RMSE is first averaged over the seeds both rows ran, so a patient counts once; the difference is
reference minus other (positive: the reference is worse). Across patients: the mean difference, on how many
patients each row is lower, and the paired test of ``utils.stats`` (two-sided Wilcoxon signed-rank, its edge rules
there). The report states every comparison of its reference at once, so ``family`` corrects all of their p-values
together (Holm, over every other row at 30 and 60 min), and a difference counts as a win or a loss only when its
corrected p is below ``ALPHA``; otherwise the two rows cannot be told apart, whatever their means, so a reader never
takes noise for a ranking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Optional

import pandas as pd

from utils.cgm import NAMED_HORIZONS_MIN
from utils.stats import ALPHA, MIN_PAIRS, holm, paired_test, significant


@dataclass(frozen=True)
class Paired:
    reference: str
    other: str
    horizon: int  # minutes
    patients: int  # patients both rows ran on at least one common seed
    better: int  # patients where the reference's RMSE is lower
    worse: int  # patients where it is higher
    mean_diff: float  # mean over patients of reference minus other RMSE, mg/dL
    p: float  # utils.stats.paired_test: NaN (not tested) below MIN_PAIRS patients
    p_holm: float  # p corrected over the family it was stated in; alone, a test is its own family


Family = Mapping[tuple[str, int], Paired]  # (other row, horizon) -> its test, corrected with the others


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
    t = paired_test(diff)
    return Paired(reference, other, horizon, t.n, t.lower, t.higher, t.mean_diff, t.p, t.p)


def family(per_patient: pd.DataFrame, reference: str, labels: list[str],
           horizons: tuple[int, ...] = NAMED_HORIZONS_MIN) -> dict[tuple[str, int], Paired]:
    """The reference against every other of ``labels`` at every horizon (in that order), each p Holm-corrected over
    all of them: the family of tests one report states (empty without per-patient rows)."""
    if per_patient.empty:
        return {}
    found = {(other, h): paired(per_patient, reference, other, h)
             for other in labels if other != reference for h in horizons}
    tests = {key: c for key, c in found.items() if c is not None}
    corrected = holm([c.p for c in tests.values()])
    return {key: replace(c, p_holm=p) for (key, c), p in zip(tests.items(), corrected)}


def family_size(tests: Family) -> int:
    """How many tests the correction counted (those with a p-value)."""
    return sum(not math.isnan(c.p) for c in tests.values())


def p_columns(summary: pd.DataFrame, tests: Family) -> pd.DataFrame:
    """``summary`` with, per row, the reference's test against it: ``wilcoxon_p_<h>`` raw and ``p_holm_<h>``
    corrected over the family (blank for the reference itself and rows it shares no patient with)."""
    out = summary.copy()
    for h in NAMED_HORIZONS_MIN:
        for column, attr in ((f"wilcoxon_p_{h}", "p"), (f"p_holm_{h}", "p_holm")):
            out[column] = [getattr(tests[(label, h)], attr) if (label, h) in tests else math.nan
                           for label in out["label"]]
    return out


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _p_text(c: Paired) -> str:
    if math.isnan(c.p):
        return f"not tested: fewer than {MIN_PAIRS} patients"
    return f"{_p(c.p)}, Holm-corrected {_p(c.p_holm)}"


def _mgdl(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def outcome(c: Paired) -> str:
    """'better' or 'worse' when the Holm-corrected test across patients says so at ALPHA, else 'level'."""
    if not significant(c.p_holm) or abs(c.mean_diff) < 0.005:
        return "level"
    return "worse" if c.mean_diff > 0 else "better"


def statement(c: Paired) -> str:
    """E.g. 'TimeLLM (MS) is worse than DLinear (S) at 30 min: higher RMSE on 11 of 12 patients, by 4.1 mg/dL on
    average, p < 0.001, Holm-corrected p = 0.012.' Without a corrected p below ALPHA the two cannot be told apart,
    and the sentence says so with its numbers."""
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
        return f"{c.reference} cannot be told apart from {where} ({detail}, {_p_text(c)})."
    return (f"{c.reference} is {result} than {where}: {side} RMSE on {count} of {c.patients} patients, by "
            f"{_mgdl(abs(c.mean_diff))} mg/dL on average, {_p_text(c)}.")


def verdict(tests: Family, reference: str, horizon: int) -> str:
    """One sentence grouping the rows tested at ``horizon`` by outcome: what the reference beats, what beats it,
    and what it cannot be told apart from."""
    groups: dict[str, list[str]] = {"better": [], "worse": [], "level": []}
    for (other, h), c in tests.items():
        if h == horizon:
            groups[outcome(c)].append(other)
    parts = [f"beats {', '.join(groups['better'])}" if groups["better"] else "beats none",
             f"loses to {', '.join(groups['worse'])}" if groups["worse"] else "loses to none",
             f"cannot be told apart from {', '.join(groups['level'])}" if groups["level"] else ""]
    return (f"At {horizon} min (Wilcoxon across patients, Holm-corrected over {family_size(tests)} tests, "
            f"p < {ALPHA}), {reference} " + "; ".join(p for p in parts if p) + ".")


def statements(tests: Family, others: list[str]) -> list[str]:
    """One markdown bullet per row of ``others`` and horizon that the family tested."""
    return [f"- {statement(tests[(other, h)])}" for other in others for h in NAMED_HORIZONS_MIN
            if (other, h) in tests]
