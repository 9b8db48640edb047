"""The answers the standard distillation report opens with, per horizon, then the detail of ``distillation/summary.py``:

(a) which teacher kind made which student measurably better than the same student trained alone: the paired test of
    every (teacher kind, student) pair, Holm-corrected over the report's tests;
(b) the best deployable student: of the students (alone, or distilled from any teacher kind) that forecast in under
    ``DEPLOY_MS`` at batch 1, the one with the lowest validation RMSE, against Ridge and persistence on the same test
    windows (paired by patient, Holm-corrected over these four tests), with its latency and size. It is chosen on
    validation, so its test figures are those of a student picked without them.

Then each teacher kind's own accuracy: the privileged teacher sees the meals, boluses and basal logged within the
horizon, which no history-only student can, so its accuracy is the ceiling a student chases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd

from distillation.candidates import Candidate
from distillation.losses import LossWeights
from distillation.report import read_by_label, read_test_rmse
from distillation.summary import (cell, details_markdown, no_distillation_chosen, outcome, pair_name, table)
from utils.cgm import NAMED_HORIZONS_MIN
from utils.stats import ALPHA, PairedTest, holm, paired_test, significant

DEPLOY_MS = 2.0  # batch-1 latency a deployable student stays under
RIDGE = "Ridge (MS)"  # the report's reference: Ridge on glucose and the logged events (distillation/references.py)
REFERENCES = (("ridge", RIDGE), ("persistence", "persistence"))


@dataclass
class Deployable:
    """The best deployable student and its paired tests against the references, per horizon."""

    name: str
    summary_row: pd.Series
    variant: str  # 'alone' or 'distilled'
    val_rmse: float
    candidates: int  # students under the latency bound
    tests: dict[tuple[str, int], PairedTest]  # (reference, minutes) -> student minus reference, per patient
    p_holm: dict[tuple[str, int], float]


def kind_answer(summary: pd.DataFrame) -> list[str]:
    """(a), per horizon: the pairs where distillation measurably beat training the student alone (Holm-corrected
    Wilcoxon p < ALPHA across patients), lost to it, could not be told apart from it, was not chosen or not tested."""
    lines = ["## Which teacher kind made which student better than the same student alone?", ""]
    verbs = {"beat": "beat it", "worse": "lost to it", "level": "could not be told apart from it",
             "untested": "was not tested (too few patients)", "chosen": "was not chosen"}
    for m in NAMED_HORIZONS_MIN:
        groups: dict[str, list[str]] = {key: [] for key in verbs}
        for _, r in summary.iterrows():
            result = "chosen" if no_distillation_chosen(r) else outcome(r, m)
            if result == "chosen":
                groups[result].append(f"{pair_name(r)} (validation chose (1, 0, 0) in every seed)")
            else:
                groups[result].append(f"{pair_name(r)} ({r[f'distill_minus_baseline_{m}']:+.2f} mg/dL"
                                      + ("" if result == "untested" else
                                         f", p = {r[f'p_raw_{m}']:.2g}, Holm p = {r[f'p_holm_{m}']:.2g}") + ")")
        said = "; ".join(f"{verbs[key]}: {', '.join(pairs)}" for key, pairs in groups.items() if pairs)
        lines.append(f"- At {m} min distillation measurably beat the student trained alone for {len(groups['beat'])} "
                     f"of {len(summary)} (teacher kind, student) pair(s). Distillation {said}.")
    return lines + [""]


def best_deployable(summary: pd.DataFrame, rows: pd.DataFrame, label: Callable[[pd.Series], str],
                    limit_ms: float = DEPLOY_MS) -> Optional[Deployable]:
    """(b): the student with the lowest validation RMSE among those under ``limit_ms`` at batch 1 (first wins ties),
    tested against Ridge and persistence patient by patient; None when no student is that fast."""
    candidates = []
    for _, r in summary.iterrows():
        if not r["latency_b1_ms"] < limit_ms:
            continue
        if not any(c[0]["student"] == r["student"] and c[1] == "alone" for c in candidates):  # one alone per student
            candidates.append((r, "alone", r["val_rmse_alone"]))
        candidates.append((r, "distilled", r["val_rmse_distilled"]))
    candidates = [c for c in candidates if pd.notna(c[2])]
    if not candidates:
        return None
    r, variant, val = min(candidates, key=lambda c: c[2])
    kinds = rows["teacher_kind"].fillna("standard") if "teacher_kind" in rows else pd.Series("standard", rows.index)
    mine = rows[(kinds == r["teacher_kind"]) & (rows.apply(label, axis=1) == r["pair"])]
    by_patient = mine.groupby("patient").mean(numeric_only=True)
    column = "baseline_rmse" if variant == "alone" else "distilled_rmse"
    tests = {(ref, m): paired_test(by_patient[f"{column}_{m}"]
                                   - by_patient.get(f"{ref}_rmse_{m}", pd.Series(np.nan, by_patient.index)))
             for ref, _ in REFERENCES for m in NAMED_HORIZONS_MIN}
    p_holm = dict(zip(tests, holm([t.p for t in tests.values()])))
    name = (f"{r['student']} trained alone" if variant == "alone"
            else f"{r['student']} distilled from the {r['teacher_kind']} teacher")
    return Deployable(name, r, variant, val, len(candidates), tests, p_holm)


def deployable_answer(best: Optional[Deployable], summary: pd.DataFrame, limit_ms: float = DEPLOY_MS) -> list[str]:
    """(b) in words: the student, why it was chosen, its latency and size, and per horizon its test RMSE against
    Ridge and persistence on the same windows."""
    lines = [f"## The best deployable student (under {limit_ms:g} ms at batch 1) against {RIDGE} and persistence", ""]
    if best is None:
        fastest = summary.loc[summary["latency_b1_ms"].idxmin()] if summary["latency_b1_ms"].notna().any() else None
        return lines + ([f"- No student forecast in under {limit_ms:g} ms at batch 1; the fastest, "
                         f"{fastest['student']}, took {cell(fastest['latency_b1_ms'])} ms ({fastest['latency_from']})."]
                        if fastest is not None else ["- No student latency was recorded."]) + [""]
    r = best.summary_row
    lines.append(f"- **{best.name}**: the lowest validation RMSE ({best.val_rmse:.4f}, scaled units) of the "
                 f"{best.candidates} student(s) under {limit_ms:g} ms; {cell(r['latency_b1_ms'])} ms at batch 1 "
                 f"({r['latency_from']}), INT8 {cell(r['int8_mib'])} MiB.")
    column = "alone_rmse" if best.variant == "alone" else "distilled_rmse"
    for m in NAMED_HORIZONS_MIN:
        parts = []
        for ref, name in REFERENCES:
            t, p = best.tests[(ref, m)], best.p_holm[(ref, m)]
            if not t.n:
                parts.append(f"no {name} figures in these rows")
                continue
            verdict = ("beat" if t.mean_diff < 0 else "lost to") if significant(p) else "could not be told apart from"
            parts.append(f"{verdict} {name} ({cell(r.get(f'{ref}_rmse_{m}'))} mg/dL; difference {t.mean_diff:+.2f}, "
                         f"better on {t.lower} of {t.n} patients, "
                         + ("too few for a test" if pd.isna(p) else f"p = {t.p:.2g}, Holm p = {p:.2g}") + ")")
        lines.append(f"- At {m} min: test RMSE {cell(r[f'{column}_{m}'])} mg/dL on the same test windows; it "
                     + "; it ".join(parts) + ".")
    return lines + ["", f"Paired by patient (each patient's mean over seeds), Wilcoxon signed-rank, Holm-corrected "
                        f"over these {len(best.tests)} tests; a difference counts only below {ALPHA}.", ""]


def teacher_lines(summary: pd.DataFrame) -> list[str]:
    """Each teacher kind's own test accuracy beside Ridge and persistence (means over its pairs' rows)."""
    kinds = summary.groupby("teacher_kind", sort=False)[
        ["teacher_rmse_30", "teacher_rmse_60", "ridge_rmse_30", "ridge_rmse_60", "persistence_rmse_30",
         "persistence_rmse_60"]].mean().reset_index()
    cols = [("teacher_kind", "teacher kind"), ("teacher_rmse_30", "teacher RMSE30"),
            ("teacher_rmse_60", "teacher RMSE60"), ("ridge_rmse_30", f"{RIDGE} RMSE30"),
            ("ridge_rmse_60", f"{RIDGE} RMSE60"), ("persistence_rmse_30", "persistence RMSE30"),
            ("persistence_rmse_60", "persistence RMSE60")]
    lines = ["## Each teacher kind's own accuracy", ""] + table(kinds, cols) + [""]
    if (kinds["teacher_kind"] == "privileged").any():
        lines += ["The privileged teacher also sees the meals, boluses and basal logged within the forecast horizon, "
                  "which no history-only student can: its accuracy is the ceiling a student chases.", ""]
    return lines


def lever_lines(rows: pd.DataFrame, label: Callable[[pd.Series], str]) -> list[str]:
    """Each searched candidate of every (teacher kind, student, seed) with its validation MSE and test RMSE (mean over
    patients), the student alone beside them as (1, 0, 0): what each lever (teacher data, mixup, the teacher's soft
    targets) did on validation, where the choice was made, and on test, which only reports it. Rows written before
    the search was recorded (no ``search_val_mse``) are left out."""
    if "search_val_mse" not in rows:
        return []
    out = []
    for _, group in rows.groupby("config_key", sort=False):
        first = group.iloc[0]
        losses = read_by_label(first["search_val_mse"])
        if losses is None:
            continue
        base = {"teacher_kind": first.get("teacher_kind", "standard"), "pair": label(first), "seed": first["seed"]}
        tests = read_test_rmse(first.get("search_test_rmse"))
        chosen = Candidate(LossWeights(first["alpha"], first["beta"], first["gamma"]),
                           float(first.get("teacher_data") or 0.0), float(first.get("mixup_alpha") or 0.0)).label()
        alone = Candidate(LossWeights(1.0, 0.0, 0.0)).label()  # the baseline's objective: its run stands for it
        out.append({**base, "candidate": "alone (1, 0, 0)", "val": first["baseline_val_mse"],
                    "test_30": group["baseline_rmse_30"].mean(), "test_60": group["baseline_rmse_60"].mean(),
                    "chosen": "yes" if chosen == alone else ""})
        for name, val in losses.items():
            t30, t60 = tests.get(name, (np.nan, np.nan))
            out.append({**base, "candidate": name, "val": float(val), "test_30": t30, "test_60": t60,
                        "chosen": "yes" if name == chosen else ""})
    if not out:
        return []
    cols = [("teacher_kind", "teacher kind"), ("pair", "pair"), ("seed", "seed"), ("candidate", "candidate"),
            ("val", "validation MSE (scaled)"), ("test_30", "test RMSE30"), ("test_60", "test RMSE60"),
            ("chosen", "chosen on validation")]
    frame = pd.DataFrame(out).assign(val=lambda f: f["val"].map(lambda v: f"{v:.4f}"), seed=lambda f: f["seed"].map(str))
    return (["## Each lever on validation and on test", "",
             "Every distilled student the search trained (a: weight of the truth, b: of the teacher's forecasts, g: of "
             "its hidden states; td1: the teacher's forecasts of as many unlabelled windows again; mix0.2: mixup of "
             "windows, alpha 0.2) beside the student alone. Validation chose; the test figures (mean over patients) "
             "only report what each lever did.", ""] + table(frame, cols) + [""])


def standard_markdown(summary: pd.DataFrame, rows: Optional[pd.DataFrame] = None,
                      label: Optional[Callable[[pd.Series], str]] = None) -> str:
    """The report below its title: (a), (b) when the per-patient ``rows`` (and the ``label`` that named the pairs)
    are given, the teachers' accuracy, then the table of pairs and each pair's verdicts."""
    lines = kind_answer(summary)
    if rows is not None and label is not None:
        lines += deployable_answer(best_deployable(summary, rows, label), summary)
    lines += teacher_lines(summary) + details_markdown(summary)
    if rows is not None and label is not None:
        lines += [""] + lever_lines(rows, label)
    return "\n".join(lines).rstrip() + "\n"
