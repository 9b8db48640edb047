"""Compare teacher -> student pairs: run the distillation pipeline for each pair and summarise the trade-offs.

    python -m scripts.distillation_comparison --mode quick --patients 1001 --epochs 2
    python -m scripts.distillation_comparison --custom_pairs "BERT,TinyBERT" "MiniLM,MiniLM:2" --llm-weights random
    python -m scripts.distillation_comparison --summarize docs/results/distillation_minilm.csv
    python -m scripts.distillation_comparison --standard --plan    # the standard report's runs and time

Every pair goes through ``distillation.pipeline.run_pipeline`` with the same settings, so each row of the pairs CSV
is a pipeline row. A pair that fails (weights absent, a run that diverges) does not stop the comparison: it becomes a
row of ``<csv stem>_failed.csv`` with its one-line reason, the next pair runs, and the exit status is 1.
The summary (CSV, Markdown, printed) averages each pair over its patients and names the best
overall pair (lowest distilled RMSE at 30 min), the fastest (lowest student CPU latency at batch 1), the smallest
(fewest student parameters) and the best retention (teacher RMSE / distilled RMSE at 30 min); a PNG plots RMSE
against latency. Finished pair/patient rows are skipped and shared teachers are trained once, so a long comparison
can be interrupted and restarted with the same command.

``--standard`` runs the fixed standard report of ``distillation/standard.py`` (a MiniLM teacher in three kinds:
standard, privileged, on a ridge base; four students, each alone and distilled; 12 patients pooled x 3 seeds; a
Ridge (MS) reference per seed) into ``checkpoints/distill_standard/`` (``--out`` and ``--csv`` put it elsewhere: the
published report's command is in ``docs/distillation.md``) and summarises it with the answers of
``distillation/answers.py`` and the paired verdicts of ``distillation/summary.py``; ``--plan`` prints its runs and a
time estimate instead, ``--report`` rewrites its
summary alone, and ``--retime`` measures its finished rows' latencies again (``distillation/retime.py``), best on an
otherwise idle machine once every row is in.

``--paths ROW=DIR`` points a backbone row at a local save_pretrained folder (weights and tokenizer), for rows whose
real weights are not in the Hugging Face cache; the CSV records the folder as the weights source.

The command line is ``scripts/distillation_comparison.py``: it builds the pairs' ``PipelineConfig`` and, with
``--standard``, a ``StandardRun``, so nothing here reads argparse.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from configs.flags import check_config, flag
from distillation.config import PipelineConfig, lm_free_model
from distillation.pipeline import run_pipeline
from distillation.references import ridge_reference
from distillation.retime import retime_csv
from distillation.standard import (LEVER_SEED, STANDARD_SEEDS, TEACHER_KINDS, kind_of, pair_of, plan_text,
                                   resolve_levers, standard_kinds, standard_seeds, write_standard_reports)
from distillation.summary import cell, table
from models.backbones import BACKBONES, resolve_backbone
from utils.errors import LLMTimeError
from utils.io import atomic_path, write_text
from utils.plots import plot_scatter

QUICK = (("BERT", "BERT-tiny"), ("BERT", "TinyBERT"), ("DistilBERT", "MiniLM"))
BALANCED = (
    ("BERT", "TinyBERT"), ("ALBERT", "BERT-tiny"), ("BERT", "MiniLM"), ("BERT", "BERT-tiny"),
    ("DistilBERT", "BERT-tiny"), ("DistilBERT", "MobileBERT"), ("ALBERT", "MobileBERT"), ("GPT2", "TinyBERT"),
)
MODES = ("quick", "balanced", "all")
FAILED_COLUMNS = ["teacher", "student", "teacher_layers", "student_layers", "patients", "reason"]
PAIR_COLUMNS = ["teacher", "student", "teacher_layers", "student_layers", "teacher_weights", "student_weights"]
SUMMARY_METRICS = [
    "teacher_rmse_30", "baseline_rmse_30", "distilled_rmse_30", "teacher_rmse_60", "baseline_rmse_60",
    "distilled_rmse_60", "distilled_clarke_ab_30", "retention_30", "retention_60", "agreement_30", "agreement_60",
    "student_params_total", "student_size_mb", "teacher_params_total", "teacher_latency_b1_ms",
    "student_latency_b1_ms", "speedup_b1", "teacher_latency_b64_ms", "student_latency_b64_ms", "speedup_b64",
]


Pair = tuple[str, Optional[int], str, Optional[int]]  # teacher row, teacher layers, student row, student layers


def all_pairs() -> list[tuple[str, str]]:
    """Every teacher x student combination the backbone table marks (a row never distils into itself): the guide's
    4 teachers x 4 students, 16 pairs."""
    return [(t.name, s.name) for t in BACKBONES if t.teacher for s in BACKBONES if s.student and s is not t]


def _member(text: str) -> tuple[str, Optional[int]]:
    """'MiniLM' -> ('MiniLM', None); 'MiniLM:2' -> ('MiniLM', 2): a row, optionally cut to its first layers; 'mlp'
    -> ('MLP', None): a model without a language model, as a student."""
    name, _, layers = text.strip().partition(":")
    if layers and not layers.isdigit():
        raise LLMTimeError(f"{text!r}: write ROW or ROW:LAYERS (e.g. MiniLM:2)")
    lm_free = lm_free_model(name)
    if lm_free is not None and not layers:  # a student without a language model (the pipeline checks the role)
        return lm_free, None
    return resolve_backbone(name).name, int(layers) if layers else None


def parse_pairs(mode: Optional[str], custom: Optional[Sequence[str]]) -> list[Pair]:
    if custom:
        pairs = []
        for item in custom:
            parts = item.split(",")
            if len(parts) != 2:
                raise LLMTimeError(f"--custom_pairs item {item!r} is not 'TEACHER,STUDENT'")
            (t, tl), (s, sl) = _member(parts[0]), _member(parts[1])
            pairs.append((t, tl, s, sl))
        return pairs
    named = {"quick": QUICK, "balanced": BALANCED, "all": all_pairs()}[mode or "quick"]
    return [(t, None, s, None) for t, s in named]


def parse_paths(items: Optional[Sequence[str]]) -> dict[str, str]:
    """['BERT=/weights/bert', ...] -> {'BERT': '/weights/bert'} keyed by canonical row name."""
    paths = {}
    for item in items or ():
        name, sep, folder = item.partition("=")
        if not sep or not folder:
            raise LLMTimeError(f"--paths item {item!r} is not ROW=DIR")
        if not Path(folder).is_dir():
            raise LLMTimeError(f"--paths {item}: {folder} is not a folder")
        paths[resolve_backbone(name).name] = folder
    return paths


def pair_config(pair: Pair, shared: PipelineConfig, paths: dict[str, str]) -> PipelineConfig:
    """One pair's pipeline settings: ``shared`` (what every pair shares: the flags, the epoch budgets, the CSV) with
    the pair's rows, cuts and local folders, held to the fields' declarations."""
    teacher, t_layers, student, s_layers = pair
    cfg = replace(shared, teacher=teacher, student=student, teacher_layers=t_layers, student_layers=s_layers,
                  teacher_path=paths.get(teacher), student_path=paths.get(student))
    check_config(cfg)
    return cfg


def member_label(name: str, layers: int) -> str:
    """A row name, with -L<n> where the loaded backbone has another depth than the table's (a cut or a local copy)."""
    depth = {r.name: r.depth for r in BACKBONES}.get(name)
    return name if depth is None or int(layers) == depth else f"{name}-L{int(layers)}"  # None: no language model


