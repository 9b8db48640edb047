"""The standard distillation report's summary: one row per (teacher kind, student) pair over its patients and seeds,
and the plain statements of each: did distillation beat training the student alone, and did the teacher beat
persistence. The answers the report opens with are built from these rows (``distillation/answers.py``).

"Beat" is paired by patient: each patient's baseline and distilled student are tested on the same windows, after
training from the same seed on the same windows, so the comparison is the per-patient difference (distilled -
alone RMSE, averaged over the seeds; negative = distillation better), counted as wins, averaged, and tested with
the paired test of ``utils.stats`` (two-sided Wilcoxon signed-rank across patients, with its rules for too few
pairs and for no difference at all). Patients, not (patient, seed) rows, are the unit: the seeds of one patient are
not independent of each other, and with pooled training one seed's patients share one model. The report tests every
pair at 30 and 60 min, so those p-values are Holm-corrected together (``p_holm_<m>`` beside the raw ``p_raw_<m>``),
and only a corrected p below 0.05 calls distillation better or worse. The ``_sd`` columns are the standard deviation
over seeds of the mean over patients (how much a rerun moves the headline figure).

Each row leads with what a reader compares: test RMSE of the student alone and distilled, of Ridge and persistence
on the same windows, the two p-values, the student's batch-1 latency and INT8 size as deployed (INT8 ONNX Runtime;
PyTorch float32 where no INT8 figure was taken, ``latency_from`` says which) and the validation RMSE of both
students (scaled units: what the deployable student is chosen on).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from utils.cgm import NAMED_HORIZONS_MIN
from utils.errors import LLMTimeError
from utils.stats import ALPHA, MIN_PAIRS, holm, paired_test, significant

# summary column stem -> per-patient row column stem, each at 30 and 60 min
HEADLINE = {"alone_rmse": "baseline_rmse", "distilled_rmse": "distilled_rmse", "ridge_rmse": "ridge_rmse",
            "persistence_rmse": "persistence_rmse"}
MEANS = ["teacher_rmse_30", "teacher_rmse_60", "retention_30", "retention_60", "agreement_30", "agreement_60",
         "speedup_b1", "student_params_total", "teacher_params_total", "size_reduction_pct",
         "student_latency_b1_ms", "int8_max_abs_diff_mgdl", "onnx_size_mb", "int8_float_ops", "int8_ops",
         "cpu_count"]  # INT8 size and latency: int8_mib and latency_b1_ms (``deployed``)
# A pair's rows may have been timed under different loads (seeds trained in different sessions): its summary keeps the
# busiest, so a mean over one quiet and one loaded measurement cannot pass for a quiet one.
WORST = ["load_average_1min"]
WITH_SD = {"teacher_rmse": "teacher_rmse", "alone_rmse": "baseline_rmse", "distilled_rmse": "distilled_rmse"}
INT8_LATENCY, FLOAT_LATENCY = "INT8 ONNX Runtime", "PyTorch float32"
PHASE_NAMES = {"teacher": "teacher", "baseline": "student alone", "distilled": "distilled student"}


def summarise_standard(rows: pd.DataFrame, label: Callable[[pd.Series], str],
                       student: Callable[[pd.Series], str] = lambda r: str(r["student"])) -> pd.DataFrame:
    """One row per (teacher kind, pair): means (and sd of the RMSEs) over its (patient, seed) runs, the run count,
    the paired distilled-vs-alone and teacher-vs-persistence figures at 30 and 60 min, the distillation p-values of
    every pair Holm-corrected together. ``label`` names a pair from a row, ``student`` its student; rows without a
    ``teacher_kind`` (written before it) are the standard kind's."""
    if rows.empty:
        raise LLMTimeError("no pipeline rows to summarise")
    kinds = rows["teacher_kind"].fillna("standard") if "teacher_kind" in rows else "standard"
    rows = rows.assign(pair=rows.apply(label, axis=1), student_label=rows.apply(student, axis=1), teacher_kind=kinds)
    out = [pair_record(group) for _, group in rows.groupby(["teacher_kind", "pair"], sort=False)]
    tests = [(rec, m) for rec in out for m in NAMED_HORIZONS_MIN]
    for (rec, m), p in zip(tests, holm([rec[f"p_raw_{m}"] for rec, m in tests])):
        rec[f"p_holm_{m}"] = p
    return pd.DataFrame(out)


