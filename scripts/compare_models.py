"""Compare forecasters on one grid with one command: baselines, Time-LLM and its Tan-style ablations.

    python -m scripts.compare_models --quick --out docs/results/quick
    python -m scripts.compare_models --models Persistence,Ridge,TimeLLM,TimeLLM_woLLM --backbones MiniLM \\
        --patients 1001,1002 --seeds 2021 --out docs/results/mine

Tan et al. (NeurIPS 2024) found that Time-LLM with its language model removed beat the full model in all 26 of
their comparisons. This runner repeats that check on glucose: every model of the grid goes through the
same engine (``exp.run.train_and_test``), the same splits (built once per patient group and shared), the same
training budget and the same metrics, on every test window.

Grid: models x backbones (models that run a language model only) x patient groups (one per patient, or one pooled
group with ``--pooled``) x seeds. With ``TimeLLM`` in the grid, ``--random-backbone`` adds Time-LLM on a randomly
initialised backbone and ``--no-prompt-ablation`` adds Time-LLM without its prompt prefix; both are on in presets.

Outputs in ``--out``: ``tidy.csv`` (one row per run: the engine's results row plus the cell key), ``summary.csv``,
``summary.md`` (the table, the exact command, and plain statements of who won) and ``rmse_by_model.png`` /
``rmse_by_model_60.png``. Run folders (checkpoints, predictions, plots) go to ``--runs-dir``, outside ``--out``, so
the comparison itself stays small enough to commit (a finished cell keeps its best checkpoint, about 120 MB for a
Time-LLM variant with MiniLM, and drops its resume state). Re-running the same command skips every cell already in
``tidy.csv``; a cell's key includes a fingerprint of all settings, so changed settings run afresh.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from utils.errors import LLMTimeError, run_cli

DEFAULT_MODELS = ("Persistence", "Ridge", "DLinear", "PatchTST", "TimeLLM", "TimeLLM_woLLM", "TimeLLM_LLM2Attn",
                  "TimeLLM_LLM2Trsf")
TIDY, SUMMARY_CSV, SUMMARY_MD = "tidy.csv", "summary.csv", "summary.md"
PLOTS = {30: "rmse_by_model.png", 60: "rmse_by_model_60.png"}
HORIZONS = (30, 60)
METRICS = ("rmse_30", "rmse_60", "mae_30", "mae_60", "clarke_ab_30", "clarke_ab_60")
# The CGM metrics beside RMSE (utils.metrics): MARD and time lag as means over patients, and hypo/hyper detection
# pooled over each run's points. Rows from before these existed have none of them: their cells stay blank.
EVENT_STATS = ("sensitivity", "precision", "mcc")
GLUCOSE_METRICS = ("mard_30", "mard_60", "lag_30", "lag_60") + tuple(
    f"pooled_{event}_{stat}_{h}" for event in ("hypo", "hyper") for h in HORIZONS for stat in EVENT_STATS)


@dataclass(frozen=True)
class Preset:
    """Defaults a preset fills in for flags left unset. ``n_patients`` None = every patient found."""

    n_patients: Optional[int]
    seeds: tuple[int, ...]
    epochs: int
    max_train_windows: Optional[int]
    max_val_windows: Optional[int]
    extras: bool  # random-backbone and no-prompt Time-LLM


# quick: minutes-scale on a CPU, real MiniLM weights, every test window; a smoke-level comparison, not a result.
# full: the comparison to report (12 patients, 3 seeds, no caps); hours on a GPU, not meant for a laptop.
# custom (neither flag): the run_main.py defaults.
PRESETS = {
    "quick": Preset(n_patients=2, seeds=(2021,), epochs=2, max_train_windows=1000, max_val_windows=300, extras=True),
    "full": Preset(n_patients=None, seeds=(2021, 2022, 2023), epochs=10, max_train_windows=None,
                   max_val_windows=None, extras=True),
    "custom": Preset(n_patients=None, seeds=(2021,), epochs=10, max_train_windows=12_000, max_val_windows=3_000,
                     extras=False),
}


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: a registered model, its backbone (LLM models only) and Time-LLM switches."""

    model: str
    backbone: str = ""
    llm_weights: str = "pretrained"
    use_prompt: bool = True

    @property
    def tags(self) -> str:
        return ", ".join(t for t in ("random LLM" if self.llm_weights == "random" else "",
                                     "" if self.use_prompt else "no prompt") if t)

    @property
    def label(self) -> str:
        extras = ", ".join(t for t in (self.backbone, self.tags) if t)
        return f"{self.model} ({extras})" if extras else self.model


