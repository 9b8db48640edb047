"""The standard distillation report's summary: one row per teacher/student pair over its patients and seeds, and the
plain statements the report exists for: did distillation beat training the student alone, and did the teacher beat
persistence.

"Beat" is paired by patient: each patient's baseline and distilled student are tested on the same windows, after
training from the same seed on the same windows, so the comparison is the per-patient difference (distilled -
baseline RMSE, averaged over the seeds; negative = distillation better), counted as wins, averaged, and tested with
the paired test of ``utils.stats`` (two-sided Wilcoxon signed-rank across patients, with its rules for too few
pairs and for no difference at all). Patients, not (patient, seed) rows, are the unit: the seeds of one patient are
not independent of each other, and with pooled training one seed's patients share one model. The report tests every
pair at 30 and 60 min, so those p-values are Holm-corrected together (``distill_p_holm_<m>`` beside the raw
``distill_wilcoxon_p_<m>``), and only a corrected p below 0.05 calls distillation better or worse. The ``_sd``
columns are the standard deviation over seeds of the mean over patients (how much a rerun moves the headline figure).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from utils.cgm import NAMED_HORIZONS_MIN
from utils.errors import LLMTimeError
from utils.stats import ALPHA, MIN_PAIRS, holm, paired_test, significant

PAIR_KEYS = ["teacher", "student", "teacher_layers", "student_layers", "teacher_weights", "student_weights"]
MEANS = ["teacher_rmse_30", "baseline_rmse_30", "distilled_rmse_30", "persistence_rmse_30",
         "teacher_rmse_60", "baseline_rmse_60", "distilled_rmse_60", "persistence_rmse_60",
         "retention_30", "retention_60", "agreement_30", "agreement_60", "speedup_b1",
         "student_params_total", "teacher_params_total", "size_reduction_pct",
         "int8_size_mb", "int8_latency_b1_ms", "int8_max_abs_diff_mgdl", "onnx_size_mb", "int8_float_ops",
         "int8_ops", "load_average_1min", "cpu_count"]
WITH_SD = ("teacher_rmse_30", "baseline_rmse_30", "distilled_rmse_30", "teacher_rmse_60", "baseline_rmse_60",
           "distilled_rmse_60")


def summarise_standard(rows: pd.DataFrame, label) -> pd.DataFrame:
    """One row per pair: means (and sd of the RMSEs) over its (patient, seed) runs, the run count, and the paired
    distilled-vs-baseline and teacher-vs-persistence figures at 30 and 60 min, the distillation p-values of every
    pair Holm-corrected together. ``label`` names a pair from a row."""
    if rows.empty:
        raise LLMTimeError("no pipeline rows to summarise")
    rows = rows.assign(pair=rows.apply(label, axis=1))
    out = []
    for pair, group in rows.groupby("pair", sort=False):
        rec: dict[str, Any] = {"pair": pair, "runs": len(group),
                               "patients": " ".join(sorted(set(map(str, group["patient"])))),
                               "seeds": " ".join(map(str, sorted(set(group["seed"]))))}
        for col in MEANS:
            rec[col] = round(float(group[col].mean()), 4) if col in group else math.nan
        by_seed = group.groupby("seed")
        for col in WITH_SD:
            rec[f"{col}_sd"] = round(float(by_seed[col].mean().std(ddof=1)), 4) if by_seed.ngroups > 1 else math.nan
        by_patient = group.groupby("patient").mean(numeric_only=True)
        for m in NAMED_HORIZONS_MIN:
            d = paired_test(by_patient[f"distilled_rmse_{m}"] - by_patient[f"baseline_rmse_{m}"])
            rec.update({f"distill_wins_{m}": d.lower, f"distill_pairs_{m}": d.n,
                        f"distill_minus_baseline_{m}": round(d.mean_diff, 4), f"distill_wilcoxon_p_{m}": d.p,
                        f"distill_p_holm_{m}": math.nan})  # set below, over every pair's test
            persist = by_patient.get(f"persistence_rmse_{m}", pd.Series(np.nan, index=by_patient.index))
            t = paired_test(by_patient[f"teacher_rmse_{m}"] - persist)
            rec.update({f"teacher_beats_persistence_{m}": t.lower, f"teacher_persistence_pairs_{m}": t.n,
                        f"teacher_minus_persistence_{m}": round(t.mean_diff, 4)})
        pooled = "group" in group  # per-patient rows of pooled runs: one choice per seed
        chosen = group.drop_duplicates(["group", "seed"]) if pooled else group
        rec["chosen_alpha_beta_gamma"] = "; ".join(
            f"{'' if pooled else f'{r.patient}/'}s{r.seed}: {r.alpha:g}/{r.beta:g}/{r.gamma:g}"
            for r in chosen.itertuples())
        out.append(rec)
    tests = [(rec, m) for rec in out for m in NAMED_HORIZONS_MIN]
    for (rec, m), p in zip(tests, holm([rec[f"distill_wilcoxon_p_{m}"] for rec, m in tests])):
        rec[f"distill_p_holm_{m}"] = p
    return pd.DataFrame(out)


def family_size(summary: pd.DataFrame) -> int:
    """How many distillation tests the report states (and Holm corrects together): every tested pair and horizon."""
    return int(sum(summary[f"distill_wilcoxon_p_{m}"].notna().sum() for m in NAMED_HORIZONS_MIN))


def outcome(r: pd.Series, m: int) -> str:
    """Distilled against the student alone at ``m`` min: 'beat' or 'worse' at a Holm-corrected Wilcoxon p below
    ALPHA across patients, 'level' otherwise, 'untested' with too few patients for the test."""
    p, diff = r[f"distill_p_holm_{m}"], r[f"distill_minus_baseline_{m}"]
    if pd.isna(p):
        return "untested"
    if not significant(p):
        return "level"
    return "beat" if diff < 0 else "worse"


def verdicts(r: pd.Series, tests: int) -> list[str]:
    """The plain sentences of one summary row: distillation against the student alone (``tests``: how many the
    report corrects together), the teacher against persistence, at 30 and 60 min."""
    lines = []
    for m in NAMED_HORIZONS_MIN:
        n, wins, diff = r[f"distill_pairs_{m}"], r[f"distill_wins_{m}"], r[f"distill_minus_baseline_{m}"]
        result = outcome(r, m)
        verdict = {"untested": "beat" if diff < 0 and wins > n / 2 else "did not beat",  # the direction alone
                   "level": f"cannot be told apart (Holm-corrected p >= {ALPHA}) from", "beat": "beat",
                   "worse": "was significantly WORSE than"}[result]
        test = (f"too few pairs for a Wilcoxon test (< {MIN_PAIRS})" if result == "untested" else
                f"Wilcoxon p = {r[f'distill_wilcoxon_p_{m}']:.3g} (Holm-corrected over the report's {tests} tests: "
                f"{r[f'distill_p_holm_{m}']:.3g})")
        lines.append(f"{m} min: distillation {verdict} training the student alone: "
                     f"better on {wins} of {n} patients (each patient's mean over seeds), mean difference "
                     f"{diff:+.2f} mg/dL (distilled - baseline), {test}"
                     + (f" (significant at {ALPHA})" if result in ("beat", "worse") else "") + ".")
    for m in NAMED_HORIZONS_MIN:
        n, wins, diff = r[f"teacher_persistence_pairs_{m}"], r[f"teacher_beats_persistence_{m}"], \
            r[f"teacher_minus_persistence_{m}"]
        if not n:
            lines.append(f"{m} min: no persistence figures in these rows (written before they were recorded).")
            continue
        lines.append(f"{m} min: the teacher {'beat' if wins == n else 'did NOT always beat'} persistence: better on "
                     f"{wins} of {n} patients, mean difference {diff:+.2f} mg/dL (teacher - persistence).")
    return lines


def no_distillation_chosen(r: pd.Series) -> bool:
    """Whether validation chose (1, 0, 0), the student's own objective, for every seed of the pair."""
    chosen = str(r.get("chosen_alpha_beta_gamma", ""))
    return chosen not in ("", "nan") and all(part.split(": ")[-1] == "1/0/0" for part in chosen.split("; "))