def pair_label(row: pd.Series) -> str:
    """'BERT→TinyBERT', with layer cuts and a (random) mark where either backbone has random weights."""
    random = "random" in (str(row["teacher_weights"]), str(row["student_weights"]))
    return (f"{member_label(row['teacher'], row['teacher_layers'])}→"
            f"{member_label(row['student'], row['student_layers'])}" + (" (random)" if random else ""))


def student_label(row: pd.Series) -> str:
    """'MiniLM-L1', 'BERT-tiny (random)', 'MLP': a row's student, as the standard report's summary names it."""
    return (member_label(row["student"], row["student_layers"])
            + (" (random)" if str(row["student_weights"]) == "random" else ""))


# --- summary -----------------------------------------------------------------------------------------------------


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per pair (means over its patients) with the best overall / fastest / smallest / retention picks."""
    if rows.empty:
        raise LLMTimeError("no pipeline rows to summarise")
    rows = rows.copy()
    rows["pair"] = rows.apply(pair_label, axis=1)
    grouped = rows.groupby(["pair", *PAIR_COLUMNS], sort=False, dropna=False)
    summary = grouped[[c for c in SUMMARY_METRICS if c in rows]].mean(numeric_only=True).round(4).reset_index()
    summary.insert(1, "patients", grouped["patient"].apply(lambda p: " ".join(map(str, p))).to_numpy())
    # chosen weights per patient, not averaged: a mean of 0 and 0.1 was never a candidate
    rows["weights"] = [f"{p}: {a:g}/{b:g}/{g:g}" for p, a, b, g in
                       zip(rows["patient"], rows["alpha"], rows["beta"], rows["gamma"])]
    summary["chosen_alpha_beta_gamma"] = grouped["weights"].apply("; ".join).to_numpy()
    picks = {
        "best overall": summary["distilled_rmse_30"].idxmin(),
        "fastest": summary["student_latency_b1_ms"].idxmin(),
        "smallest": summary["student_params_total"].idxmin(),
        "best retention": summary["retention_30"].idxmax(),
    }
    summary["picks"] = [", ".join(k for k, i in picks.items() if i == j) for j in summary.index]
    return summary


def markdown(summary: pd.DataFrame) -> str:
    """A Markdown table of the pairs plus one line per pick."""
    cols = [("pair", "pair"), ("patients", "patients"), ("teacher_rmse_30", "teacher RMSE30"),
            ("baseline_rmse_30", "baseline RMSE30"), ("distilled_rmse_30", "distilled RMSE30"),
            ("distilled_rmse_60", "distilled RMSE60"), ("retention_30", "retention30"),
            ("agreement_30", "agree30 %"), ("student_params_total", "student params"),
            ("student_latency_b1_ms", "student ms (b1)"), ("speedup_b1", "speed-up (b1)"),
            ("chosen_alpha_beta_gamma", "chosen α/β/γ"), ("picks", "picks")]
    lines = table(summary, cols)
    lines.append("")
    for pick, key, unit in (("best overall", "distilled_rmse_30", "mg/dL distilled RMSE30"),
                            ("fastest", "student_latency_b1_ms", "ms per window at batch 1"),
                            ("smallest", "student_params_total", "student parameters"),
                            ("best retention", "retention_30", "teacher/distilled RMSE30")):
        r = summary[summary["picks"].str.contains(pick)].iloc[0]
        lines.append(f"- **{pick.capitalize()}**: {r['pair']} ({cell(r[key])} {unit})")
    if summary["pair"].str.contains(r"\(random\)").any():
        lines.append("- Pairs marked (random) use untrained backbone weights: they measure the architecture, "
                     "not a pretrained language model.")
    return "\n".join(lines) + "\n"


def failed_path(rows_csv: Path) -> Path:
    """Where the pairs that failed in the last comparison run are listed, next to the pairs CSV."""
    return rows_csv.with_name(f"{rows_csv.stem}_failed.csv")


def write_failures(rows_csv: Path, failures: list[dict[str, Any]]) -> None:
    """The last run's failed pairs, one row each with its reason; none failed: no file (an old one goes)."""
    path = failed_path(rows_csv)
    if not failures:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pd.DataFrame(failures, columns=FAILED_COLUMNS).to_csv(tmp, index=False)