@dataclass(frozen=True)
class Cell:
    variant: Variant
    patients: tuple[str, ...]
    seed: int
    settings: str

    @property
    def key(self) -> str:
        return f"{self.variant.label}|{'+'.join(self.patients)}|s{self.seed}|{self.settings}"

    @property
    def run_name(self) -> str:
        label = re.sub(r"[^A-Za-z0-9]+", "-", self.variant.label).strip("-")
        group = self.patients[0] if len(self.patients) == 1 else f"pooled{len(self.patients)}"
        return f"{label}_{group}_s{self.seed}_{self.settings}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # noqa: D401
        raise LLMTimeError(f"{message} (see python -m scripts.compare_models --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for tidy.csv, summary.csv/.md and the plots")
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help="2 patients, 1 seed, 1000/300 train/val windows, 2 epochs: minutes on a CPU")
    preset.add_argument("--full", action="store_true", help="all patients, 3 seeds, no caps, 10 epochs")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model names")
    p.add_argument("--backbones", default="MiniLM", help="comma-separated backbone rows for the Time-LLM models")
    p.add_argument("--llm-path", default=None, help="local weights folder (only with a single backbone)")
    p.add_argument("--patients", default=None, help="comma-separated patient ids (default: the preset's / all)")
    p.add_argument("--pooled", action="store_true", help="one model on all listed patients instead of one each")
    p.add_argument("--seeds", default=None, help="comma-separated seeds")
    p.add_argument("--random-backbone", action=argparse.BooleanOptionalAction, default=None,
                   help="add Time-LLM on a randomly initialised backbone (default: on in presets)")
    p.add_argument("--no-prompt-ablation", action=argparse.BooleanOptionalAction, default=None,
                   help="add Time-LLM without its prompt prefix (default: on in presets)")
    p.add_argument("--data", default="simulated", help="'simulated' (bundled) or 'ohio' (with --root-path)")
    p.add_argument("--root-path", default=None, help="folder with <id>-ws-training.xml[.gz] files")
    p.add_argument("--features", default="S", choices=["S", "MS"],
                   help="S: glucose only; MS: + insulin and carbs for the baselines (Time-LLM ignores them)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--max-train-windows", type=int, default=None, help="0 = no cap")
    p.add_argument("--max-val-windows", type=int, default=None, help="0 = no cap; the test split is never capped")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    p.add_argument("--runs-dir", default=None, help="run folders (default checkpoints/compare/<out folder name>)")
    return p


def _split(text: str) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


def canonical_models(text: str) -> list[str]:
    from models import MODELS, resolve_model

    names = _split(text)
    if not names:
        raise LLMTimeError("--models is empty: name at least one model")
    by_lower = {k.lower(): k for k in MODELS}
    for name in names:
        resolve_model(name)  # raises the one-line error listing the choices
    return list(dict.fromkeys(by_lower[n.lower()] for n in names))


def variants(models: list[str], backbones: list[str], random_backbone: bool, no_prompt: bool) -> list[Variant]:
    """Grid rows in display order; the Time-LLM switches follow plain Time-LLM for each backbone."""
    from models import model_uses_llm

    rows: list[Variant] = []
    for model in models:
        if not model_uses_llm(model):
            rows.append(Variant(model))
            continue
        for backbone in backbones:
            rows.append(Variant(model, backbone))
            if model == "TimeLLM" and random_backbone:
                rows.append(Variant(model, backbone, llm_weights="random"))
            if model == "TimeLLM" and no_prompt:
                rows.append(Variant(model, backbone, use_prompt=False))
    return rows


def _cap(value: Optional[int], default: Optional[int]) -> Optional[int]:
    return default if value is None else (None if value == 0 else value)