def answer(summary: pd.DataFrame) -> list[str]:
    """The report's question answered first, per horizon: for which pairs distillation measurably beat training the
    student alone (Holm-corrected Wilcoxon p < ALPHA across patients), lost to it, could not be told apart from it, or
    was not tried."""
    lines = ["## Did distillation beat training the student alone?", ""]
    for m in NAMED_HORIZONS_MIN:
        verbs = {"beat": "beat it", "worse": "lost to it", "level": "could not be told apart from it",
                 "untested": "was not tested (too few patients)", "chosen": "was not chosen"}
        groups: dict[str, list[str]] = {key: [] for key in verbs}
        for _, r in summary.iterrows():
            p, p_holm = r[f"distill_wilcoxon_p_{m}"], r[f"distill_p_holm_{m}"]
            result = "chosen" if no_distillation_chosen(r) else outcome(r, m)
            if result == "chosen":
                groups[result].append(f"{r['pair']} (validation chose (1, 0, 0) in every seed)")
            else:
                groups[result].append(f"{r['pair']} ({r[f'distill_minus_baseline_{m}']:+.2f} mg/dL"
                                      + ("" if result == "untested" else f", p = {p:.2g}, Holm p = {p_holm:.2g}")
                                      + ")")
        said = "; ".join(f"{verbs[key]}: {', '.join(pairs)}" for key, pairs in groups.items() if pairs)
        beat = len(groups["beat"])
        lines.append(f"- At {m} min distillation measurably beat the student trained alone for {beat} of "
                     f"{len(summary)} pair(s). Distillation {said}.")
    return lines + [""]


