"""summary.md: the tables, the exact command, how many of the planned runs it covers, and plain findings.

The quick, full and custom grids state run by run whether Time-LLM beat its ablations and the baselines; the
standard grid adds its recipes table and compares Time-LLM (MS) with every other row patient by patient
(``comparison.stats``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from comparison import standard, stats
from comparison.grid import Grid
from comparison.summary import EVENT_STATS, HORIZONS, METRICS, best_lines, findings, pm, worse_than_persistence

LEGACY_NOTES = (
    "Notes: `(random LLM)` is Time-LLM with a randomly initialised backbone; `(no prompt)` drops the prompt "
    "prefix; `TimeLLM_woLLM` sends the reprogrammed patches straight to the head; `TimeLLM_LLM2Attn` / "
    "`TimeLLM_LLM2Trsf` replace the backbone by one trainable self-attention layer / Transformer block. The "
    "ablations keep only the backbone's frozen word embeddings (for the text prototypes and prompt), which is "
    "what their total parameter counts include. Ridge is fit in closed form (0 trainable, its coefficients "
    "counted in the total). Timings were taken on a shared machine and are indicative only.")
QUICK_NOTE = (
    "\nThis is the `--quick` preset, a smoke run and not a result: few patients, one seed, capped training. Every "
    "gradient-trained model (DLinear, PatchTST, all Time-LLM variants) gets the same small budget and is "
    "undertrained, while Persistence needs no training and Ridge is solved exactly, so the preset favours those two. "
    "It shows that the pipeline runs end to end; differences within about one sd, or decided by one patient, are not "
    "evidence. `--standard` is the comparison that ranks the methods.")
STANDARD_NOTES = (
    "Notes: `TimeLLM_text` / `TimeLLM_channels` read meals and insulin as prompt text only / as channels only; "
    "`TimeLLM_random` has a randomly initialised backbone; `TimeLLM_noprompt` drops the prompt prefix; "
    "`TimeLLM_woLLM` sends the reprogrammed patches straight to the head; `TimeLLM_LLM2Attn` / `TimeLLM_LLM2Trsf` "
    "replace the backbone by one trainable self-attention layer / Transformer block (Tan et al., NeurIPS 2024). "
    "Persistence holds the last reading (its S and MS rows are the same forecast); Ridge is fit in closed form. "
    "Timings were taken on a shared machine and are indicative only.")


def count(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e4 else f"{int(n):,}"


def _metric_cells(s: pd.Series) -> str:
    cells = [pm(s[f"{m}_mean"], s[f"{m}_sd"], 1 if m.startswith("clarke") else 2) for m in METRICS]
    speed = "–" if np.isnan(s["train_windows_per_s"]) else f"{s['train_windows_per_s']:.0f}"
    return (" | ".join(cells) + f" | {count(s['trainable_params'])} / {count(s['total_params'])} | {speed} |")


def glucose_table(summary: pd.DataFrame) -> list[str]:
    """Markdown lines of the CGM metrics beside RMSE: MARD, time lag, hypo/hyper detection."""
    def ratio(v: float) -> str:
        return "–" if np.isnan(v) else f"{v:.2f}"

    lines = [
        "",
        "CGM metrics, mean over runs: MARD (%) and time lag (min; the shift that best aligns forecast and truth, "
        "`utils/metrics.py`) as means over patients; hypoglycaemia (< 70 mg/dL) and hyperglycaemia (> 180 mg/dL) "
        "detection as sensitivity / precision / MCC over all scored points of a run (– where undefined, e.g. no "
        "hypo in the test data).",
        "",
        "| Model | MARD 30 | MARD 60 | lag 30 | lag 60 | hypo 30 | hypo 60 | hyper 30 | hyper 60 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, s in summary.iterrows():
        cells = [pm(s[f"{m}_mean"], s[f"{m}_sd"], 1) for m in ("mard_30", "mard_60", "lag_30", "lag_60")]
        cells += [" / ".join(ratio(s[f"pooled_{event}_{stat}_{h}_mean"]) for stat in EVENT_STATS)
                  for event in ("hypo", "hyper") for h in HORIZONS]
        lines.append(f"| {s['label']} | " + " | ".join(cells) + " |")
    return lines


def coverage(rows: pd.DataFrame, grid: Grid) -> str:
    done, planned = len(rows), len(grid.cells)
    if done >= planned:
        return f"Complete: all {planned} planned runs."
    return (f"**Partial**: this report covers {done} of the {planned} planned runs; run the same command again to "
            "continue (finished runs are kept).")


def _opening(title: str, rows: pd.DataFrame, grid: Grid, command: str) -> list[str]:
    """Title, how much of the grid the report covers, and the command that produced it."""
    return [title, "", coverage(rows, grid), "", "Command:", "", f"```bash\n{command}\n```", ""]


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def run_time_line(rows: pd.DataFrame) -> str:
    """The runs' summed wall time and the machines it was measured on (runs from before rows named their machine
    count as unrecorded), since this project's CPUs differ 2-3x in speed."""
    machines = (rows["device"] if "device" in rows else pd.Series("", index=rows.index)).fillna("").astype(str)
    counts = machines.replace("", "machine not recorded").value_counts()
    where = "; ".join(f"{n} run{'s' * (n != 1)} on {m}" for m, n in counts.items())
    return f"Run time: {_duration(rows['wall_seconds'].sum())} (sum of the runs' wall times; {where})."


