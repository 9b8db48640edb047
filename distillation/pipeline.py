"""Distill a large-backbone Time-LLM teacher into a small-backbone student, per patient (or pooled), and report it.

    bash scripts/distill_pipeline.sh --teacher bert --student tinybert --patients 1001,1002 \\
        --teacher-epochs 2 --student-epochs 2 --distill-epochs 2

Per patient (one CSV row each; ``--all-patients`` trains one pooled model instead), four phases, each its own run
folder under ``<out>/runs``:

1. teacher: Time-LLM with the teacher backbone, trained on the truth;
2. student baseline: the student architecture trained alone on the truth;
3. distilled student: the same architecture trained on
   ``alpha * MSE(student, truth) + beta * MSE(student, teacher forecast) + gamma * hidden-state loss``
   (see ``distillation/losses.py``), the weights picked on validation MSE from a small grid unless
   ``--alpha --beta --gamma`` are given (with ``--teacher_data`` / ``--mixup_alpha`` listing several values, the
   teacher-only windows and blending are searched with them); the teacher's outputs come from a cache filled once
   per training window;
4. evaluation: CPU latency, sizes, test accuracy of all three, accuracy retention, student-teacher agreement,
   persistence on the same test windows and (``--int8 1``, the default) the INT8 ONNX student's size, speed and error.

All three models go through the same ``Trainer`` (optimiser, schedule, early stopping on validation MSE, best
weights tested once on every test window), so the comparison differs only in backbone and objective. A phase whose
run folder already holds a finished run of the same result-relevant settings is reused (``exp/reuse.py``; a teacher
shared by several pairs trains once), and a patient whose row is already in the CSV is skipped, so interrupted runs
resume.

The jobs live in their own modules: ``config`` (settings, phase configs, plan), ``phases`` (train or reuse one
phase), ``search`` (the loss-weight search), ``report`` (latency and the CSV row) and ``cli`` (the flags); this module
runs them in order and is the command line (``main``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd
import torch
from tqdm.auto import tqdm

from configs import DataConfig, RunConfig
from data_provider.data_factory import Splits, build_splits
from distillation.cli import build_parser, config_from_args
from distillation.config import (PipelineConfig, config_key, patient_groups, phase_configs, plan, role_label,
                                 run_names, validate)
from distillation.deploy import int8_figures
from distillation.losses import backbone_depth
from distillation.group import Group
from distillation.phases import seeded_builder, train_phase
from distillation.report import measure_latency, report_row
from distillation.search import search_weights
from exp.run import RunResult
from utils.cli import run_cli
from utils.errors import LLMTimeError
from utils.results import append_row, locked


def run_pipeline(cfg: PipelineConfig) -> list[dict[str, Any]]:
    """Every row of this configuration; rows already in the CSV (same config_key) are skipped, not recomputed."""
    validate(cfg)
    rows = []
    for tag, patients in patient_groups(cfg):
        key = config_key(cfg, phase_configs(cfg, tag, patients))
        done = finished_row(cfg.csv_path, key)
        if done is not None:
            tqdm.write(f"[{tag}] already in {cfg.csv_path}: skipped")
            rows.append(done)
            continue
        row = run_group(cfg, tag, patients)
        append_row(cfg.csv_path, row)
        rows.append(row)
    return rows


def finished_row(path: Path, key: str) -> Optional[dict[str, Any]]:
    """The last CSV row with this config_key, or None."""
    if not path.is_file() or not path.stat().st_size:
        return None
    with locked(path):
        frame = pd.read_csv(path, dtype={"patient": str, "config_key": str})
    hit = frame[frame["config_key"] == key] if "config_key" in frame else frame.iloc[0:0]
    return None if hit.empty else hit.iloc[-1].to_dict()


def run_group(cfg: PipelineConfig, tag: str, patients: Optional[list[str]]) -> dict[str, Any]:
    """Teacher -> baseline -> distilled (weight search) -> evaluation for one patient or pooled group."""
    t_start = time.perf_counter()
    configs = phase_configs(cfg, tag, patients)
    splits = build_splits(configs["baseline"].data)
    teacher_splits = view_splits(configs["teacher"].data, configs["baseline"].data, splits)
    tqdm.write(f"[{tag}] {len(splits.train)} training, {len(splits.val)} validation, {len(splits.test)} test windows")
    teacher, baseline, student_depth = train_references(cfg, tag, configs, splits, teacher_splits)
    student_build = seeded_builder(configs["baseline"], splits)
    group = Group(cfg, tag, configs, splits, teacher, baseline)
    search = search_weights(group, student_build, student_depth, teacher_splits)
    tqdm.write(f"[{tag}] 4/4 evaluation (CPU latency over {cfg.latency_repeats} repeats)")
    lat = measure_latency(splits, teacher.model, search.distilled.model, cfg.latency_repeats, cfg.latency_threads,
                          teacher_splits)
    if cfg.int8:
        tqdm.write(f"[{tag}] INT8: exporting the distilled student to ONNX and quantising it")
    int8 = int8_figures(search.distilled.model, splits, cfg.int8, cfg.latency_threads)
    return report_row(group, search, lat, t_start, int8)


def view_splits(teacher: DataConfig, student: DataConfig, splits: Splits) -> Splits:
    """The teacher's splits: the students' own, or with a privileged teacher the same windows with the horizon's
    event channels added. The teacher cache is keyed by window index, so the two views must list the same windows
    in the same order (they do: the added channels are never missing, so they drop no window)."""
    if teacher == student:
        return splits
    own = build_splits(teacher)
    for name in ("train", "val", "test"):
        mine, theirs = getattr(own, name), getattr(splits, name)
        if not (torch.equal(mine.origins, theirs.origins) and list(mine.patient) == list(theirs.patient)):
            raise LLMTimeError(f"the teacher's view cuts other {name} windows than the students': the teacher "
                               "cache would pair forecasts with the wrong windows")
    return own


def train_references(
    cfg: PipelineConfig, tag: str, configs: dict[str, RunConfig], splits: Splits, teacher_splits: Splits
) -> tuple[RunResult, RunResult, int]:
    """Phases 1 and 2, the teacher (on its own view's splits) and the student baseline; also the student's loaded
    depth.

    The student is built before the teacher trains, so missing weights of either backbone fail in seconds, not after
    the teacher; that first build is also the baseline's model (built right after seeding, as its builder would).
    """
    probe = seeded_builder(configs["baseline"], splits)()
    names = run_names(configs, cfg.candidates[0], cfg.init_from_baseline)
    teacher = train_teacher(cfg, tag, configs, teacher_splits)
    tqdm.write(f"[{tag}] 2/4 student baseline {role_label(configs['baseline'].model)}")
    baseline = train_phase(configs["baseline"], names["baseline"], splits, lambda: probe)
    return teacher, baseline, backbone_depth(probe)


def train_teacher(cfg: PipelineConfig, tag: str, configs: dict[str, RunConfig], splits: Splits) -> RunResult:
    """Phase 1, the teacher, in the run folder the pipeline reads it from (a finished one is reused), so a teacher
    trained ahead of the pipeline (``distillation.scripts.train_teachers``) is the one its pairs distil from."""
    tqdm.write(f"[{tag}] 1/4 teacher {configs['teacher'].model.llm_model}")
    name = run_names(configs, cfg.candidates[0], cfg.init_from_baseline)["teacher"]
    return train_phase(configs["teacher"], name, splits, seeded_builder(configs["teacher"], splits))


def print_rows(rows: Sequence[dict[str, Any]]) -> None:
    """One line per row: accuracy of teacher, baseline and distilled student at 30 and 60 min, and the speed-up."""
    head = f"{'patient':>10} {'teacher':>10} {'student':>10} {'RMSE30 T/B/D':>22} {'RMSE60 T/B/D':>22} {'speed-up':>8}"
    print(head)
    for r in rows:
        f = lambda p, m: "/".join(f"{r[f'{x}_{m}']:.1f}" for x in p)  # noqa: E731
        trio = ("teacher", "baseline", "distilled")
        print(f"{str(r['patient']):>10} {r['teacher']:>10} {r['student']:>10} {f(trio, 'rmse_30'):>22} "
              f"{f(trio, 'rmse_60'):>22} {r['speedup_b1']:>8.2f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The pipeline's command line (``python -m distillation.pipeline``): 0 when every row is written, 2 on a user
    error (one line), 130 when interrupted."""

    def body() -> int:  # run_cli makes warnings one line each
        args = build_parser().parse_args(argv)
        cfg = config_from_args(args)
        if args.dry_run:
            print(plan(cfg))
            return 0
        rows = run_pipeline(cfg)
        print_rows(rows)
        print(f"results: {cfg.csv_path}")
        return 0

    return run_cli(body, "interrupted: finished phases are kept and reused on the next run")


if __name__ == "__main__":  # `python -m distillation.pipeline` is the documented command
    sys.exit(main())