def pair_record(group: pd.DataFrame) -> dict[str, Any]:
    """The summary row of one (teacher kind, pair): the headline columns first, then the detail."""
    first = group.iloc[0]
    rec: dict[str, Any] = {"teacher_kind": first["teacher_kind"], "student": first["student_label"],
                           "pair": first["pair"], "runs": len(group),
                           "patients": " ".join(sorted(set(map(str, group["patient"])))),
                           "seeds": " ".join(map(str, sorted(set(group["seed"]))))}
    for stem, column in HEADLINE.items():
        for m in NAMED_HORIZONS_MIN:
            rec[f"{stem}_{m}"] = _mean(group, f"{column}_{m}")
    by_patient = group.groupby("patient").mean(numeric_only=True)
    tests = {m: paired_test(by_patient[f"distilled_rmse_{m}"] - by_patient[f"baseline_rmse_{m}"])
             for m in NAMED_HORIZONS_MIN}
    rec.update({f"p_raw_{m}": t.p for m, t in tests.items()})
    rec.update({f"p_holm_{m}": math.nan for m in NAMED_HORIZONS_MIN})  # set over every pair's tests
    rec.update(deployed(group))
    rec.update({col: _mean(group, col) for col in MEANS})
    rec.update({col: group[col].max() if col in group else math.nan for col in WORST})
    by_seed = group.groupby("seed")
    for stem, column in WITH_SD.items():
        for m in NAMED_HORIZONS_MIN:
            sd = by_seed[f"{column}_{m}"].mean().std(ddof=1) if by_seed.ngroups > 1 else math.nan
            rec[f"{stem}_{m}_sd"] = round(float(sd), 4)
    for m, d in tests.items():
        rec.update({f"distill_wins_{m}": d.lower, f"distill_pairs_{m}": d.n,
                    f"distill_minus_baseline_{m}": round(d.mean_diff, 4)})
        persist = by_patient.get(f"persistence_rmse_{m}", pd.Series(np.nan, index=by_patient.index))
        t = paired_test(by_patient[f"teacher_rmse_{m}"] - persist)
        rec.update({f"teacher_beats_persistence_{m}": t.lower, f"teacher_persistence_pairs_{m}": t.n,
                    f"teacher_minus_persistence_{m}": round(t.mean_diff, 4)})
    pooled = "group" in group  # per-patient rows of pooled runs: one choice per seed
    chosen = group.drop_duplicates(["group", "seed"]) if pooled else group
    rec["chosen_alpha_beta_gamma"] = "; ".join(
        f"{'' if pooled else f'{r.patient}/'}s{r.seed}: {chosen_text(r)}" for r in chosen.itertuples())
    rec.update(capped_runs(chosen))
    rec.update({col: "; ".join(machines(group.get(col))) for col in ("trained_on", "timed_on")})
    return rec


def machines(values: Optional[pd.Series]) -> list[str]:
    """The machines named in a ``trained_on`` or ``timed_on`` column (each cell '; ' between several), sorted; none
    for a column absent or empty (rows finished before the machine was recorded)."""
    cells = values.dropna().astype(str) if values is not None else []
    return sorted({name for cell in cells for name in cell.split("; ")} - {"", "unknown"})


def capped_runs(chosen: pd.DataFrame) -> dict[str, Any]:
    """How many of a pair's runs (teacher, student alone, chosen distilled student; once per seed, the distilled one
    not again when the search chose the student alone) the epoch cap ended while still improving: ``runs_checked``
    runs with a recorded verdict (rows finished before ``<phase>_convergence`` existed have none), ``capped`` of
    them capped, named in ``capped_which`` as 'seed phase'. A capped run's figure would still move with more epochs."""
    checked, unrecorded, capped = 0, 0, []
    for _, r in chosen.iterrows():
        for phase in PHASE_NAMES:
            if phase == "distilled" and r.get("distilled_run") == r.get("baseline_run"):
                continue
            verdict = r.get(f"{phase}_convergence")
            if not isinstance(verdict, str) or verdict == "unknown":
                unrecorded += 1
                continue
            checked += 1
            if verdict == "capped":
                capped.append(f"s{r['seed']} {PHASE_NAMES[phase]}")
    return {"runs_checked": checked, "runs_unrecorded": unrecorded, "capped": len(capped),
            "capped_which": "; ".join(capped)}