def _cap(v: Optional[int]) -> str:
    return "all" if v is None else f"{v:,}"


def legacy_markdown(summary: pd.DataFrame, rows: pd.DataFrame, grid: Grid, command: str) -> str:
    d, t, cells = grid.base.data, grid.base.train, grid.cells
    groups = sorted({c.patients for c in cells})
    seeds = sorted({c.seed for c in cells})
    pooled = any(len(g) > 1 for g in groups)
    patients = sorted({p for g in groups for p in g}, key=lambda p: (len(p), p))
    test_windows = rows.groupby("patients")["test_windows"].first().sum()
    trained = rows[rows["epochs_run"] > 0]
    steps = (np.ceil(trained["train_windows"] / t.batch_size) * trained["epochs_run"]).max() if len(trained) else 0
    smoke = ": smoke run, not a result" if grid.preset == "quick" else ""
    inputs = "glucose + insulin + carbs (Time-LLM: as prompt text and channels)" if d.covariates else "glucose only"
    head = [
        *_opening(f"# Model comparison ({grid.preset}){smoke}", rows, grid, command),
        f"Data: {d.data}, patients {', '.join(patients)} "
        f"({'one model on all of them' if pooled else 'one model per patient'}), seeds {', '.join(map(str, seeds))}; "
        f"inputs {inputs}. "
        f"Training windows: {_cap(d.max_train_windows)} per run; validation: {_cap(d.max_val_windows)}; "
        f"test: every window ({int(test_windows):,} in all). Up to {t.train_epochs} epoch(s), batch {t.batch_size} "
        f"(at most {int(steps):,} optimiser steps per run), learning rate {t.learning_rate:g} ({t.lradj} schedule), "
        f"best epoch chosen on validation (patience {t.patience}). "
        + run_time_line(rows),
        "",
        "Mean ± sd over patients and seeds (sd blank with a single run). RMSE/MAE in mg/dL; Clarke A+B in % of "
        "scored readings; train windows/s is training throughput (blank where nothing is trained).",
        "",
        "| Model | runs | RMSE 30 | RMSE 60 | MAE 30 | MAE 60 | Clarke A+B 30 | Clarke A+B 60 "
        "| params trainable / total | train windows/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    body = [f"| {s['label']} | {s['runs']} | " + _metric_cells(s) for _, s in summary.iterrows()]
    notes = ["", "## Findings", "", *findings(rows, summary), *worse_than_persistence(rows), "", LEGACY_NOTES]
    if grid.preset == "quick":
        notes.append(QUICK_NOTE)
    return "\n".join(head + body + glucose_table(summary) + notes) + "\n"


def recipe_table(grid: Grid) -> list[str]:
    """One line per row: the training settings its cells ran with (the first seed's: seeds differ in nothing else)."""
    from models import model_spec  # deferred: the registry loads torch, which --help does not need

    first = {}
    for c in grid.cells:
        first.setdefault(c.variant.label, c)
    lines = ["| Model | inputs | recipe | learning rate | batch | schedule | epochs ≤ / patience "
             "| windows per epoch (train / val) | precision |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label in grid.labels:
        cfg = first[label].config
        t, v = cfg.train, first[label].variant
        spec = model_spec(cfg.model.model)
        if not spec.gradient_trained:
            what = "every window, closed form" if spec.training == "closed form" else "nothing to train"
            lines.append(f"| {v.model_name} | {v.features} | – | – | – | – | – | {what} | {t.mixed_precision} |")
            continue
        schedule = t.lradj + (f", {t.warmup_steps} warm-up steps" if t.warmup_steps else "")
        lines.append(f"| {v.model_name} | {v.features} | {t.recipe.split(' (')[0]} | {t.learning_rate:g} | "
                     f"{t.batch_size} | {schedule} | {t.train_epochs} / {t.patience} | "
                     f"{_cap(cfg.data.max_train_windows)} / {_cap(cfg.data.max_val_windows)} | {t.mixed_precision} |")
    return lines


def patient_findings(summary: pd.DataFrame, per_patient: pd.DataFrame, grid: Grid) -> list[str]:
    """Time-LLM (MS) against every other row, patient by patient (comparison.stats)."""
    from models import model_spec

    ref = standard.REFERENCE
    present = set(summary["label"])
    if ref not in present or per_patient.empty:
        return [f"- {ref} has no finished run with per-patient rows yet, so it is compared with nothing."]
    model_of = {c.variant.label: c.variant.model for c in grid.cells}
    others = [label for label in grid.labels if label in present and label != ref]
    baselines = [label for label in others if model_spec(model_of[label]).role == "baseline"]
    ablations = [label for label in others if label not in baselines]
    n = per_patient.loc[per_patient["label"] == ref, "patient"].nunique()
    tests = stats.family(per_patient, ref, list(summary["label"]))
    return [
        "",
        f"### Does {ref} earn its cost?",
        "",
        *(f"- {stats.verdict(tests, ref, h)}" for h in HORIZONS),
        f"- {cost_line(summary, ref)}",
        "",
        f"### {ref}, patient by patient",
        "",
        f"Each line: the mean over the {n} patients of {ref}'s RMSE minus the other row's (each patient's RMSE "
        "averaged over the seeds both ran), on how many patients it is worse (or better), and the two-sided "
        "Wilcoxon signed-rank p-value across patients, raw and Holm-corrected over all "
        f"{stats.family_size(tests)} tests of this report (every row at 30 and 60 min, `utils/stats.py`); only a "
        f"corrected p < {stats.ALPHA} calls a difference a win or a loss, otherwise the two rows cannot be told "
        f"apart. {' and '.join(f'`{name}`' for name in standard.PAIRED_PLOTS.values())} draw every patient's "
        "difference.",
        "",
        "Against its event variants and ablations:",
        "",
        *(stats.statements(tests, ablations) or ["- none finished yet"]),
        "",
        "Against the baselines:",
        "",
        *(stats.statements(tests, baselines) or ["- none finished yet"]),
    ]


def _cost(s: pd.Series) -> str:
    speed = ("fitted without gradient steps" if np.isnan(s["train_windows_per_s"])
             else f"trained at {s['train_windows_per_s']:.0f} windows/s")
    return f"{count(s['trainable_params'])} trainable of {count(s['total_params'])} parameters, {speed}"


def cost_line(summary: pd.DataFrame, ref: str) -> str:
    """What the reference costs beside the most accurate row at each horizon (same table, same machine)."""
    by_label = summary.set_index("label")
    best = {h: summary.loc[summary[f"rmse_{h}_mean"].idxmin(), "label"] for h in HORIZONS}
    leaders = " and ".join(f"{h}" for h in HORIZONS)
    if len(set(best.values())) == 1:
        label = best[HORIZONS[0]]
        others = f"{label}, the most accurate at {leaders} min: {_cost(by_label.loc[label])}"
    else:
        others = "; ".join(f"{best[h]}, the most accurate at {h} min: {_cost(by_label.loc[best[h]])}"
                           for h in HORIZONS)
    return f"Cost: {ref} has {_cost(by_label.loc[ref])} ({others})."


# How a grid's training windows are drawn (DataConfig.train_draw, one of data_provider.draws.DRAWS), as its report
# states it
DRAW_TEXT = {
    "fresh": "Training windows per epoch are drawn afresh each epoch from all training windows (seeded, each patient "
             "keeping its share); validation windows are one fixed subset, the same every epoch.",
    "fixed": "Training windows per epoch are one evenly spaced subset, the same every epoch (the earlier protocol, "
             "`--train_draw fixed`).",
}


def standard_markdown(summary: pd.DataFrame, rows: pd.DataFrame, per_patient: pd.DataFrame, grid: Grid,
                      command: str) -> str:
    d = grid.base.data
    patients = grid.cells[0].patients
    seeds = sorted({c.seed for c in grid.cells})
    head = [
        *_opening("# Model comparison (standard)", rows, grid, command),
        f"Data: {d.data}, patients {', '.join(patients)}, pooled: one model per row and seed, trained on all "
        f"{len(patients)} patients' training windows and tested on every test window of every patient "
        f"({int(rows['test_windows'].max()):,}); the per-patient numbers come from that one run. Seeds "
        f"{', '.join(map(str, seeds))}. Inputs: S = glucose only; MS = glucose + basal, bolus and carbs (Time-LLM "
        "reads them as prompt text and as channels unless its row says otherwise). "
        + run_time_line(rows),
        "",
        "Training: each model's recipe (`exp/recipes.py`, chosen on validation), at most its epochs, stopped early "
        "once validation loss has not improved for the recipe's patience; the best epoch on validation is tested "
        f"once. {DRAW_TEXT[d.train_draw]} The test set is never capped. What was cut to fit the budget is listed in "
        "`comparison/standard.py`.",
        "",
        *recipe_table(grid),
        "",
        "Mean ± sd over seeds (each run's numbers are means over its patients). RMSE/MAE in mg/dL; Clarke A+B in % "
        "of scored readings; converged: runs that early stopping ended (the others were capped: the epoch cap ended "
        "them with their best epoch among the last `patience`, `exp/curves.py`); best epoch: mean over trained runs; "
        "windows seen: training-window presentations up to the run's end, mean over trained runs; train windows/s: "
        "training throughput.",
        "",
        "| Model | inputs | runs | converged | best epoch | windows seen | RMSE 30 | RMSE 60 | MAE 30 | MAE 60 "
        "| Clarke A+B 30 | Clarke A+B 60 | params trainable / total | train windows/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    body = []
    for _, s in summary.iterrows():
        converged = "–" if np.isnan(s["converged"]) else f"{int(s['converged'])}/{s['runs']}"
        best = "–" if np.isnan(s["best_epoch_mean"]) else f"{s['best_epoch_mean']:.1f}"
        seen = "–" if np.isnan(s["train_windows_seen"]) else f"{s['train_windows_seen']:,.0f}"
        body.append(f"| {s['model']} | {s['features']} | {s['runs']} | {converged} | {best} | {seen} | "
                    + _metric_cells(s))
    notes = ["", "## Findings", "", *best_lines(summary), *worse_than_persistence(rows),
             *patient_findings(summary, per_patient, grid), "", STANDARD_NOTES]
    return "\n".join(head + body + glucose_table(summary) + notes) + "\n"


def markdown(summary: pd.DataFrame, rows: pd.DataFrame, per_patient: pd.DataFrame, grid: Grid, command: str) -> str:
    if grid.preset == "standard":
        return standard_markdown(summary, rows, per_patient, grid, command)
    return legacy_markdown(summary, rows, grid, command)
