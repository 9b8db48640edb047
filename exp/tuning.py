"""Recipe sweeps on validation: train each grid point until validation stops improving, never look at test.

``python -m scripts.tune --model TimeLLM --grid learning_rate=1e-3,3e-3 batch_size=32,128 ...`` trains one model
per grid point on the same training windows, records its learning curve, its best validation loss, its validation
RMSE at 30 and 60 minutes in mg/dL and persistence's on the same validation windows, and appends one CSV row per
point as it finishes (a rerun skips the points already in the CSV, so a sweep interrupted in the background resumes).
The winner per model (lowest validation loss) is what ``exp/recipes.py`` records; its curve is drawn as a PNG.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from data_provider.data_factory import Splits, build_splits, fit_windows, make_loader, windows_per_epoch
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from configs.identity import identity
from exp.curves import convergence, save_learning_curve
from exp.evaluation import forecasts_mgdl, persistence_forecast, truth_mgdl
from exp.trainer import Trainer
from models import build_model
from utils.cgm import NAMED_HORIZONS_MIN
from utils.errors import LLMTimeError
from utils.metrics import horizon_metrics
from utils.results import append_row
from utils.seed import seed_everything

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _field(name: str) -> tuple[str, dataclasses.Field]:
    """The config section and field a grid or --set key names (a bare field name, unique across sections)."""
    found = [(section, f) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls) if f.name == name]
    if not found:
        raise LLMTimeError(f"unknown setting {name!r}: use a field of DataConfig, ModelConfig or TrainConfig")
    return found[0]


def _parse_value(name: str, text: str) -> Any:
    _, f = _field(name)
    kind = str(f.type)
    if text.lower() == "none" and "Optional" in kind:
        return None
    try:
        if "list" in kind:  # patient lists: 1001+1002 (commas separate grid values)
            return [v for v in text.split("+") if v]
        if "bool" in kind:
            if text.lower() not in ("0", "1", "true", "false"):
                raise ValueError
            return text.lower() in ("1", "true")
        if "int" in kind:
            return int(text)
        if "float" in kind:
            return float(text)
    except ValueError:
        raise LLMTimeError(f"{name}={text!r}: expected a {kind.replace('Optional', '')}") from None
    return text


def parse_assignments(items: list[str], many: bool) -> dict[str, list[Any]]:
    """``key=v1,v2`` items -> {key: [values]} (``many`` False: exactly one value each)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise LLMTimeError(f"{item!r}: write key=value{',value...' if many else ''}")
        parsed = [_parse_value(key, v) for v in values.split(",")]
        if not many and len(parsed) != 1:
            raise LLMTimeError(f"{item!r}: one value per --set key")
        out[key] = parsed
    return out


def with_settings(cfg: RunConfig, settings: dict[str, Any]) -> RunConfig:
    """A copy of ``cfg`` with bare-field-name settings applied to their sections."""
    parts = {name: dataclasses.replace(getattr(cfg, name)) for name in SECTIONS}
    for key, value in settings.items():
        section, _ = _field(key)
        setattr(parts[section], key, value)
    return dataclasses.replace(cfg, **parts)


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def point_key(cfg: RunConfig) -> str:
    """Identifies a grid point's configuration in the sweep CSV: its run identity (``configs.identity``)."""
    return identity(cfg)


def finished_points(out_csv: Path) -> set[str]:
    """The keys of the points ``out_csv`` records, recomputed from each row's saved configuration by today's rule,
    so a sweep written before a change of that rule still resumes instead of training its points again."""
    if not out_csv.is_file():
        return set()
    return set(row_keys(pd.read_csv(out_csv, dtype={"key": str})))  # hex, as text


def row_keys(rows: pd.DataFrame) -> list[str]:
    """Each sweep row's point key, recomputed from its saved configuration by today's rule."""
    return [point_key(RunConfig.from_dict(json.loads(config))) for config in rows["config"]]