def standard_markdown(summary: pd.DataFrame) -> str:
    """The answer, the table of pairs and, per pair, the verdict sentences."""
    cols = [("pair", "pair"), ("runs", "runs"), ("teacher_rmse_30", "teacher RMSE30"),
            ("baseline_rmse_30", "baseline RMSE30"), ("distilled_rmse_30", "distilled RMSE30"),
            ("persistence_rmse_30", "persistence RMSE30"), ("distilled_rmse_60", "distilled RMSE60"),
            ("persistence_rmse_60", "persistence RMSE60"), ("retention_30", "retention30"),
            ("agreement_30", "agree30 %"), ("speedup_b1", "speed-up (b1)"), ("size_reduction_pct", "size -%"),
            ("onnx_size_mb", "ONNX MiB"), ("int8_size_mb", "INT8 MiB"), ("int8_latency_b1_ms", "INT8 ms (b1)"),
            ("int8_max_abs_diff_mgdl", "INT8 max |Δ| mg/dL"), ("int8_kept_float", "INT8 ops left float")]
    shown = summary.assign(int8_kept_float=[
        f"{kept:.3g} of {ops:.3g}" if pd.notna(kept) and pd.notna(ops) else None  # means over seeds: "7.67 of 12"
        for kept, ops in zip(summary.get("int8_float_ops", [None] * len(summary)),
                             summary.get("int8_ops", [None] * len(summary)))])
    lines = answer(summary) + table(shown, cols)
    lines.append("")
    load = summary.get("load_average_1min", pd.Series(dtype=float)).dropna()
    cores = summary.get("cpu_count", pd.Series(dtype=float)).dropna()
    if len(load) and len(cores):
        busy = load.max() > cores.min()
        lines += [f"Speed was measured with a 1-minute load average of {load.min():.1f}-{load.max():.1f} on "
                  f"{cores.min():.0f} CPU cores" + (": other jobs shared the CPU, so the latencies and the speed-ups "
                  "built from them are noisy and only indicative; time them on an idle machine before quoting them."
                  if busy else "."), ""]
    for _, r in summary.iterrows():
        lines.append(f"### {r['pair']} (patients {r['patients']}; seeds {r['seeds']})")
        chosen = str(r.get("chosen_alpha_beta_gamma", ""))
        if chosen and chosen != "nan":
            lines.append(f"- Loss weights (alpha/beta/gamma) chosen on validation: {chosen}" + (
                ": (1, 0, 0) is the student's own objective, so the search preferred no distillation and the "
                "distilled row is the baseline's run." if no_distillation_chosen(r) else "."))
        lines += [f"- {line}" for line in verdicts(r, family_size(summary))]
        lines.append("")
    if summary["pair"].str.contains(r"\(random\)").any():
        lines.append("Pairs marked (random) use an untrained student backbone: they measure the architecture, not a "
                     "pretrained language model.")
    return "\n".join(lines).rstrip() + "\n"


def cell(v: Any) -> str:
    """One Markdown table cell: '-' for missing, thousands separators for large numbers, two decimals otherwise."""
    if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.2f}"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return str(v)


def table(rows: pd.DataFrame, cols: list[tuple[str, str]]) -> list[str]:
    """A Markdown table of ``rows``: one (column, heading) pair per table column."""
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    return lines + ["| " + " | ".join(cell(r.get(c)) for c, _ in cols) + " |" for _, r in rows.iterrows()]