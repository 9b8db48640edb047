"""The checks every reader applies to the glucose values it reads: which unit a file is in, whether the unit changes
inside it, and how a bad value is quoted in an error.

Units. CGM sensors report 40-400 mg/dL (2.2-22.2 mmol/L); no mg/dL record has a median below 35 and no mmol/L
record one above it, so a series whose median is below ``MMOL_MEDIAN_LIMIT`` is in mmol/L. Values that are not
positive say nothing about units (a sensor error code, an empty cell read as 0) and are left out of every unit rule;
a series whose median is not positive is refused as such rather than told it "looks like mmol/L".

A unit change inside one file (an export that switched display units part-way) is found per reading, in time order:
each positive reading is on the mg/dL side (>= 35) or the mmol/L side (< 35). A run of ``UNIT_RUN`` readings in a
row on one side establishes that side; a later run of ``UNIT_RUN`` readings on the other side is a change, reported
at its first reading. Thirty minutes of readings is never a physiological excursion: a mg/dL sensor floors at
39-40 and a mmol/L one caps at 22.2-27.8, so a real trace never stays on the other side of 35 that long, while a
single typo or a "LO" code written as a small number stays under the run length and is left to the range check
(rejected and counted).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from utils.errors import LLMTimeError
from utils.metrics import MGDL_PER_MMOL

MMOL_MEDIAN_LIMIT = 35.0
UNIT_RUN = 6  # readings in a row (30 min at 5-minute sampling) that establish a unit
UNITS = ("auto", "mgdl", "mmol")
QUOTE_CHARS = 40  # a quoted bad value is cut here: a 20 MB cell must not become a 20 MB error line


def clip(value: object) -> str:
    """``value`` as text an error message can hold: cut to ``QUOTE_CHARS`` characters plus '...'."""
    text = str(value)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def quote(value: object) -> str:
    """``value`` as an error message quotes it: repr, cut to ``QUOTE_CHARS`` characters plus '...'."""
    text = str(value)
    return repr(text) if len(text) <= QUOTE_CHARS else repr(text[:QUOTE_CHARS]) + "..."


def positive_median(values: np.ndarray, source: str) -> float:
    """The median of the finite values; a series whose median is not positive is refused, saying so."""
    finite = values[np.isfinite(values)]
    median = float(np.median(finite)) if len(finite) else float("nan")
    if len(finite) and median <= 0:
        what = "negative" if median < 0 else "zero"
        raise LLMTimeError(
            f"{source}: glucose values are {what} (median {median:.1f}); CGM readings are positive mg/dL or mmol/L: "
            "check that the glucose column holds the sensor readings"
        )
    return median


def unit_change(values: np.ndarray) -> Optional[int]:
    """Position (in ``values``, which are in time order) of the first reading of a sustained run on the other side
    of ``MMOL_MEDIAN_LIMIT`` from the first sustained run; None when the series keeps one unit."""
    positions = np.flatnonzero(np.isfinite(values) & (values > 0))
    if len(positions) < 2 * UNIT_RUN:
        return None
    low = values[positions] < MMOL_MEDIAN_LIMIT
    starts = np.flatnonzero(np.concatenate(([True], low[1:] != low[:-1])))
    lengths = np.diff(np.concatenate((starts, [len(low)])))
    sustained = starts[lengths >= UNIT_RUN]
    if len(sustained) == 0:
        return None
    other = sustained[low[sustained] != low[sustained[0]]]
    return int(positions[other[0]]) if len(other) else None


def check_series(values: np.ndarray, where: Callable[[int], str], source: str) -> float:
    """The median of one file's readings (in time order), after refusing a non-positive median and a unit change
    inside the file; ``where(i)`` names reading i for the error (e.g. "line 12 (2024-05-01 08:05)")."""
    values = np.asarray(values, dtype=float)
    median = positive_median(values, source)
    change = unit_change(values)
    if change is not None:
        shown = values[:change][np.isfinite(values[:change]) & (values[:change] > 0)]
        now = "mmol/L" if values[change] < MMOL_MEDIAN_LIMIT else "mg/dL"
        was = "mg/dL" if now == "mmol/L" else "mmol/L"
        raise LLMTimeError(
            f"{source}: glucose units change at {where(change)}: readings before it look like {was} (e.g. "
            f"{shown[-1]:g}), from it on like {now} ({values[change]:g} and the next {UNIT_RUN - 1}); "
            "export the file in one unit"
        )
    return median


def glucose_units(values: np.ndarray, where: Callable[[int], str], requested: str, source: str,
                  flag: str) -> tuple[str, Optional[str]]:
    """('mg/dL' or 'mmol/L', a note when detected) of one file's readings in time order.

    ``requested`` is the user's ``flag`` value (auto, mgdl or mmol). A unit change inside the file is refused
    whatever was requested, since one factor cannot convert both parts.
    """
    if requested not in UNITS:
        raise LLMTimeError(f"{flag} must be one of {', '.join(UNITS)}, got {requested!r}")
    median = check_series(values, where, source)
    looks_mmol = bool(np.isfinite(median) and median < MMOL_MEDIAN_LIMIT)
    if requested == "mmol":
        return "mmol/L", None
    if requested == "mgdl":
        if looks_mmol:
            raise LLMTimeError(
                f"{source} looks like mmol/L (median {median:.1f}) but {flag} mgdl was given: use {flag} mmol "
                "(or auto)"
            )
        return "mg/dL", None
    if looks_mmol:
        return "mmol/L", (
            f"glucose values have a median of {median:.1f}, below {MMOL_MEDIAN_LIMIT:g}: read as mmol/L "
            f"(x{MGDL_PER_MMOL:g} for the model) and reported in mmol/L; pass {flag} to say otherwise"
        )
    return "mg/dL", None
