"""The standard distillation report: three teacher kinds x four students x {alone, distilled}, 12 patients x 3 seeds.

Teacher: Time-LLM on MiniLM (6 layers, real weights), events as prompt text and as channels (``--features MS``),
trained with the TimeLLM recipe (``exp/recipes.py``), in fp32 on every machine (the report runs across sessions
and CPUs, and a run's settings must not change with the CPU it resumes on), in three kinds (``TEACHER_KINDS``):

- standard: the students' inputs (deeper than the standard comparison's ``TimeLLM (MS)``, MiniLM's first layer on
  fresh draws: a teacher trained on one fixed labelled set, so that teacher data can lie beyond it);
- privileged: also the meals, boluses and basal logged within the forecast horizon (``--teacher-view privileged``),
  which no history-only student can know: the ceiling a student chases;
- ridge: forecasting the correction to a closed-form ridge regression (``--teacher-base ridge``), so the teacher
  starts from the forecast a cheap model already makes.

Students: MiniLM cut to 1 and to 2 layers (real weights), BERT-tiny with random weights (labelled "(random)") and an
MLP without a language model (the kind a device would ship), each trained alone (baseline) and distilled; the
students never change with the teacher kind, so each student's baseline trains once per seed and serves every kind.
A Ridge (MS) reference per seed (``distillation/references.py``) is the bar the best deployable student is held to.

Sized for two CPU cores as the standard comparison is (``comparison/standard.py``):

- POOLED: every phase is one model trained on all 12 bundled patients' training windows (an evenly spaced
  ``STANDARD_WINDOWS`` = 2,000 labelled per epoch, 1,000 for validation, the comparison's Time-LLM budget) and tested
  on every test window of every patient; the report has one row per (kind, student), seed and patient (``rows.csv``,
  from the pooled runs' per-patient scores) and compares distilled with alone patient by patient;
- the search is run on validation for every seed, kind and student over ``STANDARD_SEARCH``: loss weights that
  include the truth-only (1, 0, 0) ("no distillation" can win; the baseline's run then stands for it), and at the
  first seed (``LEVER_SEED``) teacher-data shares and mixup alphas (0 among them: neither lever can be forced on).
  Each later seed chooses its own weights, with the levers the first seed chose for the same kind and student
  (``resolve_levers``): its rows wait for that seed's (``--seeds`` runs the first seed and the others as they can).

Every (kind, student, seed) is one ``PipelineConfig`` (pooled CSV ``pooled.csv``: one row each); the students of a
kind and seed share the teacher's run folder and settings, so each teacher trains once per seed and the later
students reuse it (``exp/reuse.py``). ``plan_text`` lists the runs and a rough upper bound on the time they take,
without loading data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Mapping, Optional

import pandas as pd

from comparison.costs import COHORT_TEST, COHORT_TRAIN
from distillation.answers import standard_markdown
from distillation.candidates import Candidate
from distillation.config import (PipelineConfig, baseline_stands_for, config_key, lm_free_model, patient_groups,
                                 phase_configs, run_names, teacher_kind)
from distillation.losses import parse_grid
from distillation.pipeline import finished_row
from distillation.references import RIDGE_RUN, ridge_columns, ridge_config
from distillation.measure import PREDICTIONS_NAME
from distillation.report import PHASES, parse_losses, per_patient_rows, runs_here
from distillation.summary import summarise_standard
from exp.recipes import GRID_TIMELLM_MODEL, apply_recipe
from exp.reuse import METRICS_NAME, finished_run, read_json
from models import model_spec
from models.backbones import resolve_backbone
from utils.cli import seed_list
from utils.errors import LLMTimeError
from utils.io import atomic_path, write_text

# Run folders (checkpoints, predictions) and, unless --csv names another file, the pooled rows with the reports
# beside them; the published report is written where its command's --csv says (docs/distillation.md).
STANDARD_RUNS = "checkpoints/distill_standard"
STANDARD_PATIENTS = [str(p) for p in range(1001, 1013)]  # the 12 bundled patients, pooled
STANDARD_SEEDS = (2021, 2022, 2023)
STANDARD_WINDOWS = (2_000, 1_000)  # training / validation windows per epoch: the standard comparison's Time-LLM budget
POOLED_CSV = "pooled.csv"  # the pipeline's rows: one per kind, student and seed
ROWS_CSV = "rows.csv"  # one per kind, student, seed and patient
RUN_TIMES_CSV = "run_times.csv"  # wall seconds of every finished run of the report, kept when its folder is gone
# (student, its first N layers, its weights); the teacher is MiniLM with all 6 layers and real weights. Cheapest
# first: a report stopped part-way through a teacher kind has its deployable students (the MLP) before the costly ones
STANDARD_STUDENTS = (("MLP", None, None), ("BERT-tiny", None, "random"), ("MiniLM", 1, "pretrained"),
                     ("MiniLM", 2, "pretrained"))
TEACHER = "MiniLM"
# teacher kind -> what it sets on the preset's PipelineConfig (the teacher's view and base; never the students')
TEACHER_KINDS = {"standard": {"teacher_view": "standard", "teacher_base": None},
                 "privileged": {"teacher_view": "privileged", "teacher_base": None},
                 "ridge": {"teacher_view": "standard", "teacher_base": "ridge"}}
# The search, unless the command line gives its own --grid / --teacher_data / --mixup_alpha. The loss weights are
# narrowed, on cost, from the pipeline's four (DEFAULT_GRID) to the two that validation ever chose in the earlier
# standard report (every seed and student chose (0.5, 0.5, 0) or the truth-only (1, 0, 0), never a hidden-state term
# nor (0.2, 0.8, 0)); each lever stays a choice between off and one setting. Per row: 4 distilled students trained
# (weights (0.5, 0.5, 0) x teacher data 0/1 x mixup 0/0.2) and the baseline standing for (1, 0, 0), against 10.
STANDARD_SEARCH = {"grid": "0.5,0.5,0;1,0,0", "teacher_data": "0,1", "mixup_alpha": "0,0.2"}
# The levers (teacher-data share, mixup alpha) are searched at the first seed only, for each kind and student; every
# later seed takes the levers of that seed's best distilled student (lowest validation loss) and searches the loss
# weights on its own validation windows: distilled with those levers, or the student alone. That halves the
# distilled students trained, and no seed is held to weights another seed chose.
LEVER_SEED = STANDARD_SEEDS[0]
# Speeds on this project's 2-core CPU, as the comparison plans with them: Time-LLM on MiniLM's first layer (the rate
# in its registry entry), slowed by backbone depth as measured for 1, 2 and 6 MiniLM layers in one benchmark run
# (docs/results/benchmark_cpu.md, windows/s training / inference: 26.7 / 362.0, 18.9 / 120.9, 10.4 / 30.9); a depth
# between two measured ones is costed as the deeper one and a narrower backbone as MiniLM, so each is an upper bound.
# A student without a language model runs at its own registry rate.
TRAIN_WINDOWS_PER_S = model_spec("TimeLLM").rate.train
TEST_WINDOWS_PER_S = model_spec("TimeLLM").rate.infer
DEPTH_SLOWDOWN = {1: (1.0, 1.0), 2: (26.7 / 18.9, 362.0 / 120.9), 6: (26.7 / 10.4, 362.0 / 30.9)}
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


def standard_kinds(text: Optional[str]) -> tuple[str, ...]:
    """The teacher kinds ``--kinds`` picks out of TEACHER_KINDS (all of them when not given), in the preset's order."""
    if text is None:
        return tuple(TEACHER_KINDS)
    wanted = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(wanted - set(TEACHER_KINDS))
    if unknown or not wanted:
        raise LLMTimeError(f"--kinds must be some of the standard report's teacher kinds {', '.join(TEACHER_KINDS)}, "
                           f"got {text!r}")
    return tuple(k for k in TEACHER_KINDS if k in wanted)


