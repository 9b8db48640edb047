"""How long a grid's cells take, from per-window rates on this project's 2-core CPU: what ``--plan`` prints and how
the standard grid orders its cells (cheap first).

A cell costs its model's start-up, then per epoch its training windows at the training rate and its validation
windows at the inference rate (every epoch up to the maximum: an upper bound, since early stopping ends most runs
sooner), then every test window at the inference rate. Window counts are the bundled cohort's, shared out evenly
over its patients; for other data the estimate is only a guide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from comparison.grid import Cell
from exp.recipes import recipe_for


@dataclass(frozen=True)
class Rate:
    train: float  # training windows/s (Ridge: windows/s of its closed-form fit)
    infer: float  # validation and test windows/s
    startup: float  # seconds to build the model (a language model loads its weights)
    source: str


# bf16 autocast where the CPU has it (AMX), batch sizes of the recipes; measured runs shared the 2 cores with other work
# at times, so they err slow.
RATES = {
    "TimeLLM": Rate(22, 160, 20, "measured: the default run (MS), docs/results/default_run.md and benchmark_cpu.md"),
    "TimeLLM_woLLM": Rate(73, 2_800, 10, "measured: the standard grid, seed 2021 (1,000-window epochs)"),
    "TimeLLM_LLM2Attn": Rate(58, 960, 10, "measured: the standard grid, seed 2021"),
    "TimeLLM_LLM2Trsf": Rate(46, 520, 10, "measured: the standard grid, seed 2021"),
    "PatchTST": Rate(400, 4_000, 2, "measured: the standard grid, seed 2021 (S 864 / 8,743, MS 255 / 3,420)"),
    "DLinear": Rate(2_400, 10_000, 1, "measured: the standard grid, seed 2021"),
    "Ridge": Rate(100_000, 400_000, 1, "estimated from the quick grid"),
    "Persistence": Rate(math.inf, 1_000_000, 1, "estimated from the quick grid"),
}
# The bundled cohort's windows, all 12 patients (inputs S and MS cut the same windows).
COHORT_PATIENTS, COHORT_TRAIN, COHORT_VAL, COHORT_TEST = 12, 140_791, 35_437, 34_135


def window_counts(cell: Cell) -> tuple[float, float, float]:
    """(training, validation, test) windows of a cell's run: its share of the cohort, within its caps."""
    share = len(cell.patients) / COHORT_PATIENTS
    data = cell.config.data
    train = min(COHORT_TRAIN * share, data.max_train_windows or math.inf)
    val = min(COHORT_VAL * share, data.max_val_windows or math.inf)
    return train, val, COHORT_TEST * share


def estimate_seconds(cell: Cell) -> float:
    rate = RATES[cell.config.model.model]
    train, val, test = window_counts(cell)
    if recipe_for(cell.config.model.model) is None:  # fit once in closed form (or nothing), no validation
        return rate.startup + train / rate.train + test / rate.infer
    return rate.startup + cell.config.train.train_epochs * (train / rate.train + val / rate.infer) + test / rate.infer


def plan_text(cells: list[Cell], positions: list[int], total: int, shard: str = "") -> str:
    """The cells to run (``positions``: 1-based places in the ordered grid of ``total`` cells) with their budgets and
    estimated minutes, and the sum."""
    width = max(len(c.variant.label) for c in cells) if cells else 10
    lines = [f"Plan: {len(cells)} of {total} runs{f' ({shard})' if shard else ''}, in run order. Nothing is trained "
             "by --plan.",
             "",
             f"{'#':>4}  {'row':<{width}}  {'patients':<9}  {'seed':>5}  {'windows/epoch':>15}  {'epochs<=':>8}  "
             f"{'precision':>9}  {'est. min':>8}"]
    seconds = 0.0
    for pos, cell in zip(positions, cells):
        cfg = cell.config
        train, val, _ = window_counts(cell)
        trained = recipe_for(cfg.model.model) is not None
        budget = f"{train:,.0f} / {val:,.0f}" if trained else "closed form" if cfg.model.model == "Ridge" else "-"
        s = estimate_seconds(cell)
        seconds += s
        lines.append(f"{pos:>4}  {cell.variant.label:<{width}}  {cell.group:<9}  {cell.seed:>5}  {budget:>15}  "
                     f"{cfg.train.train_epochs if trained else '-':>8}  {cfg.train.mixed_precision:>9}  "
                     f"{s / 60:>8.1f}")
    lines += ["", f"Estimated time: {seconds / 3600:.1f} h ({seconds / 60:.0f} min), an upper bound: every epoch up to "
              "the maximum is counted and early stopping ends most runs sooner.",
              "Rates (windows/s training / inference on this project's 2-core CPU with bf16 autocast, which infers "
              "Time-LLM 2.3x faster than fp32; comparison/costs.py):"]
    for model in dict.fromkeys(c.config.model.model for c in cells):
        r = RATES[model]
        lines.append(f"  {model}: {r.train:,.0f} / {r.infer:,.0f} ({r.source})")
    return "\n".join(lines)
