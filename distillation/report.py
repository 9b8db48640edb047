"""One distillation CSV row: sizes, CPU latency, the three phases' test accuracy, retention and agreement, and
how the row was produced (chosen weights, training and cache costs, reused phases, run folders).

Column order is the CSV's, so existing result files keep their layout.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd
from torch import nn

from bench.latency import latency_ms
from data_provider.data_factory import Splits
from distillation.candidates import Candidate
from distillation.config import config_key, role_label, teacher_kind
from distillation.group import Group
from distillation.losses import backbone_depth, format_layer_map
from distillation.measure import agreement, agreement_of, checkpoint_mb, predictions, size_mb
from distillation.search import Search
from exp.accelerator import device_name
from exp.reuse import METRICS_NAME, read_json
from exp.run import RunResult
from exp.trainer import count_parameters
from utils.cgm import NAMED_HORIZONS_MIN
from utils.error_grids import clarke_zones, zone_shares

LATENCY_WINDOWS = 64
ACCURACY = ("rmse_30", "rmse_60", "mae_30", "mae_60", "clarke_ab_30", "clarke_ab_60")
LATER_ACCURACY = ("mard_30", "mard_60", "lag_30", "lag_60")  # absent from runs reused from before they existed


def measure_latency(splits: Splits, teacher: nn.Module, student: nn.Module, repeats: int,
                    threads: int, teacher_splits: Optional[Splits] = None) -> dict[str, float]:
    """CPU ms per window of teacher and student at batch 1 and batch ``LATENCY_WINDOWS``, on the first test
    windows (the teacher on its own view of them, ``teacher_splits``, default ``splits``), with the speed-ups built
    from them; batch 1 gets ``repeats`` (--latency-repeats), the large batch a quarter (at least 3)."""
    lat = {}
    for role, model, own in (("teacher", teacher, teacher_splits or splits), ("student", student, splits)):
        windows = own.test.__getitems__(list(range(min(LATENCY_WINDOWS, len(own.test)))))["x"]
        for batch in (1, LATENCY_WINDOWS):
            n = repeats if batch == 1 else max(3, repeats // 4)
            lat[f"{role}_latency_b{batch}_ms"] = round(latency_ms(model, windows, batch, n, threads), 3)
    for batch in (1, LATENCY_WINDOWS):
        lat[f"speedup_b{batch}"] = round(lat[f"teacher_latency_b{batch}_ms"] / lat[f"student_latency_b{batch}_ms"], 3)
    return lat


def machine_load() -> dict[str, Any]:
    """Which machine takes the latencies and how busy it is: other jobs inflate the ms (less so the speed-ups), and
    this project's CPUs differ 2-3x in speed."""
    return {"load_average_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(), "timed_on": device_name()}


def report_row(
    group: Group,
    search: Search,
    lat: dict[str, float],
    t_start: float,
    int8: dict[str, Optional[float]],
) -> dict[str, Any]:
    """The CSV row of one patient (or pooled group); ``t_start`` is when the group began (perf_counter); ``int8`` is
    ``distillation.deploy.int8_figures`` of the distilled student.

    The columns added later (persistence, size reduction, INT8, machine load) come last, so older CSVs keep their
    layout."""
    cfg, tag, configs, splits = group.cfg, group.tag, group.configs, group.splits
    teacher, baseline = group.teacher, group.baseline
    distilled, chosen = search.distilled, search.weights
    t_train, t_total = count_parameters(teacher.model)
    s_train, s_total = count_parameters(distilled.model)
    row: dict[str, Any] = {
        "config_key": config_key(cfg, configs),
        "patient": tag,
        "dataset": cfg.data.data,
        "seed": cfg.train.seed,
        "teacher": configs["teacher"].model.llm_model,
        "student": role_label(configs["baseline"].model),
        "teacher_layers": backbone_depth(teacher.model),
        "student_layers": backbone_depth(distilled.model),
        "teacher_weights": teacher.model.weights_source,
        "student_weights": distilled.model.weights_source,
        "teacher_params_total": t_total,
        "teacher_params_trainable": t_train,
        "student_params_total": s_total,
        "student_params_trainable": s_train,
        "teacher_size_mb": size_mb(t_total),
        "student_size_mb": size_mb(s_total),
        "teacher_checkpoint_mb": checkpoint_mb(teacher.run_dir),
        "student_checkpoint_mb": checkpoint_mb(distilled.run_dir),
        **lat,  # the four latencies, then the two speed-ups
        "latency_threads": cfg.latency_threads,
    }
    row.update(accuracy_columns(teacher, baseline, distilled))
    row.update({
        "alpha": chosen.alpha,
        "beta": chosen.beta,
        "gamma": chosen.gamma,
        "weights_chosen_by": ("given" if cfg.weights is not None and len(cfg.search_space) == 1
                              else f"validation ({len(cfg.search_space)} candidates)"),
        "distilled_val_mse": round(float(distilled.fit["best_val_loss"]), 6),
        "baseline_val_mse": round(float(baseline.fit["best_val_loss"]), 6),
        "layer_map": format_layer_map(search.pairs) if chosen.gamma else "none",
        "init_from_baseline": cfg.init_from_baseline,
        "teacher_train_s": round(float(teacher.fit["train_seconds"]), 1),
        "baseline_train_s": round(float(baseline.fit["train_seconds"]), 1),
        "distill_train_s": round(float(distilled.fit["train_seconds"]), 1),
        "distill_search_s": round(search.seconds, 1),
        "teacher_cache_s": round(sum((c.seconds for c in search.caches), 0.0), 1),
        "teacher_cache_mb": round(sum((c.nbytes for c in search.caches), 0) / 1e6, 2),
        "teacher_epochs": cfg.teacher_epochs,
        "student_epochs": cfg.student_epochs,
        "distill_epochs": cfg.distill_epochs,
        "train_windows": len(splits.train),
        "test_windows": len(splits.test),
        "reused_phases": " ".join(p for p, ph in (("teacher", teacher), ("baseline", baseline)) if ph.reused) or "none",
        "wall_s": round(time.perf_counter() - t_start, 1),
        "teacher_run": str(teacher.run_dir),
        "baseline_run": str(baseline.run_dir),
        "distilled_run": str(distilled.run_dir),
        **persistence(teacher, distilled),
        "size_reduction_pct": round(100.0 * (1.0 - s_total / t_total), 2),
        **int8,
        **machine_load(),
        "teacher_kind": teacher_kind(configs),
        "teacher_data": search.candidate.teacher_data,  # the chosen candidate's share of teacher-only windows
        "mixup_alpha": search.candidate.mixup_alpha,
        "search_val_mse": format_losses(search.losses),
        "search_test_rmse": format_test_rmse(search.tests),
        **convergence_columns(teacher, baseline, distilled),
        "trained_on": trained_on(teacher, baseline, distilled),
    })
    return row


def trained_on(*runs: RunResult) -> str:
    """The machines the runs were trained on ('; ' between several): a report's rows may span sessions on different
    CPUs, whose float results differ in the last digits and whose times differ 2-3x."""
    return "; ".join(dict.fromkeys(str(r.row["device"]) for r in runs if r.row.get("device"))) or "unknown"


def convergence_columns(teacher: RunResult, baseline: RunResult, distilled: RunResult) -> dict[str, str]:
    """Each phase's early-stopping verdict (``exp.curves``: 'converged', 'capped' or 'not trained'), as its run
    recorded it, so the report can count the runs the epoch cap ended while still improving after the run folders
    are gone."""
    return {f"{phase}_convergence": str(run.row.get("convergence", "unknown"))
            for phase, run in zip(PHASES, (teacher, baseline, distilled))}


def by_candidate(values: dict[Candidate, str]) -> str:
    """'a0.5_b0.5_g0=...;a0.5_b0.5_g0_td1=...': one value per searched candidate, named by its run-folder label, as
    the row's search columns record them (``read_by_label`` reads them back)."""
    return ";".join(f"{c.label()}={value}" for c, value in values.items())


def read_by_label(text: Any) -> Optional[dict[str, str]]:
    """A ``by_candidate`` column as label -> value text, in its order; None when it is empty or malformed."""
    if not isinstance(text, str) or not text.strip():
        return None
    pairs = [item.split("=", 1) for item in text.split(";")]
    return None if any(len(p) != 2 for p in pairs) else dict(pairs)


def format_losses(losses: dict[Candidate, float]) -> str:
    """Each searched distilled student's best validation MSE (``by_candidate``), so a later seed can take this seed's
    levers from the CSV after the run folders are gone."""
    return by_candidate({c: f"{loss:.6g}" for c, loss in losses.items()})


def parse_losses(text: Any, space: list[Candidate]) -> Optional[dict[Candidate, float]]:
    """``format_losses`` read back onto the candidates of ``space`` (search order); None when the column is empty
    or names a candidate ``space`` lacks (a row of another search)."""
    found = read_by_label(text)
    by_label = {c.label(): c for c in space}
    if found is None or any(label not in by_label for label in found):
        return None
    return {c: float(found[c.label()]) for c in space if c.label() in found}


def format_test_rmse(tests: dict[Candidate, tuple[float, float]]) -> str:
    """Each searched distilled student's test RMSE at 30 and 60 min ('r30/r60', ``by_candidate``): reported beside
    the validation losses that chose, never used to choose."""
    return by_candidate({c: f"{r30:.4f}/{r60:.4f}" for c, (r30, r60) in tests.items()})


def read_test_rmse(text: Any) -> dict[str, tuple[float, float]]:
    """``format_test_rmse`` read back: label -> (RMSE30, RMSE60); empty when the column is empty or malformed."""
    found = read_by_label(text) or {}
    cells = {label: value.split("/") for label, value in found.items()}
    return {label: (float(v[0]), float(v[1])) for label, v in cells.items() if len(v) == 2}


def accuracy_columns(teacher: RunResult, baseline: RunResult, distilled: RunResult) -> dict[str, Any]:
    """Each phase's accuracy, then how much of the teacher's accuracy the distilled student keeps (retention) and how
    often the students' forecasts agree with the teacher's."""
    row: dict[str, Any] = {}
    for prefix, phase in (("teacher", teacher), ("baseline", baseline), ("distilled", distilled)):
        for metric in ACCURACY:
            row[f"{prefix}_{metric}"] = phase.row[metric]
        for metric in LATER_ACCURACY:
            row[f"{prefix}_{metric}"] = phase.row.get(metric)
    return {
        **row,
        "retention_30": _ratio(teacher.row["rmse_30"], distilled.row["rmse_30"]),
        "retention_60": _ratio(teacher.row["rmse_60"], distilled.row["rmse_60"]),
        "agreement_30": agreement(teacher.run_dir, distilled.run_dir, 30),
        "agreement_60": agreement(teacher.run_dir, distilled.run_dir, 60),
        "baseline_agreement_30": agreement(teacher.run_dir, baseline.run_dir, 30),
        "baseline_agreement_60": agreement(teacher.run_dir, baseline.run_dir, 60),
    }


def persistence(teacher: RunResult, distilled: RunResult) -> dict[str, Optional[float]]:
    """Persistence RMSE at 30 and 60 min on the row's test windows, as the teacher's run scored it (every phase
    of a row shares its test windows; the distilled run's figures stand in for a teacher run that predates them)."""
    return {f"persistence_rmse_{m}": teacher.row.get(f"persistence_rmse_{m}",
                                                      distilled.row.get(f"persistence_rmse_{m}"))
            for m in NAMED_HORIZONS_MIN}


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 4) if a is not None and b else None


