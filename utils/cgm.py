"""The facts of the CGM grid that every layer shares: its step, the input channels beside glucose, and the horizons
the reports name.

Declared once here, in a leaf module any layer may import, so the data readers, the models, the evaluation and the
reports cannot drift apart (a report reading the 60-min column of a grid that stepped in 15 minutes would score the
wrong horizon without an error).
"""

from __future__ import annotations

from utils.errors import LLMTimeError

STEP_MINUTES = 5  # the CGM grid: one reading every 5 minutes, as OhioT1DM's sensors record
COVARIATES = ("basal", "bolus", "carbs")  # the input channels beside glucose (--features MS), in channel order
NAMED_HORIZONS_MIN = (30, 60)  # the horizons every report scores and names (BGLP 2020's)


def minutes_to_step(minutes: float, step_minutes: float = STEP_MINUTES) -> int:
    """Index of the horizon step that forecasts ``minutes`` ahead (30 min at 5-min sampling is index 5).

    Step index ``k`` forecasts ``(k + 1) * step_minutes`` ahead, because the first predicted value is one sample after
    the input window ends.
    """
    if step_minutes <= 0:
        raise LLMTimeError(f"step_minutes must be positive, got {step_minutes}")
    steps = minutes / step_minutes
    if minutes <= 0 or not float(steps).is_integer():
        raise LLMTimeError(f"a horizon of {minutes} min is not a positive whole number of {step_minutes}-min steps")
    return int(steps) - 1
