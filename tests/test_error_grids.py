"""Clarke and Parkes error-grid tests on points and arrays small enough to check by hand."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from matplotlib.path import Path

from utils.error_grids import PARKES_LINES, clarke_zones, parkes_zones
from utils.errors import LLMTimeError

# ---------------------------------------------------------------------------------------------------------------------
# Clarke
# ---------------------------------------------------------------------------------------------------------------------

CLARKE_CASES = [
    # (reference, prediction, zone, why)
    (100, 100, "A", "exact"),
    (100, 115, "A", "15 % high, inside the 20 % band"),
    (100, 120, "A", "on the +20 % line; A wins ties"),
    (100, 80, "A", "on the -20 % line"),
    (100, 121, "B", "just above +20 %; below the C line pred = ref + 110 = 210"),
    (100, 130, "B", "30 % high: not A, not E/C/D, so B"),
    (50, 60, "A", "both below 70"),
    (70, 70, "A", "corner of the hypo square"),
    (50, 200, "E", "ref <= 70 and pred >= 180: hypo read as hyper"),
    (70, 180, "E", "corner shared by E and D; E is tested first"),
    (200, 60, "E", "ref >= 180 and pred <= 70: hyper read as hypo"),
    (180, 70, "E", "corner of the lower E zone"),
    (300, 100, "D", "ref >= 240 and 70 <= pred <= 180; 300 is beyond the C line's 290 limit anyway"),
    (240, 180, "D", "corner of the lower D zone (0.8 * 240 = 192 > 180, so not A)"),
    (239, 180, "B", "left of the lower D zone, above pred = 70"),
    (50, 100, "D", "ref <= 70 and 70 <= pred <= 180"),
    (65, 80, "D", "1.2 * 65 = 78 < 80: above the A line inside the 58.3..70 strip"),
    (65, 78, "A", "on the +20 % line inside that strip"),
    (100, 210, "C", "on pred = ref + 110"),
    (100, 209, "B", "just below the upper C line"),
    (290, 400, "C", "end of the upper C line"),
    (150, 28, "C", "on pred = 7/5 ref - 182 = 28"),
    (150, 29, "B", "just above the lower C line"),
    (130, 0, "C", "start of the lower C line"),
    (200, 150, "B", "0.8 * 200 = 160 > 150, ref < 240"),
]


@pytest.mark.parametrize(("ref", "pred", "zone", "why"), CLARKE_CASES)
def test_clarke_hand_checked(ref: float, pred: float, zone: str, why: str) -> None:
    assert clarke_zones([ref], [pred])[0] == zone, why


def test_clarke_vectorised_keeps_shape_and_reaches_every_zone() -> None:
    refs = np.array([c[0] for c in CLARKE_CASES], dtype=float).reshape(5, 5)
    preds = np.array([c[1] for c in CLARKE_CASES], dtype=float).reshape(5, 5)
    zones = clarke_zones(refs, preds)
    assert zones.shape == (5, 5)
    assert set(zones.ravel()) == set("ABCDE")


def _clarke_reference(ref: Fraction, pred: Fraction) -> str:
    """The rule list as usually written (175/3 strip and all), in exact arithmetic, one point at a time."""
    if (ref <= 70 and pred <= 70) or (Fraction(4, 5) * ref <= pred <= Fraction(6, 5) * ref):
        return "A"
    if (ref >= 180 and pred <= 70) or (ref <= 70 and pred >= 180):
        return "E"
    if (70 <= ref <= 290 and pred >= ref + 110) or (130 <= ref <= 180 and pred <= Fraction(7, 5) * ref - 182):
        return "C"
    if (
        (ref >= 240 and 70 <= pred <= 180)
        or (ref <= Fraction(175, 3) and 70 <= pred <= 180)
        or (Fraction(175, 3) <= ref <= 70 and pred >= Fraction(6, 5) * ref)
    ):
        return "D"
    return "B"


def test_clarke_matches_scalar_rules_on_integer_grid() -> None:
    """Every integer-ish point 0..400 in steps of 5 (many exactly on lines) zones as the scalar rule list does."""
    values = np.arange(0, 401, 5)
    refs, preds = (a.ravel() for a in np.meshgrid(values, values))
    expected = [_clarke_reference(Fraction(int(r)), Fraction(int(p))) for r, p in zip(refs, preds)]
    assert clarke_zones(refs, preds).tolist() == expected


def test_grid_inputs_refuse_nan_and_shape_mismatch() -> None:
    with pytest.raises(LLMTimeError):
        clarke_zones([100.0, np.nan], [100.0, 100.0])
    with pytest.raises(LLMTimeError):
        parkes_zones([100.0], [100.0, 90.0])


# ---------------------------------------------------------------------------------------------------------------------
# Parkes (type 1)
# ---------------------------------------------------------------------------------------------------------------------

PARKES_CASES = [
    (100, 100, "A", "identity"),
    (0, 50, "A", "first vertex of the A upper line: on the line goes to the better zone"),
    (0, 51, "B", "just above it"),
    (140, 170, "A", "vertex of the A upper line"),
    (140, 171, "B", "just above that vertex"),
    (100, 126, "A", "A upper at 100 is 50 + 70 * 120/110 = 126.4"),
    (100, 127, "B", "above 126.4"),
    (123, 100, "A", "A lower at pred 100 is ref = 50 + 70 * 120/115 = 123.04"),
    (124, 100, "B", "right of 123.04"),
    (50, 10, "A", "on the vertical A lower segment ref = 50"),
    (100, 180, "C", "B upper at 100 is 110 + 30 * 440/190 = 179.5"),
    (120, 10, "B", "on the vertical B lower segment ref = 120"),
    (121, 10, "C", "right of it"),
    (250, 100, "C", "B lower at 100 is ref 218, C lower is ref 413.6"),
    (60, 155, "C", "on the C upper segment (50,125)-(80,215)"),
    (60, 156, "D", "above it"),
    (250, 20, "C", "on the vertical C lower segment ref = 250"),
    (300, 20, "D", "right of it"),
    (500, 10, "D", "type 1 has no lower E zone"),
    (35, 155, "D", "vertex of the D upper line"),
    (35, 156, "E", "above it"),
    (10, 200, "E", "deep hypo read as hyper"),
]


@pytest.mark.parametrize(("ref", "pred", "zone", "why"), PARKES_CASES)
def test_parkes_type1_hand_checked(ref: float, pred: float, zone: str, why: str) -> None:
    assert parkes_zones([ref], [pred])[0] == zone, why


def test_parkes_reaches_every_zone_for_both_types() -> None:
    refs = np.array([100, 100, 100, 60, 10, 300, 400, 500], dtype=float)
    preds = np.array([100, 127, 180, 156, 400, 20, 140, 60], dtype=float)
    assert set(parkes_zones(refs, preds)) == set("ABCDE")
    assert set(parkes_zones(refs, preds, diabetes_type=2)) == set("ABCDE")


def test_parkes_rejects_unknown_type() -> None:
    with pytest.raises(LLMTimeError):
        parkes_zones([100.0], [100.0], diabetes_type=3)


def test_parkes_line_vertices_are_monotonic() -> None:
    """Upper lines are functions of reference, lower lines of prediction; the zoning relies on it."""
    for lines in PARKES_LINES.values():
        for line in lines:
            refs, preds = zip(*line.vertices)
            along = refs if line.side == "upper" else preds
            assert all(b > a for a, b in zip(along, along[1:])), line


def _region(line_vertices: tuple[tuple[float, float], ...], side: str) -> Path:
    """Polygon of the grid square (0..550) lying beyond a boundary line: closed via the top-left or bottom-right."""
    corner = (0.0, 550.0) if side == "upper" else (550.0, 0.0)
    return Path([*line_vertices, corner, line_vertices[0]])


@pytest.mark.parametrize("diabetes_type", [1, 2])
def test_parkes_matches_point_in_polygon(diabetes_type: int) -> None:
    """Off-line points zone the same as an independent polygon test built from the published vertex tables."""
    values = np.arange(0.37, 550, 3.1)
    refs, preds = (a.ravel() for a in np.meshgrid(values, values))
    expected = np.full(refs.shape, "A")
    for line in PARKES_LINES[diabetes_type]:
        inside = _region(line.vertices, line.side).contains_points(np.column_stack([refs, preds]))
        expected[inside] = line.zone
    assert (parkes_zones(refs, preds, diabetes_type) == expected).all()