def kind_of(cfg: PipelineConfig) -> str:
    """The teacher kind (a TEACHER_KINDS key) of one of the preset's configs."""
    return next(name for name, fields in TEACHER_KINDS.items()
                if all(getattr(cfg, f) == v for f, v in fields.items()))


def standard_configs(shared: PipelineConfig, out: Optional[str] = None, csv: Optional[Path] = None,
                     search: Mapping[str, str] = STANDARD_SEARCH,
                     precision: Optional[str] = None) -> list[PipelineConfig]:
    """The preset's pipeline settings, seed by seed, kind by kind and student by student (teacher first needed, then
    reused): ``shared`` (the settings the command line gives every pair: latency repeats, --int8) with the preset's
    teacher kind, student, patients, windows, recipe, seed and ``search`` (loss-weight grid, teacher-data shares and
    mixup alphas, as flag text), in ``precision`` (default fp32 on every machine, as the standard
    comparison chooses). Every config searches on its own seed's validation windows."""
    csv = csv or Path(out or STANDARD_RUNS) / POOLED_CSV
    precision = precision or "no"
    search = {**search, **({"grid": parse_grid(search["grid"])} if "grid" in search else {})}
    return [_standard_config(shared, seed, {**kind, **search}, student, str(csv), out or STANDARD_RUNS, precision)
            for seed in STANDARD_SEEDS for kind in TEACHER_KINDS.values() for student in STANDARD_STUDENTS]


