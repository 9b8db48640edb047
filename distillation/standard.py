"""The standard distillation report: one fixed teacher, three students, 12 patients x 3 seeds.

Teacher: Time-LLM on MiniLM (6 layers, real weights), events as prompt text and as channels (``--features MS``),
trained with the TimeLLM recipe (``exp/recipes.py``) in bf16 autocast: the standard comparison's ``TimeLLM (MS)``
row, with the same settings. Students: MiniLM cut to 1 and to 2 layers (real weights) and BERT-tiny with random
weights (labelled "(random)"), each trained alone (baseline) and distilled.

Sized for two CPU cores as the standard comparison is (``comparison/standard.py``):

- POOLED: every phase is one model trained on all 12 bundled patients' training windows (an evenly spaced
  ``STANDARD_WINDOWS`` = 2,000 per epoch, 1,000 for validation, the comparison's Time-LLM budget) and tested on every
  test window of every patient; the report has one row per pair, seed and patient (``rows.csv``, from the pooled
  runs' per-patient scores) and compares distilled with baseline patient by patient (12 pairs per seed) -- the
  per-patient design (one teacher per patient) would cost 12 teachers per seed;
- the loss weights are searched on validation for every seed and pair, among the default grid, which includes the
  truth-only (1, 0, 0) ("no distillation" can win; the baseline's run then stands for it). Weights searched on one
  seed and reused on another can be worse on that seed's validation than the student alone, so each seed chooses
  its own, and the seeds are independent runs (``--seeds`` splits them between processes in any order).

Every (pair, seed) is one ``PipelineConfig`` (pooled CSV ``pooled.csv``: one row per pair and seed); the three pairs
of a seed share the teacher's run folder and settings, so the teacher trains once per seed and the later pairs reuse
it (``exp/reuse.py``); when the standard comparison has already finished its ``TimeLLM (MS)`` run of that seed (same
settings), that run is the teacher (``adopt_teacher``). ``plan`` lists the runs and a rough upper bound on the time
they take, without loading data.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Optional

import pandas as pd

from comparison.costs import COHORT_TEST
from distillation.config import PipelineConfig, baseline_stands_for, patient_groups, phase_configs, run_names
from distillation.report import per_patient_rows
from distillation.summary import standard_markdown, summarise_standard
from exp.recipes import apply_recipe
from exp.reuse import finished_run, read_json
from models import model_spec
from utils.cli import seed_list
from utils.errors import LLMTimeError
from utils.io import atomic_path, write_text

STANDARD_DIR = Path("docs/results/distillation_standard")
STANDARD_RUNS = "checkpoints/distill_standard"  # run folders (checkpoints, predictions) stay out of docs/
COMPARISON_RUNS = "checkpoints/compare/standard"  # the standard comparison's run folders (its default --out)
STANDARD_PATIENTS = [str(p) for p in range(1001, 1013)]  # the 12 bundled patients, pooled
STANDARD_SEEDS = (2021, 2022, 2023)
STANDARD_WINDOWS = (2_000, 1_000)  # training / validation windows per epoch: the standard comparison's Time-LLM budget
POOLED_CSV = "pooled.csv"  # the pipeline's rows: one per pair and seed
ROWS_CSV = "rows.csv"  # one per pair, seed and patient
# (student row, its first N layers, its weights); the teacher is MiniLM with all 6 layers and real weights
STANDARD_STUDENTS = (("MiniLM", 1, "pretrained"), ("MiniLM", 2, "pretrained"), ("BERT-tiny", None, "random"))
TEACHER = "MiniLM"
# The teacher's speed on this project's 2-core CPU, as the comparison plans with it: Time-LLM on MiniLM, bf16 (the
# rate in its registry entry, measured for the default run, docs/results/default_run.md).
TRAIN_WINDOWS_PER_S = model_spec("TimeLLM").rate.train
TEST_WINDOWS_PER_S = model_spec("TimeLLM").rate.infer
TEST_WINDOWS = COHORT_TEST  # the bundled cohort's test windows, all 12 patients


def standard_seeds(text: Optional[str]) -> tuple[int, ...]:
    """The seeds ``--seeds`` picks out of STANDARD_SEEDS (all of them when not given), in the preset's order."""
    if text is None:
        return STANDARD_SEEDS
    wanted = set(seed_list(text))
    unknown = sorted(wanted - set(STANDARD_SEEDS))
    if unknown:
        raise LLMTimeError(f"--seeds must be some of the standard report's seeds {', '.join(map(str, STANDARD_SEEDS))}"
                           f", got {text!r}")
    return tuple(s for s in STANDARD_SEEDS if s in wanted)