def base_config(args: argparse.Namespace, preset: Preset, runs_dir: Path) -> RunConfig:
    """Everything shared by the grid's cells; a cell sets model, backbone, switches, patients and seed."""
    for name in ("batch_size", "eval_batch_size", "patience"):
        if getattr(args, name) < 1:
            raise LLMTimeError(f"--{name.replace('_', '-')} must be >= 1")
    epochs = preset.epochs if args.epochs is None else args.epochs
    if epochs < 1:
        raise LLMTimeError("--epochs must be >= 1")
    if args.learning_rate <= 0:
        raise LLMTimeError("--learning-rate must be > 0")
    from data_provider.data_factory import dataset_name  # deferred: it loads torch, which --help does not need

    args.data = dataset_name(args.data)
    if args.root_path is None and args.data != "simulated":
        raise LLMTimeError(f"--data {args.data} needs --root-path pointing at its XML files")
    data = DataConfig(data=args.data, root_path=args.root_path, covariates=args.features == "MS",
                      max_train_windows=_cap(args.max_train_windows, preset.max_train_windows),
                      max_val_windows=_cap(args.max_val_windows, preset.max_val_windows))
    train = TrainConfig(batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
                        learning_rate=args.learning_rate, train_epochs=epochs, patience=args.patience,
                        mixed_precision=args.mixed_precision, resume=True)
    return RunConfig(model_id="compare", des="compare", checkpoints=str(runs_dir),
                     results_csv=str(runs_dir / "results.csv"), data=data,
                     model=ModelConfig(llm_path=args.llm_path), train=train)


def settings_fingerprint(base: RunConfig) -> str:
    """Short hash of every setting a cell does not vary, so a changed setting never reuses an old cell."""
    d = base.to_dict()
    for key in ("checkpoints", "results_csv"):
        d.pop(key)
    d["train"].pop("resume")
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def cell_config(base: RunConfig, cell: Cell) -> RunConfig:
    v = cell.variant
    return dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, patients=list(cell.patients)),
        model=dataclasses.replace(base.model, model=v.model, llm_model=v.backbone or base.model.llm_model,
                                  llm_weights=v.llm_weights, use_prompt=v.use_prompt),
        train=dataclasses.replace(base.train, seed=cell.seed),
    )


def available_patients(data: DataConfig) -> list[str]:
    from data_provider.data_factory import data_root
    from data_provider.ohio import discover

    found = discover(data_root(data))
    return sorted(found, key=lambda p: (int(p), p) if p.isdigit() else (1 << 30, p))


def choose_patients(text: Optional[str], preset: Preset, data: DataConfig) -> list[str]:
    found = available_patients(data)
    if text is None or text.strip().lower() == "all":
        return found if text is not None or preset.n_patients is None else found[: preset.n_patients]
    wanted = _split(text)
    unknown = [p for p in wanted if p not in found]
    if unknown:
        raise LLMTimeError(f"unknown patient id(s) {', '.join(unknown)}; available: {', '.join(found)}")
    return wanted


def parse_seeds(text: Optional[str], preset: Preset) -> list[int]:
    if text is None:
        return list(preset.seeds)
    try:
        seeds = [int(s) for s in _split(text)]
    except ValueError:
        raise LLMTimeError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise LLMTimeError("--seeds is empty: give at least one seed")
    return list(dict.fromkeys(seeds))


def finished_keys(tidy: Path) -> set[str]:
    if not tidy.is_file() or not tidy.stat().st_size:
        return set()
    return set(pd.read_csv(tidy, usecols=["cell_key"])["cell_key"].astype(str))


def run_grid(cells: list[Cell], base: RunConfig, tidy: Path, command: str) -> None:
    """Run every cell not yet in ``tidy``, building each patient group's splits once for all its cells."""
    from data_provider.data_factory import build_splits
    from exp.run import train_and_test
    from utils.results import append_row

    done = finished_keys(tidy)
    todo = [c for c in cells if c.key not in done]
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="cells", unit="run",
               disable=os.environ.get("LLMTIME_NO_BARS") == "1")
    for group in dict.fromkeys(c.patients for c in todo):
        splits = build_splits(dataclasses.replace(base.data, patients=list(group)))
        for cell in (c for c in todo if c.patients == group):
            bar.set_postfix_str(f"{cell.variant.label} {'+'.join(group)} s{cell.seed}")
            result = train_and_test(cell_config(base, cell), splits=splits, name=cell.run_name)
            row = dict(result.row)
            # The ablations run no backbone layer; the engine's row would report the backbone's full depth.
            row["llm_layers"] = getattr(result.model, "backbone_layers_used", row["llm_layers"])
            append_row(tidy, {"cell_key": cell.key, "label": cell.variant.label, "variant": cell.variant.tags,
                              "group": "pooled" if len(group) > 1 else "per-patient",
                              "settings": cell.settings, "command": command, **row})
            tqdm.write(f"{cell.variant.label} {'+'.join(group)} s{cell.seed}: RMSE30 {row['rmse_30']:.2f} "
                       f"RMSE60 {row['rmse_60']:.2f} mg/dL ({row['wall_seconds']:.0f} s)")
            bar.update()
    bar.close()