def _standard_config(shared: PipelineConfig, seed: int, fields: dict, student: tuple, csv: str,
                     out: str, precision: str) -> PipelineConfig:
    name, layers, weights = student
    cfg = dataclasses.replace(shared, teacher=TEACHER, student=name, teacher_layers=None, student_layers=layers,
                              teacher_weights="pretrained", student_weights=weights, csv=csv, out=out,
                              all_patients=True, **fields)
    train = apply_recipe(dataclasses.replace(cfg.train, seed=seed, mixed_precision=precision), "TimeLLM", {})
    epochs = train.train_epochs
    data = dataclasses.replace(cfg.data, patients=list(STANDARD_PATIENTS), covariates=True,
                               max_train_windows=STANDARD_WINDOWS[0], max_val_windows=STANDARD_WINDOWS[1])
    # the grids' Time-LLM prompt (exp/recipes.py), each phase with its own layers
    model = dataclasses.replace(cfg.model, prompt_domain=GRID_TIMELLM_MODEL["prompt_domain"],
                                event_words=GRID_TIMELLM_MODEL["event_words"])
    return dataclasses.replace(cfg, data=data, model=model, train=train, teacher_epochs=epochs, student_epochs=epochs,
                               distill_epochs=epochs)


def waits_for_levers(cfg: PipelineConfig) -> bool:
    """Whether a preset config takes its teacher data and mixup from ``LEVER_SEED``'s search and has not yet: a later
    seed's, while the search has levers to choose and none are set."""
    return cfg.levers is None and cfg.train.seed != LEVER_SEED and not all(c.plain for c in cfg.search_space)


def same_row(a: PipelineConfig, b: PipelineConfig) -> bool:
    """Whether two of the preset's configs are the same teacher kind and student (seeds aside)."""
    fields = ("teacher_view", "teacher_base", "student", "student_layers", "student_weights")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def searched_losses(cfg: PipelineConfig) -> Optional[dict[Candidate, float]]:
    """The best validation loss of each distilled student ``cfg``'s search trained (those the baseline stands for
    left out), in search order; None until its pooled row is written, i.e. its search has finished."""
    (tag, patients), = patient_groups(cfg)
    phases = phase_configs(cfg, tag, patients)
    row = finished_row(cfg.csv_path, config_key(cfg, phases))
    if row is None:
        return None
    recorded = parse_losses(row.get("search_val_mse"), cfg.search_space)
    if recorded is not None:  # the row's record outlives its run folders (git-ignored, lost with the machine)
        return recorded
    losses = {}
    for c in cfg.search_space:
        if baseline_stands_for(cfg, c):
            continue
        run = Path(phases["distilled"].checkpoints) / run_names(phases, c, cfg.init_from_baseline)["distilled"]
        metrics = read_json(run / METRICS_NAME)
        if metrics is None:
            return None
        losses[c] = float(metrics["fit"]["best_val_loss"])
    return losses


