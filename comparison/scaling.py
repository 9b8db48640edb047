"""How each model family scales with data: RMSE against the number of training-window presentations.

``python -m scripts.compare_models --scaling`` (resumable, ``--shard``, ``--plan``, ``--merge`` and ``--report``
like ``--standard``): the 12 bundled patients pooled, inputs MS (glucose + basal, bolus, carbs), every test window
scored. A point ranks methods at one stated, equal budget, so every gradient-trained row of a budget sees the same
number of training windows:

- budgets (``BUDGETS``, or ``--budgets``) of 1k, 4k, 16k and 64k training-window presentations, spread over at most
  ``EPOCHS`` epochs of ``budget / EPOCHS`` windows each, drawn fresh every epoch from all training windows
  (``data_provider/draws.py``); ``full`` is one pass's worth of presentations (every training window once, on
  average, over the epochs), for the rows that afford it on 2 cores;
- early stopping on a fixed ``VAL_WINDOWS`` validation windows ends a run (patience ``PATIENCE``), the learning rate
  warmed up then held constant (``lradj constant``: no schedule reaches zero at the epoch cap, so a run that is
  still improving at its cap is reported as capped, never as converged); each model's learning rate, batch size and
  warm-up from its recipe (``exp/recipes.py``);
- Ridge is fitted in closed form on as many distinct windows as the budget (the first epoch's draw);
- rows: Ridge, DLinear, PatchTST, Time-LLM (pretrained MiniLM), Time-LLM (random backbone), Time-LLM w/o LLM and
  LLM2Trsf; Time-LLM as the default run builds and optimises it (``exp.recipes.DEFAULT_RUN_MODEL``: no dataset
  description, MiniLM's first layer; ``DEFAULT_RUN_TRAIN``: batch 32), so that the study's cells fit 2 CPU cores,
  and its LLM-free ablations at batch 32 too (``SCALING_ABLATION_TRAIN``), as the study began with them.

Outputs in ``--out`` (default ``checkpoints/scaling``; the published study: ``--out docs/results/scaling``):
``tidy.csv`` and ``per_patient.csv`` as every grid writes them, ``summary.csv`` (``model``, ``budget``, ``seeds``,
RMSE means and sds, ``capped``), ``scaling_30.png`` and ``scaling_60.png`` (RMSE against budget, log x, persistence
as a line) and ``summary.md`` saying where the curves cross, rewritten after every finished run.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from comparison.grid import Cell, Grid, Variant
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from configs.flags import check_config
from configs.identity import identity
from exp.recipes import DEFAULT_RUN_MODEL, SCALING_ABLATION_TRAIN, apply_recipe, default_run_train, recipe_for
from utils.cgm import NAMED_HORIZONS_MIN
from utils.cli import split_list
from utils.errors import LLMTimeError

BUDGETS = ("1000", "4000", "16000", "64000")
SEEDS = (2021, 2022, 2023)
EPOCHS, PATIENCE, VAL_WINDOWS = 8, 3, 1_000
FULL = "full"


def rows(backbone: str) -> list[Variant]:
    """The study's rows, all on inputs MS, in display order."""
    b = backbone
    return [
        Variant("Ridge", features="MS"), Variant("DLinear", features="MS"), Variant("PatchTST", features="MS"),
        Variant("TimeLLM", b, features="MS"),
        Variant("TimeLLM", b, features="MS", llm_weights="random", name="TimeLLM_random"),
        Variant("TimeLLM_woLLM", b, features="MS"), Variant("TimeLLM_LLM2Trsf", b, features="MS"),
    ]


def parse_budgets(text: Optional[str]) -> list[str]:
    """``--budgets``: comma-separated positive window counts and/or ``full``."""
    budgets = list(BUDGETS) if text is None else split_list(text, unique=True)
    for b in budgets:
        if b != FULL and not (b.isdigit() and int(b) >= EPOCHS):
            raise LLMTimeError(f"--budgets takes window counts of at least {EPOCHS} (one per epoch) or '{FULL}', "
                               f"got {b!r}")
    if not budgets:
        raise LLMTimeError("--budgets is empty")
    return budgets