def deployed(group: pd.DataFrame) -> dict[str, Any]:
    """The student as a device would run it (batch-1 latency and INT8 size, means over the rows) and the validation
    RMSE of the student alone and distilled (scaled units; each seed's, averaged over the seeds)."""
    int8 = group.get("int8_latency_b1_ms", pd.Series(dtype=float)).dropna()
    latency = float(int8.mean()) if len(int8) else _mean(group, "student_latency_b1_ms")
    by_seed = group.groupby("seed")
    val = {role: round(float(np.sqrt(by_seed[f"{role}_val_mse"].mean()).mean()), 6)
           if f"{role}_val_mse" in group else math.nan for role in ("baseline", "distilled")}
    return {"latency_b1_ms": round(latency, 3), "latency_from": INT8_LATENCY if len(int8) else FLOAT_LATENCY,
            "int8_mib": _mean(group, "int8_size_mb"), "val_rmse_alone": val["baseline"],
            "val_rmse_distilled": val["distilled"]}


def _mean(group: pd.DataFrame, col: str) -> float:
    return round(float(group[col].mean()), 4) if col in group else math.nan


def chosen_text(r: Any) -> str:
    """The candidate a row's search chose: 'alpha/beta/gamma', with the teacher-data share and mixup alpha where
    used."""
    share, mix = (getattr(r, name, 0.0) for name in ("teacher_data", "mixup_alpha"))
    share, mix = (0.0 if pd.isna(v) else v for v in (share, mix))  # rows written before the two levers
    return (f"{r.alpha:g}/{r.beta:g}/{r.gamma:g}" + (f", teacher data {share:g}x" if share else "")
            + (f", mixup {mix:g}" if mix else ""))


def family_size(summary: pd.DataFrame) -> int:
    """How many distillation tests the report states (and Holm corrects together): every tested pair and horizon."""
    return int(sum(summary[f"p_raw_{m}"].notna().sum() for m in NAMED_HORIZONS_MIN))


def outcome(r: pd.Series, m: int) -> str:
    """Distilled against the student alone at ``m`` min: 'beat' or 'worse' at a Holm-corrected Wilcoxon p below
    ALPHA across patients, 'level' otherwise, 'untested' with too few patients for the test."""
    p, diff = r[f"p_holm_{m}"], r[f"distill_minus_baseline_{m}"]
    if pd.isna(p):
        return "untested"
    if not significant(p):
        return "level"
    return "beat" if diff < 0 else "worse"


def no_distillation_chosen(r: pd.Series) -> bool:
    """Whether validation chose (1, 0, 0), the student's own objective, for every seed of the pair."""
    chosen = str(r.get("chosen_alpha_beta_gamma", ""))
    return chosen not in ("", "nan") and all(part.split(": ")[-1] == "1/0/0" for part in chosen.split("; "))