def resolve_levers(cfg: PipelineConfig, configs: list[PipelineConfig]) -> Optional[PipelineConfig]:
    """``cfg`` ready to run: as it is when it searches its own levers; at a later seed, with the teacher-data share
    and mixup alpha of the best distilled student (lowest validation loss, the first on ties) of the same kind and
    student at ``LEVER_SEED``; None while that seed's row has not finished."""
    if not waits_for_levers(cfg):
        return cfg
    first = next(c for c in configs if c.train.seed == LEVER_SEED and same_row(c, cfg))
    losses = searched_losses(first)
    if not losses:
        return None
    best = min(losses, key=losses.__getitem__)
    return dataclasses.replace(cfg, levers=(best.teacher_data, best.mixup_alpha))


def pair_of(cfg: PipelineConfig) -> str:
    """'MiniLM→MiniLM-L1', 'MiniLM→BERT-tiny (random)', 'MiniLM→MLP': a config's pair as the plan names it."""
    random = cfg.backbone_weights("student") == "random" and lm_free_model(cfg.student) is None
    return f"{cfg.teacher}→{cfg.student}" + (f"-L{cfg.student_layers}" if cfg.student_layers else "") + (
        " (random)" if random else "")


def planned_runs(configs: list[PipelineConfig]) -> pd.DataFrame:
    """One line per run the preset asks for (phase, teacher kind, pair, patient, seed, candidate, run folder, epochs,
    training windows per epoch); a folder that several lines name (a shared teacher, a student's baseline shared by
    the kinds, the seed's Ridge reference) is one run, marked ``reused`` after its first appearance."""
    lines = []
    for cfg in configs:
        for tag, patients in patient_groups(cfg):
            phases = phase_configs(cfg, tag, patients)
            names = run_names(phases, cfg.search_space[0], cfg.init_from_baseline)
            line = {"kind": teacher_kind(phases), "pair": pair_of(cfg), "patient": tag, "seed": cfg.train.seed}
            labelled = cfg.data.max_train_windows or 0
            ridge = ridge_config(cfg)
            student = {"model": cfg.student, "layers": student_depth(cfg)}
            lines.append({**line, "phase": "reference", "weights": "", "epochs": 0, "windows": 0, "model": "Ridge",
                          "layers": 0, "run": str(Path(ridge.checkpoints) / RIDGE_RUN)})
            for phase, model in (("teacher", {"model": cfg.teacher, "layers": teacher_depth(cfg)}),
                                 ("baseline", student)):
                lines.append({**line, "phase": phase, "weights": "", "epochs": phases[phase].train.train_epochs,
                              "windows": labelled, **model, "cache": cache_windows(cfg) if phase == "teacher" else 0,
                              "cache_kept": not any(c.weights.gamma for c in cfg.search_space),
                              "run": str(Path(phases[phase].checkpoints) / names[phase])})
            # a later seed's levers are the first seed's choice, not known before it runs: costed at the widest
            later = waits_for_levers(cfg)
            widest = max(c.teacher_data for c in cfg.search_space)
            for c in ([Candidate(w) for w in cfg.candidates] if later else cfg.search_space):
                stands_in = baseline_stands_for(cfg, c)
                name = names["baseline"] if stands_in else run_names(phases, c, cfg.init_from_baseline)["distilled"]
                chosen = later and not stands_in
                lines.append({**line, "phase": "distilled", "epochs": phases["distilled"].train.train_epochs,
                              "weights": c.describe() + (f", seed {LEVER_SEED}'s levers" if chosen else ""),
                              "windows": round(labelled * (1 + (widest if chosen else c.teacher_data))), **student,
                              "run": str(Path(phases["distilled"].checkpoints) / name) + ("_<levers>" if chosen
                                                                                           else "")})
    runs = pd.DataFrame(lines)
    runs["reused"] = runs.duplicated("run")
    return runs


