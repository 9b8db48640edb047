"""How long a grid's cells take, from per-window rates on this project's 2-core CPU: what ``--plan`` prints and how
the standard grid orders its cells (cheap first).

A cell costs its model's start-up, then per epoch its training windows at the training rate and its validation
windows at the inference rate (every epoch up to the maximum: an upper bound, since early stopping ends most runs
sooner), then every test window at the inference rate. Each model's rates are declared in its registry entry
(``models.MODELS``, a ``models.spec.Rate``), so every registered model can be planned. Window counts are the bundled
cohort's, shared out evenly over its patients; for other data the estimate is only a guide.
"""

from __future__ import annotations

import math

from comparison.grid import Cell

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
    from models import model_spec  # deferred: the registry loads torch, which --help does not need

    spec = model_spec(cell.config.model.model)
    rate = spec.rate
    train, val, test = window_counts(cell)
    if not spec.gradient_trained:  # fit once in closed form (or nothing), no validation
        return rate.startup + train / rate.train + test / rate.infer
    per_epoch = train / rate.train_rate(cell.config.train.batch_size) + val / rate.infer
    return rate.startup + cell.config.train.train_epochs * per_epoch + test / rate.infer


def plan_text(cells: list[Cell], positions: list[int], total: int, shard: str = "") -> str:
    """The cells to run (``positions``: 1-based places in the ordered grid of ``total`` cells) with their budgets and
    estimated minutes, and the sum."""
    from models import model_spec  # deferred: the registry loads torch, which --help does not need

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
        spec = model_spec(cfg.model.model)
        trained = spec.gradient_trained
        budget = f"{train:,.0f} / {val:,.0f}" if trained else "closed form" if spec.training == "closed form" else "-"
        s = estimate_seconds(cell)
        seconds += s
        lines.append(f"{pos:>4}  {cell.variant.label:<{width}}  {cell.group:<9}  {cell.seed:>5}  {budget:>15}  "
                     f"{cfg.train.train_epochs if trained else '-':>8}  {cfg.train.mixed_precision:>9}  "
                     f"{s / 60:>8.1f}")
    lines += ["", f"Estimated time: {seconds / 3600:.1f} h ({seconds / 60:.0f} min), an upper bound: every epoch up to "
              "the maximum is counted and early stopping ends most runs sooner.",
              "Rates (windows/s training / inference on this project's 2-core CPU with bf16 autocast, which infers "
              "Time-LLM 2.3x faster than fp32; each model's entry in models/__init__.py):"]
    for model in dict.fromkeys(c.config.model.model for c in cells):
        r = model_spec(model).rate
        others = "".join(f", training at batch {b}: {w:,.3g}" for b, w in r.train_at_batch)
        lines.append(f"  {model}: {r.train:,.0f} / {r.infer:,.0f}{others} ({r.source})")
    return "\n".join(lines)