def pair_name(r: pd.Series) -> str:
    """A summary row's name in the report: the pair, after its teacher kind."""
    return f"{r['teacher_kind']} teacher: {r['pair']}"


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
                f"Wilcoxon p = {r[f'p_raw_{m}']:.3g} (Holm-corrected over the report's {tests} tests: "
                f"{r[f'p_holm_{m}']:.3g})")
        lines.append(f"{m} min: distillation {verdict} training the student alone: "
                     f"better on {wins} of {n} patients (each patient's mean over seeds), mean difference "
                     f"{diff:+.2f} mg/dL (distilled - alone), {test}"
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


def details_markdown(summary: pd.DataFrame) -> list[str]:
    """The table of pairs, how busy the machine was when speed was measured and, per pair, its verdicts."""
    cols = [("teacher_kind", "teacher kind"), ("pair", "pair"), ("runs", "runs"),
            ("teacher_rmse_30", "teacher RMSE30"), ("alone_rmse_30", "alone RMSE30"),
            ("distilled_rmse_30", "distilled RMSE30"), ("ridge_rmse_30", "Ridge RMSE30"),
            ("persistence_rmse_30", "persistence RMSE30"), ("alone_rmse_60", "alone RMSE60"),
            ("distilled_rmse_60", "distilled RMSE60"), ("ridge_rmse_60", "Ridge RMSE60"),
            ("persistence_rmse_60", "persistence RMSE60"), ("retention_30", "retention30"),
            ("agreement_30", "agree30 %"), ("speedup_b1", "speed-up (b1)"), ("size_reduction_pct", "size -%"),
            ("onnx_size_mb", "ONNX MiB"), ("int8_mib", "INT8 MiB"), ("latency_b1_ms", "ms (b1)"),
            ("int8_max_abs_diff_mgdl", "INT8 max |Δ| mg/dL"), ("int8_kept_float", "INT8 ops left float"),
            ("capped_of", "runs capped")]
    shown = summary.assign(capped_of=[capped_cell(r) for _, r in summary.iterrows()], int8_kept_float=[
        f"{kept:.3g} of {ops:.3g}" if pd.notna(kept) and pd.notna(ops) else None  # means over seeds: "7.67 of 12"
        for kept, ops in zip(summary["int8_float_ops"], summary["int8_ops"])])
    lines = table(shown, cols) + [""]
    load, cores = summary["load_average_1min"].dropna(), summary["cpu_count"].dropna()
    if len(load) and len(cores):
        busy = load.max() > cores.min()
        lines += [f"Speed was measured with a 1-minute load average of {load.min():.1f}-{load.max():.1f} on "
                  f"{cores.min():.0f} CPU cores" + (": other jobs shared the CPU, so the latencies and the speed-ups "
                  "built from them are noisy and only indicative; time them on an idle machine before quoting them."
                  if busy else "."), ""]
    lines += machine_lines(summary)
    for _, r in summary.iterrows():
        lines.append(f"### {pair_name(r)} (patients {r['patients']}; seeds {r['seeds']})")
        chosen = str(r.get("chosen_alpha_beta_gamma", ""))
        if chosen and chosen != "nan":
            lines.append(f"- Candidate chosen on validation (alpha/beta/gamma, teacher data, mixup): {chosen}" + (
                ": (1, 0, 0) is the student's own objective, so the search preferred no distillation and the "
                "distilled row is the baseline's run." if no_distillation_chosen(r) else "."))
        lines += [f"- {line}" for line in verdicts(r, family_size(summary))]
        if isinstance(capped_which := r.get("capped_which"), str) and capped_which:
            lines.append(f"- Capped (the epoch cap ended it while validation loss was still falling, so its figure "
                         f"would still move with more epochs): {capped_which}.")
        lines.append("")
    if summary["pair"].str.contains(r"\(random\)").any():
        lines.append("Pairs marked (random) use an untrained student backbone: they measure the architecture, not a "
                     "pretrained language model.")
    return lines


def machine_lines(summary: pd.DataFrame) -> list[str]:
    """Which machines trained the rows and took their latencies: float results differ in the last digits from one
    CPU to another, and speed 2-3x, so a report whose rows span sessions says so."""
    named = {col: machines(summary.get(col)) for col in ("trained_on", "timed_on")}
    if not named["trained_on"] and not named["timed_on"]:
        return []
    unnamed = int((summary.get("trained_on", pd.Series(dtype=str)).fillna("") == "").sum())  # machines() joined
    return [f"Trained on {', '.join(named['trained_on']) or 'machines not recorded'}; latencies taken on "
            f"{', '.join(named['timed_on']) or 'machines not recorded'}"
            + (f" ({unnamed} pair(s) only have rows finished before the machine was recorded)" if unnamed else "")
            + ".", ""]


def capped_cell(r: pd.Series) -> str:
    """'1 of 9': the pair's capped runs of those with a recorded verdict, and how many have none ('not recorded':
    rows finished before the verdict was kept)."""
    checked, missing = r.get("runs_checked"), r.get("runs_unrecorded")
    if checked is None or pd.isna(checked):
        return "-"
    if not checked:
        return "not recorded"
    return f"{int(r['capped'])} of {int(checked)}" + (f" ({int(missing)} not recorded)" if missing else "")


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