def standard_configs(shared: PipelineConfig, out: Optional[str] = None,
                     csv: Optional[Path] = None) -> list[PipelineConfig]:
    """The preset's pipeline settings, seed by seed and pair by pair (teacher first needed, then reused): ``shared``
    (the settings the command line gives every pair: latency repeats, --int8, the grid) with the preset's teacher,
    student, patients, windows, recipe and seed. Every config searches the grid on its own seed's validation
    windows."""
    csv = csv or STANDARD_DIR / POOLED_CSV
    configs = []
    for seed in STANDARD_SEEDS:
        for student, layers, weights in STANDARD_STUDENTS:
            cfg = dataclasses.replace(shared, teacher=TEACHER, student=student, teacher_layers=None,
                                      student_layers=layers, teacher_weights="pretrained", student_weights=weights,
                                      csv=str(csv), out=out or STANDARD_RUNS, all_patients=True)
            train = apply_recipe(dataclasses.replace(cfg.train, seed=seed, mixed_precision="bf16"), "TimeLLM", {})
            epochs = train.train_epochs
            data = dataclasses.replace(cfg.data, patients=list(STANDARD_PATIENTS), covariates=True,
                                       max_train_windows=STANDARD_WINDOWS[0], max_val_windows=STANDARD_WINDOWS[1])
            configs.append(dataclasses.replace(
                cfg, data=data, model=dataclasses.replace(cfg.model, prompt_domain=False), train=train,
                teacher_epochs=epochs, student_epochs=epochs, distill_epochs=epochs))
    return configs


def adopt_teacher(cfg: PipelineConfig, runs: Path) -> Optional[Path]:
    """Put the standard comparison's finished ``TimeLLM (MS)`` run of this seed into the teacher's run folder when
    its result-relevant settings are exactly the teacher's (the preset makes them so), so the report's teacher is
    that row's very run and is not trained twice. Returns the run adopted; None when the teacher's folder already
    holds a finished run or ``runs`` has none to give (the pipeline then trains the teacher)."""
    (tag, patients), = patient_groups(cfg)
    configs = phase_configs(cfg, tag, patients)
    teacher = configs["teacher"]
    target = Path(teacher.checkpoints) / run_names(configs, cfg.candidates[0], cfg.init_from_baseline)["teacher"]
    if finished_run(target, teacher) is not None or not Path(runs).is_dir():
        return None
    for run in sorted(Path(runs).iterdir()):
        if run.is_dir() and finished_run(run, teacher) is not None:
            shutil.rmtree(target, ignore_errors=True)  # an unfinished teacher of its own: the finished one wins
            shutil.copytree(run, target, ignore=shutil.ignore_patterns("last.pt", "tensorboard"))
            return run
    return None


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
        + TEST_WINDOWS / TEST_WINDOWS_PER_S
    return (trained_runs * per_run + cache_fills * train / TEST_WINDOWS_PER_S) / 3600


