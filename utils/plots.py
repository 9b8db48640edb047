"""PNG figures for reports: Clarke and Parkes error grids, forecast traces, comparison bars, paired per-patient
differences and scatter.

Figures are built on ``matplotlib.figure.Figure`` directly rather than through ``pyplot``: no global backend switch,
no open-figure registry to leak memory across hundreds of plots, and rendering goes through Agg without a display.
Every file is written atomically so a report never links a half-written image.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from utils.error_grids import PARKES_LINES, ZONES, clarke_zones, parkes_zones, zone_shares
from utils.errors import LLMTimeError
from utils.io import atomic_path
from utils.metrics import MGDL_PER_MMOL

GLUCOSE_UNITS = {"mg/dL": 1.0, "mmol/L": MGDL_PER_MMOL}  # mg/dL per unit
ZONE_COLOURS = {"A": "tab:green", "B": "tab:blue", "C": "tab:orange", "D": "tab:red", "E": "tab:purple"}

# Letter positions (reference, prediction) in mg/dL; tests check that each lies in its own zone.
CLARKE_LABELS = (
    ("A", 30, 15), ("A", 360, 380), ("B", 280, 370), ("B", 370, 260), ("C", 160, 370),
    ("C", 160, 15), ("D", 30, 140), ("D", 370, 120), ("E", 30, 370), ("E", 370, 15),
)  # fmt: skip
PARKES_LABELS = (
    ("A", 325, 400), ("A", 400, 350), ("B", 270, 470), ("B", 470, 320), ("C", 170, 500),
    ("C", 500, 170), ("D", 80, 500), ("D", 500, 80), ("E", 20, 500),
)  # fmt: skip
# Axes span the grids as published; points beyond are drawn on the frame edge (and counted in the title) rather than
# stretching the axes until the clinically relevant 40..400 mg/dL region is a corner of the plot.
CLARKE_EXTENT = 400.0
PARKES_EXTENT = 550.0


def _save(fig: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def _pairs(reference: ArrayLike, prediction: ArrayLike) -> tuple[NDArray, NDArray]:
    """Flattened finite (reference, prediction) pairs; NaN marks unscored points and is dropped."""
    ref = np.asarray(reference, dtype=float).ravel()
    pred = np.asarray(prediction, dtype=float).ravel()
    if ref.shape != pred.shape:
        raise LLMTimeError(f"reference and prediction lengths differ: {ref.size} vs {pred.size}")
    keep = np.isfinite(ref) & np.isfinite(pred)
    return ref[keep], pred[keep]


def _clarke_segments() -> list[NDArray]:
    """Clarke zone boundaries as straight segments over the 0..400 grid."""
    top = CLARKE_EXTENT
    segments = [
        ((0, 70), (175 / 3, 70)),  # top of the hypo A square
        ((175 / 3, 70), (top / 1.2, top)),  # +20 %
        ((70, 84), (70, top)),  # left edge of upper B/C
        ((0, 180), (70, 180)),  # D/E split on the left
        ((70, 180), (top - 110, top)),  # upper C: pred = ref + 110
        ((70, 0), (70, 56)),
        ((70, 56), (top, 0.8 * top)),  # -20 %
        ((130, 0), (180, 70)),  # lower C: pred = 7/5 ref - 182
        ((180, 0), (180, 70)),
        ((180, 70), (top, 70)),  # top of lower E
        ((240, 70), (240, 180)),
        ((240, 180), (top, 180)),  # top of lower D
    ]
    return [np.array(segment, dtype=float) for segment in segments]


def _grid_figure(
    ref: NDArray,
    pred: NDArray,
    zones: NDArray,
    lines: Sequence[NDArray],
    labels: Sequence[tuple[str, float, float]],
    extent: float,
    title: str,
) -> Figure:
    """Scatter coloured by zone over the boundary lines, with zone letters and shares in the legend."""
    fig = Figure(figsize=(7, 7))
    ax = fig.add_subplot()
    shares = zone_shares(zones)
    outside = int(np.sum((ref < 0) | (ref > extent) | (pred < 0) | (pred > extent)))
    ref, pred = np.clip(ref, 0, extent), np.clip(pred, 0, extent)
    for zone in ZONES:
        here = zones == zone
        share = shares[zone]
        text = f"{zone}: {share:.1f}%" if share is not None else f"{zone}: -"
        ax.scatter(ref[here], pred[here], s=6, alpha=0.5, color=ZONE_COLOURS[zone], label=text, linewidths=0)
    for line in lines:
        ax.plot(line[:, 0], line[:, 1], color="black", linewidth=1)
    ax.plot([0, extent], [0, extent], color="grey", linestyle=":", linewidth=1)
    for letter, x, y in labels:
        ax.text(x, y, letter, fontsize=15, fontweight="bold", ha="center", va="center", alpha=0.7)
    ax.set_xlim(0, extent)
    ax.set_ylim(0, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("Reference glucose (mg/dL)")
    ax.set_ylabel("Predicted glucose (mg/dL)")
    ab = f"{shares['A+B']:.1f}%" if shares["A+B"] is not None else "-"
    beyond = f", {outside} beyond the axes drawn on the edge" if outside else ""
    ax.set_title(f"{title}\nA+B {ab}, n = {shares['n']}{beyond}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=3, frameon=False)
    return fig


def plot_clarke(reference: ArrayLike, prediction: ArrayLike, path: str | os.PathLike, title: str) -> None:
    """Clarke error grid of the finite (reference, prediction) pairs, written as a PNG."""
    ref, pred = _pairs(reference, prediction)
    zones = clarke_zones(ref, pred)
    heading = f"Clarke error grid: {title}"
    _save(_grid_figure(ref, pred, zones, _clarke_segments(), CLARKE_LABELS, CLARKE_EXTENT, heading), path)


def plot_parkes(
    reference: ArrayLike, prediction: ArrayLike, path: str | os.PathLike, title: str, diabetes_type: int = 1
) -> None:
    """Parkes (consensus) error grid of the finite pairs, written as a PNG; type 1 unless told otherwise."""
    ref, pred = _pairs(reference, prediction)
    zones = parkes_zones(ref, pred, diabetes_type)
    lines = [np.array(line.vertices, dtype=float) for line in PARKES_LINES[diabetes_type]]
    heading = f"Parkes error grid (type {diabetes_type}): {title}"
    _save(_grid_figure(ref, pred, zones, lines, PARKES_LABELS, PARKES_EXTENT, heading), path)


def _with_gap_breaks(times: pd.DatetimeIndex, values: NDArray) -> tuple[NDArray, NDArray]:
    """Insert a NaN wherever samples are further apart than 1.5 sampling steps, so lines break over missing rows.

    NaN values already break a matplotlib line; this also breaks it where rows were dropped rather than set to NaN.
    """
    if len(times) < 3:
        return times.to_numpy(), values
    gaps = np.diff(times.asi8)
    breaks = np.flatnonzero(gaps > 1.5 * np.median(gaps)) + 1
    stamps = np.insert(times.to_numpy(), breaks, times.to_numpy()[breaks - 1])
    return stamps, np.insert(values, breaks, np.nan)


def plot_forecast(
    timestamps: ArrayLike,
    truth: ArrayLike,
    forecasts_by_horizon: Mapping[str, ArrayLike],
    path: str | os.PathLike,
    title: str,
    span_days: float = 2.0,
    units: str = "mg/dL",
) -> None:
    """Measured glucose and forecasts (each aligned to the time it predicts) for one patient, first ``span_days``.

    ``forecasts_by_horizon`` maps a legend label (e.g. ``"30 min"``) to values aligned with ``timestamps``; two days
    keeps individual meals and nights readable, where a whole test set would be a solid band. ``units`` (``"mg/dL"``
    or ``"mmol/L"``) is what the values are in, so a plot reads in the same units as the table written beside it.
    """
    if units not in GLUCOSE_UNITS:
        raise LLMTimeError(f"units must be one of {', '.join(GLUCOSE_UNITS)}, got {units!r}")
    times = pd.DatetimeIndex(pd.to_datetime(np.asarray(timestamps)))
    truth = np.asarray(truth, dtype=float)
    series = {label: np.asarray(values, dtype=float) for label, values in forecasts_by_horizon.items()}
    for label, values in [("truth", truth), *series.items()]:
        if values.shape != (len(times),):
            raise LLMTimeError(f"{label} has shape {values.shape}, expected one value per timestamp ({len(times)})")
    if len(times) and not times.is_monotonic_increasing:
        raise LLMTimeError("plot_forecast needs timestamps in increasing order")
    shown = times < times[0] + pd.Timedelta(days=span_days) if len(times) else np.zeros(0, dtype=bool)
    times = times[shown]

    fig = Figure(figsize=(12, 4.5))
    ax = fig.add_subplot()
    ax.plot(*_with_gap_breaks(times, truth[shown]), color="black", linewidth=1.6, label="measured", zorder=3)
    for label, values in series.items():
        ax.plot(*_with_gap_breaks(times, values[shown]), linewidth=1.1, alpha=0.85, label=f"forecast {label}")
    for level in (70, 180):  # the target range, so hypo/hyper misses stand out
        ax.axhline(level / GLUCOSE_UNITS[units], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("Time")
    ax.set_ylabel(f"Glucose ({units})")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.autofmt_xdate()
    _save(fig, path)


def plot_bars(
    labels: Sequence[str],
    values: ArrayLike,
    errors: ArrayLike | None,
    path: str | os.PathLike,
    title: str,
    ylabel: str,
) -> None:
    """Bar per label with optional symmetric error bars (e.g. RMSE mean +- std over seeds); NaN errors draw none."""
    values = np.asarray(values, dtype=float)
    yerr = None if errors is None else np.asarray(errors, dtype=float)
    if values.shape != (len(labels),) or (yerr is not None and yerr.shape != values.shape):
        raise LLMTimeError(f"plot_bars needs one value (and error) per label; got {len(labels)} labels")
    fig = Figure(figsize=(max(5.0, 0.7 * len(labels) + 2), 4.5))
    ax = fig.add_subplot()
    positions = np.arange(len(labels))
    ax.bar(positions, values, yerr=yerr, capsize=4, color="tab:blue", alpha=0.85)
    ax.set_xticks(positions, labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def plot_paired(
    differences: Mapping[str, ArrayLike],
    outcomes: Mapping[str, str],
    path: str | os.PathLike,
    title: str,
    xlabel: str,
) -> None:
    """One line per compared row: its per-patient differences as dots, their mean as a bar, a zero line, coloured by
    ``outcomes`` ("better" green, "worse" red, anything else grey), so wins, losses and noise read at a glance."""
    labels = list(differences)
    if not labels or not set(labels) <= set(outcomes):
        raise LLMTimeError("plot_paired needs at least one row and an outcome for each")
    colours = {"better": "tab:green", "worse": "tab:red"}
    fig = Figure(figsize=(7.5, 0.42 * len(labels) + 1.6))
    ax = fig.add_subplot()
    for i, label in enumerate(labels):
        d = np.asarray(differences[label], dtype=float)
        colour = colours.get(outcomes[label], "tab:gray")
        ax.scatter(d, np.full(len(d), i), s=14, color=colour, alpha=0.7)
        if len(d):
            ax.plot([d.mean()] * 2, [i - 0.3, i + 0.3], color=colour, linewidth=2.5)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def plot_scatter(
    x: ArrayLike,
    y: ArrayLike,
    labels: Sequence[str],
    path: str | os.PathLike,
    title: str,
    xlabel: str,
    ylabel: str,
) -> None:
    """Points with a text label each, for trade-offs such as RMSE against latency."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != (len(labels),) or y.shape != x.shape:
        raise LLMTimeError(f"plot_scatter needs one x and one y per label; got {len(labels)} labels")
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    ax.scatter(x, y, color="tab:blue")
    for xi, yi, label in zip(x, y, labels):
        ax.annotate(label, (xi, yi), xytext=(4, 4), textcoords="offset points", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_learning_curve(history: list[dict], path: str | os.PathLike, title: str) -> None:
    """Training and validation loss per epoch (log scale), the best validation epoch marked."""
    epochs = [h["epoch"] for h in history if "val_loss" in h]
    val = [h["val_loss"] for h in history if "val_loss" in h]
    train = [(h["epoch"], h["train_loss"]) for h in history if h.get("train_loss") is not None]
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train), marker="o", label="train loss")
    ax.plot(epochs, val, marker="o", label="validation loss")
    if val:
        best = int(np.argmin(val))
        ax.scatter([epochs[best]], [val[best]], s=120, facecolors="none", edgecolors="k", label="best (kept)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (scaled glucose)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_scaling(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    reference: float,
    path: str | os.PathLike,
    title: str,
) -> None:
    """One line per row through its (budget, RMSE mean) points with sd bars, budgets on a log axis, and the
    reference (persistence) as a dashed line: where the curves cross reads at a glance."""
    if not curves:
        raise LLMTimeError("plot_scaling needs at least one curve")
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    for label, (x, y, sd) in curves.items():
        order = np.argsort(np.asarray(x, dtype=float))
        x, y = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]
        err = np.nan_to_num(np.asarray(sd, dtype=float)[order])
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
    ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="persistence")
    ax.set_xscale("log")
    ax.set_xlabel("training-window presentations (budget)")
    ax.set_ylabel("RMSE (mg/dL)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)