def validation_rmse(trainer: Trainer, splits: Splits, batch_size: int) -> dict[str, float]:
    """Best-weights and persistence RMSE (mg/dL) at 30 and 60 min on the validation windows (all fully scored),
    computed by the evaluation code and metrics every run's test uses; a horizon beyond the windows is left out."""
    pred, index = trainer.predict(make_loader(splits.val, batch_size, shuffle=False, seed=0))
    truth, mask = truth_mgdl(splits.val)
    forecasts = {"val": forecasts_mgdl(pred, index, splits.val, splits.scaler),
                 "persistence_val": persistence_forecast(splits.val, splits.scaler)}
    out = {}
    for name, f in forecasts.items():
        scores = horizon_metrics(truth, f, mask)
        out.update({f"{name}_rmse_{m}": scores[f"rmse_{m}"] for m in NAMED_HORIZONS_MIN
                    if scores[f"rmse_{m}"] is not None})
    return out


def run_point(cfg: RunConfig, splits: Splits) -> dict[str, Any]:
    """Train one configuration on ``splits`` (validation picks the epoch), return its sweep row."""
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, cfg.data, splits.scaler, splits.description)
    t = cfg.train
    model.fit_closed_form(fit_windows(splits, t.seed))
    trainer = Trainer(t, model)
    t0 = time.perf_counter()
    fit = trainer.fit(make_loader(splits.train, t.batch_size, shuffle=True, seed=t.seed,
                                  per_epoch=splits.train_per_epoch),
                      make_loader(splits.val, t.eval_batch_size, shuffle=False, seed=t.seed))
    verdict = convergence(fit.history, t.patience)
    return {
        "best_val_loss": fit.best_val_loss, "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run,
        "verdict": verdict.verdict, **validation_rmse(trainer, splits, t.eval_batch_size),
        "train_windows": len(splits.train), "train_windows_per_epoch": windows_per_epoch(splits),
        "train_windows_seen": fit.windows_seen, "val_windows": len(splits.val),
        "train_windows_per_s": round(fit.train_windows_per_s, 1), "seconds": round(time.perf_counter() - t0, 1),
        "history": json.dumps([{k: (round(v, 6) if isinstance(v, float) else v) for k, v in h.items()}
                               for h in fit.history]),
    }


def sweep(base: RunConfig, grid: dict[str, list[Any]], out_csv: Path, log=print) -> pd.DataFrame:
    """Run every grid point not yet in ``out_csv``; return the CSV's rows for this base configuration."""
    done = finished_points(out_csv)
    splits_cache: dict[str, Splits] = {}
    points = grid_points(grid)
    for i, point in enumerate(points, 1):
        cfg = with_settings(base, point)
        key = point_key(cfg)
        label = " ".join(f"{k}={v}" for k, v in point.items())
        if key in done:
            log(f"[{i}/{len(points)}] {cfg.model.model} {label}: done earlier, skipped")
            continue
        data_key = json.dumps(dataclasses.asdict(cfg.data), sort_keys=True, default=str)
        if data_key not in splits_cache:
            splits_cache[data_key] = build_splits(cfg.data)
        log(f"[{i}/{len(points)}] {cfg.model.model} {label}: training")
        row = {"key": key, "model": cfg.model.model, "features": "MS" if cfg.data.covariates else "S",
               "point": json.dumps(point, sort_keys=True), "config": json.dumps(cfg.to_dict(), default=str),
               **run_point(cfg, splits_cache[data_key])}
        append_row(out_csv, row)
        log(f"    val loss {row['best_val_loss']:.4f} (epoch {row['best_epoch']}/{row['epochs_run']}, "
            f"{row['verdict']}); val RMSE30/60 {row.get('val_rmse_30', float('nan')):.2f}/"
            f"{row.get('val_rmse_60', float('nan')):.2f} vs persistence "
            f"{row.get('persistence_val_rmse_30', float('nan')):.2f}/"
            f"{row.get('persistence_val_rmse_60', float('nan')):.2f} mg/dL; {row['seconds']:.0f} s")
    return pd.read_csv(out_csv, dtype={"key": str})


MAX_EXTENSIONS = 4  # rounds a sweep may grow past its edges before it says its winner is still on one


