"""The numbers a comparison report states: per-row means and spreads over runs, and plain findings.

``summarise`` gives one row per grid row (mean and sd over its runs of the headline and CGM metrics, convergence,
sizes and speed); ``findings`` says who won, and whether Time-LLM beat its ablations and the baselines, run by run.
The standard grid's patient-by-patient statements are in ``comparison.stats``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from utils.cgm import NAMED_HORIZONS_MIN as HORIZONS

METRICS = ("rmse_30", "rmse_60", "mae_30", "mae_60", "clarke_ab_30", "clarke_ab_60")
# The CGM metrics beside RMSE (utils.metrics): MARD and time lag as means over patients, and hypo/hyper detection
# pooled over each run's points. Rows from before these existed have none of them: their cells stay blank.
EVENT_STATS = ("sensitivity", "precision", "mcc")
GLUCOSE_METRICS = ("mard_30", "mard_60", "lag_30", "lag_60") + tuple(
    f"pooled_{event}_{stat}_{h}" for event in ("hypo", "hyper") for h in HORIZONS for stat in EVENT_STATS)
# The verdicts that count as converged: exp.curves' "converged" (early stopping fired) and, in rows written before
# it, "plateau" (the same event); the older "levelled" and "still improving" were runs the epoch cap ended: capped.
CONVERGED = ("converged", "plateau", "not trained")


def _text(row: pd.Series, column: str) -> str:
    value = row.get(column, "")
    return value if isinstance(value, str) else ""


def summarise(rows: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per label with runs (in grid order): mean and sd over runs of the headline metrics, convergence, sizes,
    speed. Each run's metrics are means over its patients, so on a pooled grid the sd is the seed spread."""
    out = []
    for label in labels:
        g = rows[rows["label"] == label]
        if g.empty:
            continue
        first = g.iloc[0]
        rec = {"model": first["model"], "features": _text(first, "features"), "runs": len(g)}
        for m in METRICS + GLUCOSE_METRICS:
            values = g[m] if m in g else pd.Series(np.nan, index=g.index)
            rec[f"{m}_mean"] = values.mean()
            rec[f"{m}_sd"] = values.std(ddof=1) if len(g) > 1 else np.nan
        trained = g[g["epochs_run"] > 0]
        rec.update({
            "converged": int(g["convergence"].isin(CONVERGED).sum()) if "convergence" in g else np.nan,
            "capped": int((~g["convergence"].isin(CONVERGED)).sum()) if "convergence" in g else np.nan,
            "train_windows_seen": trained["train_windows_seen"].mean()
            if len(trained) and "train_windows_seen" in g else np.nan,
            "best_epoch_mean": trained["best_epoch"].mean() if len(trained) and "best_epoch" in g else np.nan,
            "trainable_params": int(first["trainable_params"]),
            "total_params": int(first["total_params"]),
            "train_windows_per_s": trained["train_windows_per_s"].mean() if len(trained) else np.nan,
            "test_windows_per_s": g["test_windows_per_s"].mean(),
            "wall_seconds": g["wall_seconds"].mean(),
            "label": label,
            "backbone": _text(first, "backbone"),
            "variant": _text(first, "variant"),
        })
        out.append(rec)
    return pd.DataFrame(out)


def worse_than_persistence(rows: pd.DataFrame) -> list[str]:
    """A line per trained run whose RMSE (mean over its patients) is above persistence's on the same test windows at
    30 or 60 min, or one line saying there is none. Such runs stay in their row's mean and sd: leaving them out
    would choose runs on the test set, so the report names them instead."""
    if not {f"persistence_rmse_{h}" for h in HORIZONS} <= set(rows.columns):
        return []
    runs = rows[rows["model"] != "Persistence"]
    worse = runs[np.logical_or.reduce([runs[f"rmse_{h}"] > runs[f"persistence_rmse_{h}"] for h in HORIZONS])]
    if worse.empty:
        return ["- Every trained run forecasts better than persistence at 30 and 60 min (mean RMSE over its "
                "patients, on the same test windows)."]
    lines = [f"- **{len(worse)} of {len(runs)} runs forecast worse than persistence** (mean RMSE over their patients, "
             "same test windows); they count in their row's mean and sd, since leaving them out would pick runs on "
             "the test set:"]
    for _, r in worse.iterrows():
        where = f"patient {r['patients']}, " if len(str(r["patients"]).split()) == 1 else ""  # pooled: row + seed
        epochs = (f"; best validation epoch {int(r['best_epoch'])} of {int(r['epochs_run'])}, curve "
                  f"{r.get('convergence', '?')}" if r.get("epochs_run", 0) > 0 else "")
        lines.append(f"  - {r['label']}, {where}seed {r['seed']}: RMSE " + ", ".join(
            f"{r[f'rmse_{h}']:.2f} against {r[f'persistence_rmse_{h}']:.2f} at {h} min" for h in HORIZONS) + epochs
            + ".")
    return lines


def paired_wins(rows: pd.DataFrame, ref: str, other: str) -> tuple[int, int]:
    """(ref beat other, comparisons): RMSE per horizon on each (patients, seed) both ran."""
    cols = ["patients", "seed"] + [f"rmse_{h}" for h in HORIZONS]
    a = rows[rows["label"] == ref][cols]
    b = rows[rows["label"] == other][cols]
    pairs = a.merge(b, on=["patients", "seed"], suffixes=("_ref", "_other"))
    wins = sum(int((pairs[f"rmse_{h}_ref"] < pairs[f"rmse_{h}_other"]).sum()) for h in HORIZONS)
    return wins, len(pairs) * len(HORIZONS)


def best_lines(summary: pd.DataFrame) -> list[str]:
    lines = []
    for h in HORIZONS:
        best = summary.loc[summary[f"rmse_{h}_mean"].idxmin()]
        lines.append(f"- Best at {h} min: **{best['label']}** (RMSE {pm(best[f'rmse_{h}_mean'], best[f'rmse_{h}_sd'])}"
                     " mg/dL, lowest mean RMSE).")
    return lines


def findings(rows: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """Plain statements: the best model per horizon, and Time-LLM against its ablations and the baselines."""
    lines = best_lines(summary)
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


def pm(mean: float, sd: float, digits: int = 2) -> str:
    """'mean ± sd' ('–' without a mean, no '±' without a spread)."""
    if np.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" + ("" if np.isnan(sd) else f" ± {sd:.{digits}f}")
