"""Clinical error grids: the Clarke and Parkes zone (A..E) of each (reference, prediction) pair, and zone shares.

Why a module of its own: a zone is a clinical judgement of one reading pair (would acting on the prediction lead to
the right, a harmless, or a dangerous treatment?), not a forecast-error statistic, and it needs the published
boundary tables. ``utils.metrics.evaluate`` reports the zone shares at 30 and 60 min; ``utils.plots`` draws the grids.
Everything is in mg/dL.

Error grids follow the published definitions:

* Clarke et al. (1987), Diabetes Care 10:622, as commonly implemented (the rules below match the widely used Python
  and R implementations, so zone shares compare with published numbers).
* Parkes et al. (2000), Diabetes Care 23:1143, consensus grid; vertices as tabulated in Pfützner et al. (2013),
  J Diabetes Sci Technol 7:1275, "Technical aspects of the Parkes error grid".
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from utils.errors import LLMTimeError

ZONES = ("A", "B", "C", "D", "E")

# Tolerance for "exactly on a Parkes line": interpolated boundary values carry float rounding, and integer CGM
# readings do land on vertices and on segments with rational slopes.
_ON_LINE_TOL = 1e-9


def _grid_inputs(reference: ArrayLike, prediction: ArrayLike) -> tuple[NDArray, NDArray]:
    """Float arrays of one shape; NaN is refused because every comparison with it is False and would zone it A or B."""
    reference = np.asarray(reference, dtype=float)
    prediction = np.asarray(prediction, dtype=float)
    if reference.shape != prediction.shape:
        raise LLMTimeError(f"reference and prediction shapes differ: {reference.shape} vs {prediction.shape}")
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(prediction))):
        raise LLMTimeError("error-grid inputs must be finite; drop unscored points before zoning")
    return reference, prediction


def clarke_zones(reference: ArrayLike, prediction: ArrayLike) -> NDArray[np.str_]:
    """Clarke error-grid zone (``"A"``..``"E"``) of each (reference, prediction) pair in mg/dL.

    Rules, tested in this order (first match wins), every inequality inclusive:

    * A: ``ref <= 70 and pred <= 70``, or ``0.8 ref <= pred <= 1.2 ref`` (within 20 %);
    * E: ``ref <= 70 and pred >= 180``, or ``ref >= 180 and pred <= 70``;
    * C: ``70 <= ref <= 290 and pred >= ref + 110``, or ``130 <= ref <= 180 and pred <= 7/5 ref - 182``;
    * D: ``ref >= 240 and 70 <= pred <= 180``, or ``ref <= 70 and 70 <= pred <= 180`` (the part of that strip
      not already A, i.e. above ``pred = 1.2 ref`` for ``175/3 <= ref <= 70``);
    * B: everything else.

    So a point on a boundary goes to whichever of its two zones comes first in A, E, C, D, B: ties with A resolve to
    A, but e.g. (70, 180) is E rather than D. This is the convention of the common implementations; the comparisons
    are done in scaled integer form (``5 pred <= 6 ref`` rather than ``pred <= 1.2 ref``) so integer readings on a
    line are never pushed across it by float rounding.
    """
    ref, pred = _grid_inputs(reference, prediction)
    zone_a = ((ref <= 70) & (pred <= 70)) | ((5 * pred <= 6 * ref) & (5 * pred >= 4 * ref))
    zone_e = ((ref <= 70) & (pred >= 180)) | ((ref >= 180) & (pred <= 70))
    zone_c = ((ref >= 70) & (ref <= 290) & (pred >= ref + 110)) | (
        (ref >= 130) & (ref <= 180) & (5 * pred <= 7 * ref - 910)
    )
    zone_d = ((ref >= 240) & (pred >= 70) & (pred <= 180)) | ((ref <= 70) & (pred >= 70) & (pred <= 180))
    return np.select([zone_a, zone_e, zone_c, zone_d], ["A", "E", "C", "D"], default="B")


class GridLine(NamedTuple):
    """One Parkes boundary polyline: points strictly beyond it are at least ``zone``.

    ``side == "upper"`` lines run above the identity and bound prediction from above (vertices increase in reference);
    ``"lower"`` lines run below it and bound reference from above (vertices increase in prediction, which allows the
    vertical first segments such as (50, 0)-(50, 30)).
    """

    zone: str
    side: Literal["upper", "lower"]
    vertices: tuple[tuple[float, float], ...]


# (reference, prediction) vertices in mg/dL from the published tables; the grid is drawn on 0..550 and each line is
# continued along its last segment beyond that (CGM data rarely goes there: sensors read 40..400).
PARKES_LINES: dict[int, tuple[GridLine, ...]] = {
    1: (
        GridLine("B", "upper", ((0, 50), (30, 50), (140, 170), (280, 380), (430, 550))),
        GridLine("B", "lower", ((50, 0), (50, 30), (170, 145), (385, 300), (550, 450))),
        GridLine("C", "upper", ((0, 60), (30, 60), (50, 80), (70, 110), (260, 550))),
        GridLine("C", "lower", ((120, 0), (120, 30), (260, 130), (550, 250))),
        GridLine("D", "upper", ((0, 100), (25, 100), (50, 125), (80, 215), (125, 550))),
        GridLine("D", "lower", ((250, 0), (250, 40), (550, 150))),
        GridLine("E", "upper", ((0, 150), (35, 155), (50, 550))),
    ),
    2: (
        GridLine("B", "upper", ((0, 50), (30, 50), (230, 330), (440, 550))),
        GridLine("B", "lower", ((50, 0), (50, 30), (90, 80), (330, 230), (550, 450))),
        GridLine("C", "upper", ((0, 60), (30, 60), (280, 550))),
        GridLine("C", "lower", ((90, 0), (260, 130), (550, 250))),
        GridLine("D", "upper", ((0, 80), (25, 80), (35, 90), (125, 550))),
        GridLine("D", "lower", ((250, 0), (250, 40), (410, 110), (550, 160))),
        GridLine("E", "upper", ((0, 200), (35, 200), (50, 550))),
    ),
}


def _polyline(x: NDArray, xs: NDArray, ys: NDArray) -> NDArray:
    """Piecewise-linear y(x) through the vertices, held flat before the first and extended along the last segment."""
    slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return np.where(x > xs[-1], ys[-1] + (x - xs[-1]) * slope, np.interp(x, xs, ys))


def beyond_line(line: GridLine, reference: NDArray, prediction: NDArray) -> NDArray[np.bool_]:
    """Whether each point lies strictly outside ``line`` (points on the line are inside, i.e. in the better zone)."""
    refs, preds = (np.array(v, dtype=float) for v in zip(*line.vertices))
    if line.side == "upper":
        return prediction > _polyline(reference, refs, preds) + _ON_LINE_TOL
    return reference > _polyline(prediction, preds, refs) + _ON_LINE_TOL


def parkes_zones(reference: ArrayLike, prediction: ArrayLike, diabetes_type: int = 1) -> NDArray[np.str_]:
    """Parkes (consensus) error-grid zone (``"A"``..``"E"``) of each (reference, prediction) pair in mg/dL.

    A point takes the worst zone whose boundary it lies strictly beyond; a point exactly on a line belongs to the
    better (lower-letter) zone. Neither published grid has a lower E zone.
    """
    if diabetes_type not in PARKES_LINES:
        raise LLMTimeError(f"Parkes grid exists for diabetes type 1 or 2, got {diabetes_type!r}")
    ref, pred = _grid_inputs(reference, prediction)
    zones = np.full(ref.shape, "A", dtype="<U1")
    for line in PARKES_LINES[diabetes_type]:  # ordered B..E, so a worse zone overwrites a better one
        zones[beyond_line(line, ref, pred)] = line.zone
    return zones


def zone_shares(zones: NDArray[np.str_]) -> dict[str, float | int | None]:
    """Percent of points in each zone, plus ``"A+B"`` and the count ``"n"``; shares are ``None`` when n is 0."""
    n = int(zones.size)
    shares: dict[str, float | int | None] = {z: (100.0 * float(np.sum(zones == z)) / n if n else None) for z in ZONES}
    shares["A+B"] = shares["A"] + shares["B"] if n else None  # type: ignore[operator]
    shares["n"] = n
    return shares