def summarise(rows: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per label (in grid order): runs, mean and sd (over patients and seeds) of the headline metrics, sizes, speed."""
    out = []
    for label in labels:
        g = rows[rows["label"] == label]
        first = g.iloc[0]
        rec = {"label": label, "model": first["model"], "backbone": first["backbone"] if first["backbone"] else "",
               "variant": first["variant"] if isinstance(first["variant"], str) else "", "runs": len(g)}
        for m in METRICS + GLUCOSE_METRICS:
            values = g[m] if m in g else pd.Series(np.nan, index=g.index)
            rec[f"{m}_mean"] = values.mean()
            rec[f"{m}_sd"] = values.std(ddof=1) if len(g) > 1 else np.nan
        trained = g[g["epochs_run"] > 0]
        rec.update({
            "trainable_params": int(first["trainable_params"]),
            "total_params": int(first["total_params"]),
            "train_windows_per_s": trained["train_windows_per_s"].mean() if len(trained) else np.nan,
            "test_windows_per_s": g["test_windows_per_s"].mean(),
            "wall_seconds": g["wall_seconds"].mean(),
        })
        out.append(rec)
    return pd.DataFrame(out)


def paired_wins(rows: pd.DataFrame, ref: str, other: str) -> tuple[int, int]:
    """(ref beat other, comparisons): RMSE per horizon on each (patients, seed) both ran."""
    cols = ["patients", "seed"] + [f"rmse_{h}" for h in HORIZONS]
    a = rows[rows["label"] == ref][cols]
    b = rows[rows["label"] == other][cols]
    pairs = a.merge(b, on=["patients", "seed"], suffixes=("_ref", "_other"))
    wins = sum(int((pairs[f"rmse_{h}_ref"] < pairs[f"rmse_{h}_other"]).sum()) for h in HORIZONS)
    return wins, len(pairs) * len(HORIZONS)


def _pm(mean: float, sd: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" + ("" if np.isnan(sd) else f" ± {sd:.{digits}f}")


def _count(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e4 else f"{int(n):,}"


def findings(rows: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """Plain statements: the best model per horizon, and Time-LLM against its ablations and the baselines."""
    lines = []
    for h in HORIZONS:
        best = summary.loc[summary[f"rmse_{h}_mean"].idxmin()]
        lines.append(f"- Best at {h} min: **{best['label']}** (RMSE {_pm(best[f'rmse_{h}_mean'], best[f'rmse_{h}_sd'])}"
                     " mg/dL, lowest mean RMSE).")
    refs = summary[(summary["model"] == "TimeLLM") & (summary["variant"] == "")]
    if refs.empty:
        lines.append("- Time-LLM with a pretrained backbone and its prompt is not in this grid, so it is compared "
                     "with nothing.")
        return lines
    for _, ref in refs.iterrows():
        same_backbone = summary[(summary["backbone"] == ref["backbone"]) & (summary["label"] != ref["label"])]
        groups = (("its ablations", same_backbone),
                  ("the baselines", summary[summary["backbone"] == ""]))
        for name, others in groups:
            if others.empty:
                continue
            wins = total = 0
            details = []
            for _, o in others.iterrows():
                w, n = paired_wins(rows, ref["label"], o["label"])
                wins, total = wins + w, total + n
                lower = [ref[f"rmse_{h}_mean"] < o[f"rmse_{h}_mean"] for h in HORIZONS]
                verb = "beat" if all(lower) else "lost to" if not any(lower) else "split (30 vs 60 min) with"
                details.append(f"{verb} {o['label']} ({w}/{n})")
            verdict = ("**Yes**" if wins == total else "**No**" if wins == 0 else "**Partly**")
            lines.append(f"- Did {ref['label']} beat {name}? {verdict}: lower RMSE in {wins} of {total} paired "
                         f"comparisons (each patient group x seed x 30/60 min). On mean RMSE it "
                         + "; ".join(details) + ".")
    return lines


def markdown(summary: pd.DataFrame, rows: pd.DataFrame, command: str, preset_name: str, base: RunConfig,
             cells: list[Cell], wall: float) -> str:
    d, t = base.data, base.train
    groups = sorted({c.patients for c in cells})
    seeds = sorted({c.seed for c in cells})
    pooled = any(len(g) > 1 for g in groups)
    patients = sorted({p for g in groups for p in g}, key=lambda p: (len(p), p))
    test_windows = rows.groupby("patients")["test_windows"].first().sum()
    trained = rows[rows["epochs_run"] > 0]
    steps = (np.ceil(trained["train_windows"] / t.batch_size) * trained["epochs_run"]).max() if len(trained) else 0
    cap = lambda v: "all" if v is None else f"at most {v:,}"  # noqa: E731
    head = [
        f"# Model comparison ({preset_name})",
        "",
        "Command:",
        "",
        f"```bash\n{command}\n```",
        "",
        f"Data: {d.data}, patients {', '.join(patients)} "
        f"({'one model on all of them' if pooled else 'one model per patient'}), seeds {', '.join(map(str, seeds))}; "
        f"inputs {'glucose + insulin + carbs (baselines)' if d.covariates else 'glucose only'}. "
        f"Training windows: {cap(d.max_train_windows)} per run; validation: {cap(d.max_val_windows)}; "
        f"test: every window ({int(test_windows):,} in all). Up to {t.train_epochs} epoch(s), batch {t.batch_size} "
        f"(at most {int(steps):,} optimiser steps per run), learning rate {t.learning_rate:g} ({t.lradj} schedule), best "
        f"epoch chosen on validation (patience {t.patience}). "
        f"Grid wall time: {wall / 60:.1f} min (this invocation; cells found finished were not re-run).",
        "",
        "Mean ± sd over patients and seeds (sd blank with a single run). RMSE/MAE in mg/dL; Clarke A+B in % of "
        "scored readings; train windows/s is training throughput (blank where nothing is trained).",
        "",
        "| Model | runs | RMSE 30 | RMSE 60 | MAE 30 | MAE 60 | Clarke A+B 30 | Clarke A+B 60 "
        "| params trainable / total | train windows/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    body = []
    for _, s in summary.iterrows():
        cells_ = [_pm(s[f"{m}_mean"], s[f"{m}_sd"], 1 if m.startswith("clarke") else 2) for m in METRICS]
        speed = "–" if np.isnan(s["train_windows_per_s"]) else f"{s['train_windows_per_s']:.0f}"
        body.append(f"| {s['label']} | {s['runs']} | " + " | ".join(cells_)
                    + f" | {_count(s['trainable_params'])} / {_count(s['total_params'])} | {speed} |")
    body += glucose_table(summary)
    notes = [
        "",
        "## Findings",
        "",
        *findings(rows, summary),
        "",
        "Notes: `(random LLM)` is Time-LLM with a randomly initialised backbone; `(no prompt)` drops the prompt "
        "prefix; `TimeLLM_woLLM` sends the reprogrammed patches straight to the head; `TimeLLM_LLM2Attn` / "
        "`TimeLLM_LLM2Trsf` replace the backbone by one trainable self-attention layer / Transformer block. The "
        "ablations keep only the backbone's frozen word embeddings (for the text prototypes and prompt), which is "
        "what their total parameter counts include. Ridge is fit in closed form (0 trainable, its coefficients "
        "counted in the total). Timings were taken on a shared machine and are indicative only.",
    ]
    if preset_name == "quick":
        notes.append(
            "\nThis is the `--quick` preset: few patients, one seed, capped training. Every gradient-trained model "
            "(DLinear, PatchTST, all Time-LLM variants) gets the same small budget and is undertrained, while "
            "Persistence needs no training and Ridge is solved exactly, so the preset favours those two. It shows "
            "that the pipeline runs end to end and gives a first look; differences within about one sd, or decided "
            "by one patient, are not evidence. Run `--full` for the comparison to report.")
    return "\n".join(head + body + notes) + "\n"


def glucose_table(summary: pd.DataFrame) -> list[str]:
    """Markdown lines of the CGM metrics beside RMSE: MARD, time lag, hypo/hyper detection (see GLUCOSE_METRICS)."""
    def ratio(v: float) -> str:
        return "–" if np.isnan(v) else f"{v:.2f}"

    lines = [
        "",
        "CGM metrics, mean over patients and seeds: MARD (%) and time lag (min; the shift that best aligns forecast "
        "and truth, `utils/metrics.py`) as means over patients; hypoglycaemia (< 70 mg/dL) and hyperglycaemia "
        "(> 180 mg/dL) detection as sensitivity / precision / MCC over all scored points of a run (– where "
        "undefined, e.g. no hypo in the test data).",
        "",
        "| Model | MARD 30 | MARD 60 | lag 30 | lag 60 | hypo 30 | hypo 60 | hyper 30 | hyper 60 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, s in summary.iterrows():
        cells = [_pm(s[f"{m}_mean"], s[f"{m}_sd"], 1) for m in ("mard_30", "mard_60", "lag_30", "lag_60")]
        cells += [" / ".join(ratio(s[f"pooled_{event}_{stat}_{h}_mean"]) for stat in EVENT_STATS)
                  for event in ("hypo", "hyper") for h in HORIZONS]
        lines.append(f"| {s['label']} | " + " | ".join(cells) + " |")
    return lines


def write_reports(out: Path, cells: list[Cell], command: str, preset_name: str, base: RunConfig, wall: float) -> str:
    from utils.io import atomic_path, write_text
    from utils.plots import plot_bars

    keys = {c.key for c in cells}
    rows = pd.read_csv(out / TIDY, dtype={"patients": str, "test_patients": str, "backbone": str, "variant": str},
                       keep_default_na=False, na_values=[""])
    rows = rows[rows["cell_key"].isin(keys)].drop_duplicates("cell_key", keep="last")
    rows["backbone"] = rows["backbone"].fillna("")
    rows["variant"] = rows["variant"].fillna("")
    labels = list(dict.fromkeys(c.variant.label for c in cells))
    summary = summarise(rows, labels)
    with atomic_path(out / SUMMARY_CSV) as tmp:
        summary.to_csv(tmp, index=False)
    text = markdown(summary, rows, command, preset_name, base, cells, wall)
    write_text(out / SUMMARY_MD, text)
    for h, name in PLOTS.items():
        plot_bars(labels, summary[f"rmse_{h}_mean"].to_numpy(), summary[f"rmse_{h}_sd"].to_numpy(), out / name,
                  f"RMSE at {h} min (mean ± sd over patients and seeds)", "RMSE (mg/dL)")
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "python -m scripts.compare_models " + shlex.join(argv)

    def body() -> int:
        args = build_parser().parse_args(argv)
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        preset_name = "quick" if args.quick else "full" if args.full else "custom"
        preset = PRESETS[preset_name]
        out = Path(args.out)
        runs_dir = Path(args.runs_dir) if args.runs_dir else Path("checkpoints") / "compare" / out.name
        models = canonical_models(args.models)
        from models.backbones import resolve_backbone

        backbones = list(dict.fromkeys(resolve_backbone(b).name for b in _split(args.backbones)))
        if not backbones:
            raise LLMTimeError("--backbones is empty: name at least one backbone row (e.g. MiniLM)")
        if args.llm_path and len(backbones) > 1:
            raise LLMTimeError("--llm-path holds one backbone's weights: pass a single --backbones name with it")
        base = base_config(args, preset, runs_dir)
        patients = choose_patients(args.patients, preset, base.data)
        seeds = parse_seeds(args.seeds, preset)
        extras = preset.extras
        grid = variants(models, backbones,
                        extras if args.random_backbone is None else args.random_backbone,
                        extras if args.no_prompt_ablation is None else args.no_prompt_ablation)
        groups = [tuple(patients)] if args.pooled else [(p,) for p in patients]
        settings = settings_fingerprint(base)
        cells = [Cell(v, g, s, settings) for g in groups for s in seeds for v in grid]
        t0 = time.perf_counter()
        run_grid(cells, base, out / TIDY, command)
        text = write_reports(out, cells, command, preset_name, base, time.perf_counter() - t0)
        print(text)
        print(f"outputs: {out}  (run folders: {runs_dir})")
        return 0

    return run_cli(body, "interrupted: finished cells are kept in tidy.csv; re-run the same command to continue")


if __name__ == "__main__":
    sys.exit(main())