def run_pairs(configs: Sequence[PipelineConfig], first: int = 1, total: Optional[int] = None) -> list[dict[str, Any]]:
    """Run every pair; a pair that fails is kept with its one-line reason and the next one runs. ``first`` and
    ``total`` number the pairs in the progress lines when they are part of a longer list."""
    failures = []
    for k, c in enumerate(configs, first):
        kind = " (privileged)" if c.teacher_view == "privileged" else ""
        kind += " (on ridge)" if c.teacher_base == "ridge" else ""
        # named as the plan names it: MiniLM→MiniLM-L1
        print(f"=== pair {k}/{total or len(configs)}: {pair_of(c)}{kind}"
              + (f" (seed {c.train.seed})" if total else ""), flush=True)
        try:
            run_pipeline(c)
        except (LLMTimeError, RuntimeError) as err:  # user-side (weights absent) or a run that broke (diverged, OOM)
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            print(f"pair {c.teacher} -> {c.student} FAILED: {reason}", file=sys.stderr, flush=True)
            failures.append({"teacher": c.teacher, "student": c.student, "teacher_layers": c.teacher_layers,
                             "student_layers": c.student_layers, "patients": " ".join(c.data.patients or ["all"]),
                             "reason": reason})
    return failures


def write_reports(rows_csv: Path) -> tuple[pd.DataFrame, str]:
    """Summary CSV, Markdown and the RMSE-vs-latency chart next to the pairs CSV; returns (summary, markdown).

    Pairs of the last run that failed (``<stem>_failed.csv``) are listed under the table with their reasons."""
    failed = pd.read_csv(failed_path(rows_csv)) if failed_path(rows_csv).is_file() else None
    if not rows_csv.is_file() or not rows_csv.stat().st_size:
        if failed is not None:
            first = failed.iloc[0]
            raise LLMTimeError(f"every pair failed ({failed_path(rows_csv)}); first, {first['teacher']} -> "
                               f"{first['student']}: {first['reason']}")
        raise LLMTimeError(f"{rows_csv} does not exist: run the comparison (or the pipeline) first")
    rows = pd.read_csv(rows_csv, dtype={"patient": str})
    summary = summarise(rows)
    stem = rows_csv.with_suffix("")
    with atomic_path(f"{stem}_summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    text = markdown(summary)
    if failed is not None:
        text += "".join(f"- **Failed**: {r.teacher}→{r.student}: {r.reason}\n" for r in failed.itertuples())
    write_text(f"{stem}_summary.md", text)
    teachers = rows.groupby(["teacher", "teacher_layers", "teacher_weights"], sort=False)[
        ["teacher_latency_b1_ms", "teacher_rmse_30"]].mean().reset_index()
    labels = [pair + " (distilled)" for pair in summary["pair"]]
    labels += [member_label(r.teacher, r.teacher_layers) + (" (random)" if r.teacher_weights == "random" else "")
               + " (teacher)" for r in teachers.itertuples()]
    plot_scatter(
        np.r_[summary["student_latency_b1_ms"], teachers["teacher_latency_b1_ms"]],
        np.r_[summary["distilled_rmse_30"], teachers["teacher_rmse_30"]],
        labels, f"{stem}.png", "Distillation: accuracy against CPU latency",
        "CPU latency per forecast, batch 1 (ms)", "RMSE at 30 min (mg/dL)",
    )
    return summary, text


@dataclass
class StandardRun:
    """What ``--standard`` is asked to do beside its preset's runs (``distillation/standard.py``); each field
    declares its flag."""

    plan: bool = field(default=False, metadata=flag(
        "with --standard: list its runs and a time estimate, train nothing (--dry_run does the same)"))
    report: bool = field(default=False, metadata=flag(
        "with --standard: only rewrite rows.csv and the summary from the pooled rows so far (a run rewrites them "
        "after every pair)"))
    retime: bool = field(default=False, metadata=flag(
        "with --standard: measure the CPU latency and the INT8 student of every finished row again (from its run "
        "folders; run it on an otherwise idle machine, so the speed-ups are comparable), then rewrite the report; "
        "trains nothing"))
    seeds: Optional[str] = field(default=None, metadata=flag(
        f"with --standard: run only these of its seeds (default all: {','.join(map(str, STANDARD_SEEDS))}); each "
        f"seed searches its own loss weights, the later seeds with the teacher data and mixup seed {LEVER_SEED} "
        "chose, so their rows wait for its rows (a process given another seed skips them; same --out and --csv); "
        "with --retime, time only these seeds' rows"))
    kinds: Optional[str] = field(default=None, metadata=flag(
        f"with --standard: run only these teacher kinds (default all: {','.join(TEACHER_KINDS)}), e.g. one kind per "
        "process on a machine with cores to spare: processes that reach the same run (a student's baseline, the "
        "Ridge reference) take turns, the second reusing the first's (same --out and --csv)"))


def run_standard(configs: list[PipelineConfig], run: StandardRun) -> int:
    """``--standard`` over the preset's ``configs`` (``distillation.standard.standard_configs``): its plan
    (``--plan``), its reports alone (``--report``), its rows timed again (``--retime``), or its runs (finished rows
    skipped; ``--seeds`` some seeds only), the reports rewritten after every pair so a stopped run leaves a partial
    report that says what it covers."""
    seeds = standard_seeds(run.seeds)
    kinds = standard_kinds(run.kinds)
    pooled = configs[0].csv_path
    report = functools.partial(write_standard_reports, pooled, pair_label, planned=len(configs),
                               student=student_label)
    if run.plan:
        print(plan_text(configs))
        return 0
    if run.report:
        print(report(), end="")
        return 0
    if run.retime:
        first = configs[0]
        timed = retime_csv(pooled, first.latency_repeats, first.latency_threads, first.int8,
                           seeds if run.seeds is not None else None)
        print(f"timed {timed} row(s) of {pooled} again", flush=True)
        print(report(), end="")
        return 0

    failures: list[dict[str, Any]] = []
    referenced: set[int] = set()
    waiting = 0
    for k, cfg in enumerate(configs, 1):  # seed-major: a later seed's row comes after the first seed's it waits for
        if cfg.train.seed not in seeds or kind_of(cfg) not in kinds:
            continue
        ready = resolve_levers(cfg, configs)
        if ready is None:
            waiting += 1
            print(f"=== pair {k}/{len(configs)} (seed {cfg.train.seed}) waits: its teacher data and mixup are those "
                  f"seed {LEVER_SEED} chooses for the same kind and student, whose row has not finished",
                  flush=True)
            continue
        if cfg.train.seed not in referenced:  # closed form, seconds: the bar the deployable student is held to
            print(f"reference (seed {cfg.train.seed}): Ridge (MS) -> {ridge_reference(cfg)}", flush=True)
            referenced.add(cfg.train.seed)
        failures += run_pairs([ready], first=k, total=len(configs))
        if pooled.is_file() and pooled.stat().st_size:
            report()
    write_failures(pooled, failures)
    if pooled.is_file() and pooled.stat().st_size or not waiting:
        print(report(), end="")
        print(f"rows: {pooled}")
    if waiting:
        print(f"{waiting} row(s) wait for seed {LEVER_SEED}'s rows: run the same command again once they have "
              "finished", file=sys.stderr)
    return 1 if failures or waiting else 0
