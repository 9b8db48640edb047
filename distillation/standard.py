"""The standard distillation report (issue 12): one fixed teacher, three students, 4 patients x 3 seeds.

Teacher: Time-LLM on MiniLM (6 layers, real weights), events as prompt text and as channels (``--features MS``),
trained with the TimeLLM recipe (``exp/recipes.py``) in bf16 autocast. Students: MiniLM cut to 1 and to 2 layers
(real weights) and BERT-tiny with random weights (labelled "(random)"), each trained alone (baseline) and distilled
(weights chosen on validation among the default grid, which includes the truth-only (1, 0, 0)).

Every (pair, seed) is one ``PipelineConfig`` (one row per patient); the three pairs of a seed share the teacher's
run folder and settings, so the teacher trains once per patient and seed and the later pairs reuse it
(``exp/reuse.py``). ``plan`` lists the runs and a rough upper bound on the time they take, without loading data.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Optional

import pandas as pd

from distillation.cli import pipeline_config
from distillation.config import PipelineConfig, baseline_stands_for, patient_groups, phase_configs, run_names
from distillation.summary import standard_markdown, summarise_standard
from exp.recipes import apply_recipe
from utils.errors import LLMTimeError
from utils.io import atomic_path, write_text

STANDARD_DIR = Path("docs/results/distillation_standard")
STANDARD_RUNS = "checkpoints/distill_standard"  # run folders (checkpoints, predictions) stay out of docs/
STANDARD_PATIENTS = ["1001", "1002", "1003", "1004"]  # the first four bundled patients
STANDARD_SEEDS = (2021, 2022, 2023)
# (student row, its first N layers, its weights); the teacher is MiniLM with all 6 layers and real weights
STANDARD_STUDENTS = (("MiniLM", 1, "pretrained"), ("MiniLM", 2, "pretrained"), ("BERT-tiny", None, "random"))
TEACHER = "MiniLM"
# Measured for the default run on this project's 2-core CPU (docs/results/default_run.md): Time-LLM on MiniLM, bf16.
TRAIN_WINDOWS_PER_S = 22.0
TEST_WINDOWS_PER_S = 160.0
TEST_WINDOWS_PER_PATIENT = 2_800


def standard_configs(args: argparse.Namespace, out: Optional[str] = None,
                     csv: Optional[Path] = None) -> list[PipelineConfig]:
    """The preset's pipeline settings, seed by seed and pair by pair (teacher first needed, then reused); the
    parsed shared flags supply what the preset leaves open (window caps, latency repeats, --int8, the grid)."""
    csv = csv or STANDARD_DIR / "rows.csv"
    configs = []
    for seed in STANDARD_SEEDS:
        for student, layers, weights in STANDARD_STUDENTS:
            cfg = pipeline_config(args, teacher=TEACHER, student=student, teacher_layers=None, student_layers=layers,
                                  teacher_weights="pretrained", student_weights=weights, csv=str(csv),
                                  out=out or STANDARD_RUNS)
            train = apply_recipe(dataclasses.replace(cfg.train, seed=seed, mixed_precision="bf16"), "TimeLLM", {})
            epochs = train.train_epochs
            configs.append(dataclasses.replace(
                cfg, data=dataclasses.replace(cfg.data, patients=list(STANDARD_PATIENTS), covariates=True),
                train=train, teacher_epochs=epochs, student_epochs=epochs, distill_epochs=epochs))
    return configs


def planned_runs(configs: list[PipelineConfig]) -> pd.DataFrame:
    """One line per training run the preset asks for (phase, pair, patient, seed, run folder); a folder that several
    pairs name (the shared teacher) is one training run, marked ``reused`` after its first appearance."""
    lines = []
    for cfg in configs:
        pair = f"{cfg.teacher}→{cfg.student}" + (f"-L{cfg.student_layers}" if cfg.student_layers else "") + (
            " (random)" if cfg.backbone_weights("student") == "random" else "")
        for tag, patients in patient_groups(cfg):
            phases = phase_configs(cfg, tag, patients)
            for w in cfg.candidates:
                names = run_names(phases, w, cfg.init_from_baseline)
                for phase in ("teacher", "baseline", "distilled"):
                    if phase != "distilled" and w != cfg.candidates[0]:
                        continue
                    stands_in = phase == "distilled" and baseline_stands_for(cfg, w)
                    lines.append({"phase": phase, "pair": pair, "patient": tag, "seed": cfg.train.seed,
                                  "weights": w.as_tuple() if phase == "distilled" else None,
                                  "run": str(Path(phases["baseline" if stands_in else phase].checkpoints)
                                             / names["baseline" if stands_in else phase]),
                                  "epochs": phases[phase].train.train_epochs})
    runs = pd.DataFrame(lines)
    runs["reused"] = runs.duplicated("run")
    return runs


def estimate_hours(cfg: PipelineConfig, trained_runs: int, cache_fills: int) -> float:
    """Upper bound in hours: every run at the teacher's speed for its whole epoch budget over the window caps
    (students are faster and early stopping ends most runs sooner), plus test scoring and teacher-cache passes."""
    train = cfg.data.max_train_windows or 0
    val = cfg.data.max_val_windows or 0
    per_run = cfg.teacher_epochs * (train / TRAIN_WINDOWS_PER_S + val / TEST_WINDOWS_PER_S) \
        + TEST_WINDOWS_PER_PATIENT / TEST_WINDOWS_PER_S
    return (trained_runs * per_run + cache_fills * train / TEST_WINDOWS_PER_S) / 3600


def plan_text(configs: list[PipelineConfig]) -> str:
    """What ``--standard --plan`` prints: the preset, the run list's counts, the shared teachers and the estimate."""
    runs = planned_runs(configs)
    trained = runs[~runs["reused"]]
    first = configs[0]
    pairs = list(dict.fromkeys(runs["pair"]))
    cache_fills = len(runs[runs["phase"] == "baseline"])  # one teacher-cache pass per (pair, patient, seed)
    hours = estimate_hours(first, len(trained), cache_fills)
    lines = [
        f"standard distillation report: {len(pairs)} pairs x {len(STANDARD_PATIENTS)} patients x "
        f"{len(STANDARD_SEEDS)} seeds = {len(runs[runs['phase'] == 'baseline'])} rows -> {first.csv_path}",
        f"teacher: {TEACHER} (6 layers, pretrained), --features MS (events as text and channels), "
        f"recipe {first.train.recipe}: lr {first.train.learning_rate:g}, batch {first.train.batch_size}, "
        f"{first.train.lradj}, {first.train.warmup_steps} warm-up steps, {first.teacher_epochs} epochs, patience "
        f"{first.train.patience}, {first.train.mixed_precision}",
        "pairs: " + ", ".join(pairs),
        f"patients: {' '.join(STANDARD_PATIENTS)}; seeds: {' '.join(map(str, STANDARD_SEEDS))}; "
        f"runs under {first.out}/runs",
        "weight candidates (validation): " + "; ".join(str(w.as_tuple()) for w in first.candidates)
        + f"; INT8 student: {'on' if first.int8 else 'off (--int8 0)'}",
        f"training runs: {len(trained)} ({', '.join(f'{n} {p}' for p, n in trained['phase'].value_counts().items())}"
        f"); teacher runs named {int((runs['phase'] == 'teacher').sum())} times, trained "
        f"{int(((runs['phase'] == 'teacher') & ~runs['reused']).sum())} (once per patient and seed, then reused)",
        f"time, upper bound: ~{hours:,.0f} h at {TRAIN_WINDOWS_PER_S:g} training / {TEST_WINDOWS_PER_S:g} test "
        f"windows/s (Time-LLM MiniLM bf16 on the 2-core CPU), every run at the teacher's speed for "
        f"{first.teacher_epochs} epochs over {first.data.max_train_windows} training / {first.data.max_val_windows} "
        f"validation windows, {TEST_WINDOWS_PER_PATIENT:,} test windows per patient; students and early stopping "
        "make it shorter",
        "runs:",
    ]
    for r in runs.itertuples():
        w = f" {r.weights}" if r.weights is not None else ""
        lines.append(f"  s{r.seed} {r.patient} {r.pair:<24} {r.phase:<9}{w} -> {r.run}"
                     + (" (reused)" if r.reused else ""))
    return "\n".join(lines)


def write_standard_reports(rows_csv: Path, label) -> str:
    """summary.csv and summary.md beside the rows CSV; returns the Markdown. ``label`` names a pair from a row."""
    if not rows_csv.is_file() or not rows_csv.stat().st_size:
        raise LLMTimeError(f"{rows_csv} does not exist: run the standard report first")
    rows = pd.read_csv(rows_csv, dtype={"patient": str})
    summary = summarise_standard(rows, label)
    with atomic_path(rows_csv.parent / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    text = "# Standard distillation report\n\n" + standard_markdown(summary)
    write_text(rows_csv.parent / "summary.md", text)
    return text