def cache_windows(cfg: PipelineConfig) -> int:
    """The windows one pooled row's teacher caches hold at most: the labelled ones (when a candidate without teacher
    data needs the teacher), and with teacher data every window its draws may reach (the labelled ones and each
    epoch's draw of every share, at most every training window)."""
    labelled = cfg.data.max_train_windows or 0
    space = cfg.search_space
    plain = labelled if any(not c.teacher_data and (c.weights.beta or c.weights.gamma) for c in space) else 0
    shares = {c.teacher_data for c in space if c.teacher_data}
    drawn = min(labelled * (1 + cfg.distill_epochs * sum(shares)), COHORT_TRAIN) if shares else 0
    return plain + drawn


def rates(model: str, layers: int) -> tuple[float, float]:
    """(training, inference) windows/s of a run on the 2-core CPU: a model without a language model at its registry
    rate; a backbone model of ``layers`` layers at Time-LLM's, slowed as ``DEPTH_SLOWDOWN`` says for the nearest
    measured depth at or above it (the deepest measured beyond that)."""
    lm_free = lm_free_model(model)
    if lm_free is not None:
        rate = model_spec(lm_free).rate
        return rate.train, rate.infer
    depth = min((d for d in DEPTH_SLOWDOWN if d >= layers), default=max(DEPTH_SLOWDOWN))
    train, infer = DEPTH_SLOWDOWN[depth]
    return TRAIN_WINDOWS_PER_S / train, TEST_WINDOWS_PER_S / infer


def estimate_hours(runs: pd.DataFrame, configs: list[PipelineConfig]) -> float:
    """Upper bound in hours: every trained run at its own model's speed (``rates``) for its whole epoch budget over
    its training windows per epoch (early stopping ends most runs sooner), with validation and test scoring, plus the
    teacher-cache passes at the teacher's speed (once per teacher where the cache holds forecasts only and is kept on
    disk for its other students, else once per student); the closed-form Ridge references take seconds."""
    trained = runs[~runs["reused"] & (runs["phase"] != "reference")]
    val = configs[0].data.max_val_windows or 0
    speeds = [rates(r.model, r.layers) for r in trained.itertuples()]
    seconds = sum(r.epochs * (r.windows / train + val / infer) + TEST_WINDOWS / infer
                  for r, (train, infer) in zip(trained.itertuples(), speeds))
    teacher_infer = rates(configs[0].teacher, teacher_depth(configs[0]))[1]
    teachers = runs[runs["phase"] == "teacher"]
    caches = teachers[~(teachers["reused"] & teachers["cache_kept"])]  # a kept cache is computed once per teacher
    return (seconds + caches["cache"].sum() / teacher_infer) / 3600


def teacher_depth(cfg: PipelineConfig) -> int:
    """The teacher's layers: its cut, else its backbone's depth."""
    return cfg.teacher_layers or resolve_backbone(cfg.teacher).depth


def student_depth(cfg: PipelineConfig) -> int:
    """The student's layers: its cut, else its backbone's depth; 0 for a student without a language model."""
    if lm_free_model(cfg.student) is not None:
        return 0
    return cfg.student_layers or resolve_backbone(cfg.student).depth