def budget_config(base: RunConfig, v: Variant, budget: str, seed: int, patients: tuple[str, ...],
                  one_pass: Optional[int] = None) -> RunConfig:
    """One cell's configuration: the row's model and recipe, the budget as windows per epoch (Ridge: the windows
    it is fitted on), the fixed validation set, constant learning rate after warm-up, early stopping. ``full`` is
    ``one_pass`` presentations (the training windows of ``patients``) over the epochs; Ridge then fits on every
    window."""
    trained = recipe_for(v.model) is not None
    if budget == FULL and trained and one_pass is None:
        raise LLMTimeError("the full budget needs the number of training windows (one_pass)")
    total = (one_pass if trained else None) if budget == FULL else int(budget)
    per_epoch = None if total is None else (-(-total // EPOCHS) if trained else total)
    data = dataclasses.replace(base.data, patients=list(patients), max_train_windows=per_epoch,
                               max_val_windows=VAL_WINDOWS)
    train = dataclasses.replace(base.train, seed=seed)
    if trained:
        # Time-LLM's rows optimise as the default run does (batch 32: a batch of 128 would take one step per epoch at
        # the smallest budgets), its LLM-free ablations at batch 32 too, the other rows with their own recipes
        pinned = {**default_run_train(v.model), **SCALING_ABLATION_TRAIN.get(v.model, {})}
        train = apply_recipe(train, v.model, {**pinned, "train_epochs": EPOCHS, "patience": PATIENCE,
                                              "lradj": "constant"})
    from models import model_spec  # deferred: the registry loads torch, which --help does not need

    timellm = DEFAULT_RUN_MODEL if model_spec(v.model).timellm_family else {}
    model = dataclasses.replace(base.model, model=v.model, llm_model=v.backbone or base.model.llm_model,
                                llm_weights=v.llm_weights, **timellm)
    cfg = dataclasses.replace(base, data=data, train=train, model=model)
    check_config(cfg)
    return cfg


def build_grid(base: RunConfig, backbone: str, patients: list[str], seeds: list[int], budgets: list[str],
               models: Optional[str] = None) -> tuple[Grid, dict[str, str]]:
    """The study's cells in run order (budget, then seed, then row: a partial study covers every row at the small
    budgets first) and each cell key's budget."""
    grid_rows = rows(backbone)
    if models is not None:
        wanted = {m.lower() for m in split_list(models, unique=True)}
        unknown = wanted - {v.model_name.lower() for v in grid_rows}
        if unknown or not wanted:
            raise LLMTimeError(f"unknown --models {', '.join(sorted(unknown)) or '(empty)'} for --scaling; choose "
                               f"from: {', '.join(v.model_name for v in grid_rows)}")
        grid_rows = [v for v in grid_rows if v.model_name.lower() in wanted]
    group = tuple(patients)
    one_pass = training_windows(base, group) if FULL in budgets else None
    cells, budget_of = [], {}
    for budget in budgets:
        for seed in seeds:
            for v in grid_rows:
                cfg = budget_config(base, v, budget, seed, group, one_pass)
                cell = Cell(v, group, seed, identity(cfg), cfg)
                cells.append(cell)
                budget_of[cell.key] = budget
    return Grid("scaling", base, cells, [v.label for v in grid_rows]), budget_of


def training_windows(base: RunConfig, patients: tuple[str, ...]) -> int:
    """How many training windows the study's patients hold: ``full``'s one pass. Counted by building the splits
    (seconds), since another cohort or data set holds another number."""
    from data_provider.data_factory import build_splits  # deferred: the data layer loads torch

    return len(build_splits(dataclasses.replace(base.data, patients=list(patients))).train)


def base_config(data: str, root_path: Optional[str], llm_path: Optional[str], runs_dir: Path,
                precision: str) -> RunConfig:
    """What every cell shares: where runs go, the data, MS inputs, the precision, resumable training."""
    return RunConfig(model_id="scaling", des="scaling", checkpoints=str(runs_dir),
                     results_csv=str(runs_dir / "results.csv"),
                     data=DataConfig(data=data, root_path=root_path, covariates=True),
                     model=ModelConfig(llm_path=llm_path),
                     train=TrainConfig(mixed_precision=precision, resume=True))


def summarise(rows_: pd.DataFrame, budget_of: dict[str, str], labels: list[str],
              runs_dir: Optional[Path] = None) -> pd.DataFrame:
    """One line per row and budget: seeds run, RMSE mean and sd over seeds, runs capped, windows seen, and the mean
    best validation loss (the row's ``best_val_loss``, else its run's ``metrics.json`` under ``runs_dir``; with the
    number of runs it is known for), the number a budget is chosen on: test RMSE never chooses anything."""
    recorded = (pd.to_numeric(rows_["best_val_loss"], errors="coerce") if "best_val_loss" in rows_
                else pd.Series(np.nan, index=rows_.index))
    rows_ = rows_.assign(budget=rows_["cell_key"].map(budget_of),
                         val_loss=[v if pd.notna(v) else validation_loss(runs_dir, r)
                                   for v, r in zip(recorded, rows_["run_id"])])
    out = []
    for label in labels:
        for budget in dict.fromkeys(budget_of.values()):
            g = rows_[(rows_["label"] == label) & (rows_["budget"] == budget)]
            if g.empty:
                continue
            capped = g["capped"].astype(str).str.lower().isin(("true", "1")) if "capped" in g else pd.Series(False)
            rec = {"model": label, "budget": budget, "seeds": len(g), "capped": int(capped.sum()),
                   "train_windows_seen": _seen(g)}
            for h in NAMED_HORIZONS_MIN:
                values = pd.to_numeric(g[f"rmse_{h}"], errors="coerce")
                rec[f"rmse_{h}_mean"] = values.mean()
                rec[f"rmse_{h}_sd"] = values.std(ddof=1) if len(g) > 1 else np.nan
                rec[f"persistence_rmse_{h}"] = pd.to_numeric(g[f"persistence_rmse_{h}"], errors="coerce").mean()
            rec["val_loss_mean"] = g["val_loss"].mean()
            rec["val_loss_runs"] = int(g["val_loss"].notna().sum())
            out.append(rec)
    return pd.DataFrame(out)


def validation_loss(runs_dir: Optional[Path], run_id: str) -> float:
    """A finished run's best validation loss (scaled MSE on the study's fixed validation windows), NaN where its
    folder is not at hand (a merged shard's runs on another machine)."""
    from exp.reuse import METRICS_NAME, read_json  # deferred: the engine loads torch, which --help does not need

    metrics = None if runs_dir is None else read_json(Path(runs_dir) / str(run_id) / METRICS_NAME)
    loss = None if metrics is None else metrics.get("fit", {}).get("best_val_loss")
    return math.nan if loss is None else float(loss)


def _seen(g: pd.DataFrame) -> float:
    """Mean training windows the runs saw: presentations for gradient-trained runs, the distinct windows a
    closed-form fit used (its one epoch's draw) for the others."""
    seen = pd.to_numeric(g.get("train_windows_seen"), errors="coerce")
    fitted = pd.to_numeric(g.get("train_windows_per_epoch"), errors="coerce")
    closed_form = pd.to_numeric(g.get("epochs_run"), errors="coerce").fillna(0) == 0
    return float(seen.where(~closed_form, fitted).mean())


def budget_value(budget: str, seen: float) -> float:
    """Where a budget sits on the x axis: its count, or for ``full`` the windows the runs saw."""
    return float(budget) if budget != FULL else seen


def crossings(summary: pd.DataFrame, horizon: int) -> list[str]:
    """Plain sentences: the best row at each budget, and each pair of rows whose order changes between budgets."""
    lines = []
    column = f"rmse_{horizon}_mean"
    budgets = list(dict.fromkeys(summary["budget"]))
    for b in budgets:
        at = summary[summary["budget"] == b].sort_values(column)
        lines.append(f"- {horizon} min, budget {b}: best {at.iloc[0]['model']} ({at.iloc[0][column]:.2f} mg/dL); "
                     + ", ".join(f"{r['model']} {r[column]:.2f}" for _, r in at.iloc[1:].iterrows()))
    models = list(dict.fromkeys(summary["model"]))
    crossed = []
    for i, a in enumerate(models):
        for b_ in models[i + 1:]:
            signs = []
            for b in budgets:
                pa = summary[(summary["model"] == a) & (summary["budget"] == b)][column]
                pb = summary[(summary["model"] == b_) & (summary["budget"] == b)][column]
                if len(pa) and len(pb):
                    signs.append((b, math.copysign(1, float(pa.iloc[0]) - float(pb.iloc[0]))))
            for (b0, s0), (b1, s1) in zip(signs, signs[1:]):
                if s0 != s1:
                    leader = a if s1 < 0 else b_
                    crossed.append(f"- {horizon} min: {a} and {b_} cross between budgets {b0} and {b1}; "
                                   f"{leader} is ahead at {b1}")
    return lines + (crossed or [f"- {horizon} min: no two rows change order within the budgets run"])


def write_report(out: Path, grid: Grid, budget_of: dict[str, str], command: str) -> str:
    """summary.csv, summary.md and the two charts from the finished cells in ``out``."""
    from comparison.markdown import run_time_line
    from comparison.report import grid_rows
    from utils.io import atomic_path, write_text
    from utils.plots import plot_scaling

    found, _, others = grid_rows(out, grid)
    if found.empty:
        return f"no finished run of the scaling study in {out} yet"
    summary = summarise(found, budget_of, grid.labels, Path(grid.base.checkpoints))
    with atomic_path(out / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    for h in NAMED_HORIZONS_MIN:
        curves = {m: ([budget_value(r["budget"], r["train_windows_seen"]) for _, r in g.iterrows()],
                      list(g[f"rmse_{h}_mean"]), list(g[f"rmse_{h}_sd"]))
                  for m, g in summary.groupby("model", sort=False)}
        plot_scaling(curves, float(summary[f"persistence_rmse_{h}"].mean()), out / f"scaling_{h}.png",
                     f"RMSE at {h} min against training windows seen (mean ± sd over seeds)")
    planned, done = len(grid.cells), len(found)
    capped = int(summary["capped"].sum())
    lines = [
        "# Scaling study: RMSE against training-window presentations", "",
        f"Command: `{command}`", "",
        ("Complete" if done == planned else f"**Partial: {done} of {planned} planned runs**") + f" (pooled over "
        f"{len(grid.cells[0].patients)} patients, inputs MS, every test window scored). Budgets and protocol: "
        "`comparison/scaling.py`. Gradient-trained rows see `budget / "
        f"{EPOCHS}` fresh windows per epoch for at most {EPOCHS} epochs, early stopping with patience {PATIENCE} on "
        f"{VAL_WINDOWS:,} fixed validation windows, constant learning rate after warm-up; Ridge is fitted on `budget` "
        "distinct windows. Capped: runs the epoch cap ended with their best epoch among the last "
        f"{PATIENCE} ({capped} of {done}); their point would move with a larger budget. " + run_time_line(found), "",
        "Validation loss: the mean best validation loss (scaled MSE, the number budgets are chosen on)"
        + ("; \"(k of n)\": only k of the n runs recorded it (in their row or their run folder)."
           if (summary["val_loss_runs"] < summary["seeds"]).any() else "."), "",
        "| model | budget | seeds | validation loss | RMSE 30 | RMSE 60 | capped | windows seen |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {r['model']} | {r['budget']} | {r['seeds']} | {_val_loss(r)} | {_cell(r, 30)} | "
          f"{_cell(r, 60)} | {r['capped']} | {r['train_windows_seen']:,.0f} |" for _, r in summary.iterrows()),
        "", f"Persistence on the same test windows: {summary['persistence_rmse_30'].mean():.2f} / "
        f"{summary['persistence_rmse_60'].mean():.2f} mg/dL.", *worse_than_persistence(summary), "",
        "## Where the curves cross", "",
        *crossings(summary, 30), *crossings(summary, 60), "",
        "![RMSE at 30 min](scaling_30.png)", "![RMSE at 60 min](scaling_60.png)",
    ] + ([f"\n{others} run(s) in tidy.csv have other settings than this study's cells (e.g. an earlier Time-LLM "
          "configuration) and are left out of this summary."] if others else [])
    text = "\n".join(lines) + "\n"
    write_text(out / "summary.md", text)
    return text


def worse_than_persistence(summary: pd.DataFrame) -> list[str]:
    """A line naming every point that forecasts worse than persistence at either horizon: kept in the curve (it is
    what that budget buys), never passed over."""
    worse = [f"{r['model']} at budget {r['budget']}" for _, r in summary.iterrows()
             if any(r[f"rmse_{h}_mean"] > r[f"persistence_rmse_{h}"] for h in NAMED_HORIZONS_MIN)]
    return ["", f"**Worse than persistence**: {', '.join(worse)}."] if worse else []


def _val_loss(r: pd.Series) -> str:
    known = int(r.get("val_loss_runs", r["seeds"]))
    if not known:
        return "–"
    return f"{r['val_loss_mean']:.4f}" + (f" ({known} of {r['seeds']})" if known < r["seeds"] else "")


def _cell(r: pd.Series, h: int) -> str:
    sd = r[f"rmse_{h}_sd"]
    return f"{r[f'rmse_{h}_mean']:.2f}" + ("" if pd.isna(sd) else f" ± {sd:.2f}")