def plan_text(configs: list[PipelineConfig]) -> str:
    """What ``--standard --plan`` prints: the preset, the run list's counts, the shared teachers and the estimate."""
    runs = planned_runs(configs)
    trained = runs[~runs["reused"]]
    first = configs[0]
    pairs = list(dict.fromkeys(runs["pair"]))
    cache_fills = len(runs[(runs["phase"] == "distilled") & ~runs["reused"]])  # at most one per distilled run
    hours = estimate_hours(first, len(trained), cache_fills)
    lines = [
        f"standard distillation report: {len(pairs)} pairs x {len(STANDARD_SEEDS)} seeds, each phase one model "
        f"pooled over {len(STANDARD_PATIENTS)} patients = {len(runs[runs['phase'] == 'baseline'])} pooled rows -> "
        f"{first.csv_path}, {len(pairs) * len(STANDARD_SEEDS) * len(STANDARD_PATIENTS)} per-patient rows -> "
        f"{first.csv_path.parent / ROWS_CSV}",
        f"teacher: {TEACHER} (6 layers, pretrained), --features MS (events as text and channels), "
        f"recipe {first.train.recipe}: lr {first.train.learning_rate:g}, batch {first.train.batch_size}, "
        f"{first.train.lradj}, {first.train.warmup_steps} warm-up steps, {first.teacher_epochs} epochs, patience "
        f"{first.train.patience}, {first.train.mixed_precision}",
        "pairs: " + ", ".join(pairs),
        f"patients: {' '.join(STANDARD_PATIENTS)} (pooled); seeds: {' '.join(map(str, STANDARD_SEEDS))}; "
        f"runs under {first.out}/runs",
        "weight candidates (validation, searched for every seed and pair): "
        + "; ".join(str(w.as_tuple()) for w in first.grid) + "; INT8 student: "
        + ("on" if first.int8 else "off (--int8 0)"),
        f"training runs: {len(trained)} ({', '.join(f'{n} {p}' for p, n in trained['phase'].value_counts().items())}"
        f"); teacher runs named {int((runs['phase'] == 'teacher').sum())} times, trained "
        f"{int(((runs['phase'] == 'teacher') & ~runs['reused']).sum())} (once per seed, then reused)",
        f"time, upper bound: ~{hours:,.1f} h at {TRAIN_WINDOWS_PER_S:g} training / {TEST_WINDOWS_PER_S:g} test "
        f"windows/s (Time-LLM MiniLM bf16 on the 2-core CPU), every run at the teacher's speed for "
        f"{first.teacher_epochs} epochs over {first.data.max_train_windows} training / {first.data.max_val_windows} "
        f"validation windows, {TEST_WINDOWS:,} test windows; students and early stopping make it shorter",
        "runs:",
    ]
    for r in runs.itertuples():
        w = f" {r.weights}" if r.weights is not None else ""
        lines.append(f"  s{r.seed} {r.patient} {r.pair:<24} {r.phase:<9}{w} -> {r.run}"
                     + (" (reused)" if r.reused else ""))
    return "\n".join(lines)


def write_standard_reports(pooled_csv: Path, label, planned: Optional[int] = None) -> str:
    """rows.csv (one row per pair, seed and patient, from the pooled rows' runs), summary.csv and summary.md beside
    the pooled CSV; returns the Markdown. ``label`` names a pair from a row; with ``planned`` (the preset's pooled
    rows) a report that covers fewer says so at its top."""
    if not pooled_csv.is_file() or not pooled_csv.stat().st_size:
        raise LLMTimeError(f"{pooled_csv} does not exist: run the standard report first")
    pooled = pd.read_csv(pooled_csv, dtype={"patient": str})
    pooled = pooled.drop_duplicates("config_key", keep="last")
    rows = pd.DataFrame([r for row in pooled.to_dict("records") for r in per_patient_rows(row)])
    with atomic_path(pooled_csv.parent / ROWS_CSV) as tmp:
        rows.to_csv(tmp, index=False)
    summary = summarise_standard(rows, label)
    with atomic_path(pooled_csv.parent / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    partial = (f"**Partial**: this report covers {len(pooled)} of the {planned} planned pooled rows (pair x seed); "
               "run the same command again to continue (finished rows are kept).\n\n"
               if planned is not None and len(pooled) < planned else
               f"Complete: all {len(pooled)} planned pooled rows (pair x seed).\n\n" if planned is not None else "")
    hours, runs = training_hours(pooled)
    cost = (f"Run time: {hours:.1f} h, the sum of the wall times of the {runs} finished training runs of these "
            "rows' seeds (teachers, students alone, every distilled student the weight search trained); a teacher "
            "taken from the standard comparison counts there too.\n\n")
    text = "# Standard distillation report\n\n" + partial + cost + standard_markdown(summary)
    write_text(pooled_csv.parent / "summary.md", text)
    return text


def training_hours(pooled: pd.DataFrame) -> tuple[float, int]:
    """(hours, runs): the wall time of every finished run folder in the rows' seed folders (each pipeline row's runs
    share its seed's folder, so the weight search's students are counted too, and a shared teacher once)."""
    folders = {Path(run).parent for run in pooled["teacher_run"]}
    walls = [metrics["summary"]["wall_seconds"] for folder in sorted(folders) for run in sorted(folder.iterdir())
             if (metrics := read_json(run / "metrics.json")) is not None]
    return sum(walls) / 3600, len(walls)