def plan_text(configs: list[PipelineConfig]) -> str:
    """What ``--standard --plan`` prints: the preset, the run list's counts, the shared runs and the estimate."""
    runs = planned_runs(configs)
    trained = runs[~runs["reused"]]
    first = configs[0]
    kinds, pairs = list(dict.fromkeys(runs["kind"])), list(dict.fromkeys(runs["pair"]))
    pooled = len(runs[runs["phase"] == "baseline"])
    teachers = runs[runs["phase"] == "teacher"]
    lines = [
        f"standard distillation report: {len(kinds)} teacher kinds x {len(pairs)} students x {len(STANDARD_SEEDS)} "
        f"seeds, each phase one model pooled over {len(STANDARD_PATIENTS)} patients = {pooled} pooled rows -> "
        f"{first.csv_path}, {pooled * len(STANDARD_PATIENTS)} per-patient rows -> {first.csv_path.parent / ROWS_CSV}",
        f"teacher: {TEACHER} (6 layers, pretrained), --features MS (events as text and channels), "
        f"recipe {first.train.recipe}: lr {first.train.learning_rate:g}, batch {first.train.batch_size}, "
        f"{first.train.lradj}, {first.train.warmup_steps} warm-up steps, {first.teacher_epochs} epochs, patience "
        f"{first.train.patience}, {first.train.mixed_precision}",
        "teacher kinds: " + ", ".join(kinds) + " (privileged: also the horizon's logged events; ridge: on a ridge "
        "base); students, each alone and distilled: " + ", ".join(pairs),
        f"patients: {' '.join(STANDARD_PATIENTS)} (pooled); seeds: {' '.join(map(str, STANDARD_SEEDS))}; "
        f"runs under {first.out}/runs; reference: Ridge (MS) on every training window, once per seed",
        "search (validation, for every seed, kind and student): weights " + "; ".join(
            str(w.as_tuple()) for w in first.grid) + f"; teacher data {first.teacher_data} x the labelled windows; "
        f"mixup alpha {first.mixup_alpha}; up to {len(first.search_space)} candidates per row" + (
            f" at seed {LEVER_SEED}; each later seed searches the weights with the teacher data and mixup seed "
            f"{LEVER_SEED} chose for the same kind and student (its rows wait for that row)"
            if any(map(waits_for_levers, configs)) else "")
        + "; INT8 student: " + ("on" if first.int8 else "off (--int8 0)"),
        f"training runs: {len(trained)} ({', '.join(f'{n} {p}' for p, n in trained['phase'].value_counts().items())}"
        f"); teacher runs named {len(teachers)} times, trained {int((~teachers['reused']).sum())} (once per kind and "
        "seed, then reused); each student's baseline trained once per seed for every kind",
        f"time, upper bound: ~{estimate_hours(runs, configs):,.1f} h on the 2-core CPU, every run at its model's "
        f"speed (Time-LLM on MiniLM's first layer {TRAIN_WINDOWS_PER_S:g} training / {TEST_WINDOWS_PER_S:g} test "
        f"windows/s, slower by measured depth: the {teacher_depth(first)}-layer teacher "
        "{:.1f} / {:.1f}) for {} epochs over its training windows ({} labelled, more with teacher data) and {} "
        "validation windows, {:,} test windows, and the teacher caches; early stopping makes it shorter".format(
            *rates(first.teacher, teacher_depth(first)), first.teacher_epochs, first.data.max_train_windows,
            first.data.max_val_windows, TEST_WINDOWS),
        "runs:",
    ]
    for r in runs.itertuples():
        w = f" {r.weights}" if r.weights else ""
        lines.append(f"  s{r.seed} {r.kind:<10} {r.pair:<24} {r.phase:<9}{w} -> {r.run}"
                     + (" (reused)" if r.reused else ""))
    return "\n".join(lines)