def winner(rows: pd.DataFrame, base: RunConfig, points: list[dict[str, Any]]) -> dict[str, Any]:
    """The point of ``points`` (settings over ``base``) with the lowest validation loss among ``rows`` (a sweep
    CSV's), the first on ties. Rows are matched by their configuration's key, as ``sweep`` skips them, so a point
    another sweep ran under another label (one that swept the schedule at this rate, say) counts here too."""
    loss = dict(zip(row_keys(rows), rows["best_val_loss"]))
    scored = [(loss[key], i) for i, p in enumerate(points) if (key := point_key(with_settings(base, p))) in loss]
    return points[min(scored)[1]]


def beyond_edges(grid: dict[str, list[Any]], best: dict[str, Any]) -> dict[str, list[Any]]:
    """For each numeric key swept over 2+ values whose winner is its smallest or largest value: the grid with one
    more value past that edge, a step of the grid's own ratio there (its difference where a value is not
    positive). Keys with an interior winner, and non-numeric keys, are left as they are."""
    out = {}
    for key, values in grid.items():
        levels = sorted(set(values))
        if len(levels) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels):
            continue
        low, high = best[key] == levels[0], best[key] == levels[-1]
        if not (low or high):
            continue
        a, b = (levels[0], levels[1]) if low else (levels[-1], levels[-2])
        new = a * a / b if a > 0 and b > 0 else 2 * a - b
        new = round(new) if isinstance(a, int) else float(f"{new:.3g}")
        if new != a:
            out[key] = values + [new]
    return out


def extend_to_interior(base: RunConfig, grid: dict[str, list[Any]], out_csv: Path, check, log=print
                       ) -> tuple[pd.DataFrame, dict[str, list[Any]], list[str]]:
    """Sweep ``grid``, then while the winner sits on an edge of a numeric key, add the next value past that edge
    (``beyond_edges``) and sweep the new points, at most ``MAX_EXTENSIONS`` rounds. A value ``check`` refuses (a
    field's bound) ends that key's growth. Returns the CSV's rows, the final grid and a note per key still on an
    edge."""
    rows = sweep(base, grid, out_csv, log)
    for _ in range(MAX_EXTENSIONS):
        grown = beyond_edges(grid, winner(rows, base, grid_points(grid)))
        valid = {}
        for key, values in grown.items():
            try:
                check(with_settings(base, {key: values[-1]}))
                valid[key] = values
            except LLMTimeError as err:
                log(f"{key}={values[-1]} is outside its field's bounds ({err}); the sweep stops growing it")
        if not valid:
            break
        grid = {**grid, **valid}
        log("winner on an edge: extending " + ", ".join(f"{k} to {v[-1]}" for k, v in valid.items()))
        rows = sweep(base, grid, out_csv, log)
    best = winner(rows, base, grid_points(grid))
    notes = [f"{key}: the winner {best[key]} is still on an edge of {sorted(set(values))}"
             for key, values in beyond_edges(grid, best).items()]
    return rows, grid, notes


def draw_best_curves(rows: pd.DataFrame, folder: Path) -> list[Path]:
    """One learning-curve PNG per (model, features): the point with the lowest validation loss."""
    paths = []
    for (model, features), group in rows.groupby(["model", "features"]):
        best = group.loc[group["best_val_loss"].idxmin()]
        path = folder / f"curve_{model}_{features}.png"
        save_learning_curve(json.loads(best["history"]), path,
                            f"{model} ({features}) {best['point']}: best epoch {best['best_epoch']}, {best['verdict']}")
        paths.append(path)
    return paths


def summary_table(rows: pd.DataFrame) -> str:
    """Markdown: every point, best first within each (model, features)."""
    cols = ["model", "features", "point", "best_val_loss", "best_epoch", "epochs_run", "verdict", "val_rmse_30",
            "val_rmse_60", "persistence_val_rmse_30", "persistence_val_rmse_60", "train_windows_per_s", "seconds"]
    cols = [c for c in cols if c in rows]
    ordered = rows.sort_values(["model", "features", "best_val_loss"])[cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in ordered.iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)