PHASES = ("teacher", "baseline", "distilled")


def runs_here(row: dict[str, Any], phases: Sequence[str], names: Sequence[str]) -> bool:
    """Whether the run folders of a pooled row's ``phases`` hold the files ``names`` on this machine: the folders are
    git-ignored, so a report grown over sessions has rows whose runs another machine trained."""
    return all((Path(str(row[f"{phase}_run"])) / name).is_file() for phase in phases for name in names)
PER_PATIENT = ("rmse_30", "rmse_60", "mae_30", "mae_60", "mard_30", "mard_60", "lag_30", "lag_60")


def per_patient_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per test patient of a pooled row (``--all-patients``): each phase's accuracy on that patient's test
    windows (from its run's per-patient scores, Clarke A+B from its scored forecasts), persistence on the same
    windows, retention and agreement on that patient, and its scored targets at 30 and 60 min; the rest (sizes,
    latency, chosen weights, costs, ``test_windows``) is the pooled row's. ``group`` keeps the pooled row's tag."""
    runs = {phase: Path(row[f"{phase}_run"]) for phase in PHASES}
    metrics = {phase: read_json(run / METRICS_NAME) for phase, run in runs.items()}
    forecasts = {phase: predictions(run) for phase, run in runs.items()}
    out = []
    for pid in sorted(metrics["teacher"]["per_patient"]):
        r: dict[str, Any] = {**row, "patient": pid, "group": row["patient"]}
        mine = {phase: f[f["patient"] == pid] for phase, f in forecasts.items()}
        for phase in PHASES:
            scores = metrics[phase]["per_patient"][pid]
            r.update({f"{phase}_{m}": scores.get(m) for m in PER_PATIENT})
            for minutes in NAMED_HORIZONS_MIN:
                at = mine[phase][mine[phase]["horizon_min"] == minutes].dropna(subset=["truth", "forecast"])
                r[f"{phase}_clarke_ab_{minutes}"] = zone_shares(clarke_zones(at["truth"], at["forecast"]))["A+B"]
        last_reading = metrics["teacher"]["persistence"]["per_patient"][pid]  # not the module's persistence()
        for minutes in NAMED_HORIZONS_MIN:
            r[f"persistence_rmse_{minutes}"] = last_reading[f"rmse_{minutes}"]
            r[f"retention_{minutes}"] = _ratio(r[f"teacher_rmse_{minutes}"], r[f"distilled_rmse_{minutes}"])
            r[f"agreement_{minutes}"] = agreement_of(mine["teacher"], mine["distilled"], minutes)
            r[f"baseline_agreement_{minutes}"] = agreement_of(mine["teacher"], mine["baseline"], minutes)
            r[f"scored_{minutes}"] = int(last_reading[f"n_{minutes}"])  # this patient's scored targets
        out.append(r)
    return out