def write_standard_reports(pooled_csv: Path, label: Callable[[pd.Series], str], planned: Optional[int] = None,
                           student: Callable[[pd.Series], str] = lambda r: str(r["student"])) -> str:
    """rows.csv (one row per kind, student, seed and patient, from the pooled rows' runs and the seed's Ridge
    reference), summary.csv and summary.md beside the pooled CSV; returns the Markdown. ``label`` names a pair and
    ``student`` its student from a row; with ``planned`` (the preset's pooled rows) a report that covers fewer says
    so at its top."""
    if not pooled_csv.is_file() or not pooled_csv.stat().st_size:
        raise LLMTimeError(f"{pooled_csv} does not exist: run the standard report first")
    pooled = pd.read_csv(pooled_csv, dtype={"patient": str})
    pooled = pooled.drop_duplicates("config_key", keep="last")
    rows = pd.DataFrame(patient_rows(pooled, pooled_csv.parent / ROWS_CSV))
    with atomic_path(pooled_csv.parent / ROWS_CSV) as tmp:
        rows.to_csv(tmp, index=False)
    summary = summarise_standard(rows, label, student)
    with atomic_path(pooled_csv.parent / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    partial = (f"**Partial**: this report covers {len(pooled)} of the {planned} planned pooled rows (teacher kind x "
               "student x seed); run the same command again to continue (finished rows are kept).\n\n"
               if planned is not None and len(pooled) < planned else
               f"Complete: all {len(pooled)} planned pooled rows (teacher kind x student x seed).\n\n"
               if planned is not None else "")
    hours, runs = training_hours(pooled, pooled_csv.parent / RUN_TIMES_CSV)
    cost = (f"Run time: {hours:.1f} h, the sum of the wall times of the {runs} finished runs of these rows' seeds "
            "(teachers, students alone, every distilled student the search trained, the Ridge reference); a teacher "
            "taken from the standard comparison counts there too.\n\n")
    text = "# Standard distillation report\n\n" + partial + cost + standard_markdown(summary, rows, label)
    write_text(pooled_csv.parent / "summary.md", text)
    return text


def patient_rows(pooled: pd.DataFrame, kept_csv: Path) -> list[dict]:
    """The per-patient rows of every pooled row: from its run folders while they hold its scores and forecasts, else
    the rows an earlier report wrote to ``kept_csv`` (rows.csv: the record that outlives the git-ignored run folders,
    which a new machine does not have)."""
    kept = pd.read_csv(kept_csv, dtype={"patient": str, "config_key": str}) if (
        kept_csv.is_file() and kept_csv.stat().st_size) else pd.DataFrame(columns=["config_key"])
    out: list[dict] = []
    for row in pooled.to_dict("records"):
        if runs_here(row, PHASES, (METRICS_NAME, PREDICTIONS_NAME)):
            out += [{**r, **ridge_columns(row["teacher_run"], r["patient"])} for r in per_patient_rows(row)]
            continue
        earlier = kept[kept["config_key"] == row["config_key"]]
        if earlier.empty:
            raise LLMTimeError(f"row {row['config_key']} of the pooled CSV has neither its run folders "
                               f"({Path(row['teacher_run']).parent}) nor its per-patient rows in {kept_csv}: run the "
                               "report's command again to retrain it, after removing that row")
        out += earlier.to_dict("records")
    return out


def training_hours(pooled: pd.DataFrame, ledger: Path) -> tuple[float, int]:
    """(hours, runs): the wall time of every finished run in the rows' seed folders (each pipeline row's runs share
    its seed's folder, so the search's students are counted too, and a shared teacher once). The times found in run
    folders are added to ``ledger`` (run -> seconds, beside the pooled CSV), which keeps those of folders since lost."""
    folders = {str(Path(run).parent) for run in pooled["teacher_run"]}
    walls = dict(pd.read_csv(ledger, dtype={"run": str}).set_index("run")["wall_seconds"]) if (
        ledger.is_file() and ledger.stat().st_size) else {}
    for folder in sorted(map(Path, folders)):
        for run in sorted(folder.iterdir()) if folder.is_dir() else []:
            if (metrics := read_json(run / METRICS_NAME)) is not None:
                walls[str(run)] = float(metrics["summary"]["wall_seconds"])
    with atomic_path(ledger) as tmp:
        pd.DataFrame({"run": list(walls), "wall_seconds": list(walls.values())}).sort_values("run").to_csv(
            tmp, index=False)
    mine = [w for run, w in walls.items() if str(Path(run).parent) in folders]
    return sum(mine) / 3600, len(mine)
