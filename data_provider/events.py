"""Meals, boluses and basal of an input window, summarised with published curves and stated as diabetes-log text.

Time-LLM reads the patient's events as words ("as language", beside the channels): the prompt gets one sentence per
window, e.g. ``meal 40 g 20 min ago; bolus 4.0 U 20 min ago; basal 0.8 U/h; insulin on board 3.9 U; carbs on board
36 g``. Everything here works on unscaled [B, L] windows (U/h, U, g on the 5-minute grid of ``data_provider/ohio.py``)
whose last point is the forecast origin, vectorised over the batch; only the final string formatting is per window.

Curves (parameters are the module constants below):

- Insulin on board: the exponential insulin action model of Dragan Maksimovic (LoopKit/Loop issue 388), used by
  Loop (``ExponentialInsulinModel``) and OpenAPS oref0 (``lib/iob/calculate.js``, exponential curve). With peak
  activity time ``tp`` and duration of insulin action ``td``::

      tau = tp (1 - tp/td) / (1 - 2 tp/td),   a = 2 tau / td,   S = 1 / (1 - a + (1 + a) exp(-td/tau))
      IOB(t) = 1 - S (1 - a) ((t^2 / (tau td (1 - a)) - t/tau - 1) exp(-t/tau) + 1),  0 <= t < td

  the fraction of a dose still to act t minutes after delivery: 1 at t = 0, 0 from t = td on. Parameters are the
  rapid-acting (Humalog/Novolog) preset: tp = 75 min, td = 360 min. Loop also delays the curve by 10 minutes; this
  module does not (oref0 does not either). Only boluses count: the pump's basal schedule is not in the data, so net
  basal insulin cannot be computed, and the figure is the bolus "active insulin" a Medtronic pump (OhioT1DM's) shows.
- Carbohydrates on board: Loop's linear absorption model (``LinearAbsorption`` in LoopKit's CarbMath) with Loop's
  default medium absorption time of 180 min: COB(t) = grams * max(0, 1 - t / 180), so a 40 g meal 60 min ago leaves
  26.7 g.

Both sums run over the events inside the window only: with the default 6-hour window every bolus that still acts is
inside it; shorter windows undercount.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from configs.schema import EVENT_WORDS
from utils.cgm import STEP_MINUTES  # input index j lies (L - 1 - j) * STEP_MINUTES before the origin

INSULIN_PEAK_MIN = 75.0
INSULIN_DURATION_MIN = 360.0
CARB_ABSORPTION_MIN = 180.0
# Listed events: the most recent MAX_LISTED meals and MAX_LISTED boluses within LISTED_WITHIN_MIN of the origin.
# Each listed event costs ~7 prompt tokens in every window's pass through the backbone; an older meal has no carbs
# left (absorbed after 180 min) and an older bolus under 8% of its insulin, which the on-board figures still carry.
MAX_LISTED = 2
LISTED_WITHIN_MIN = 240
# Missing covariates are filled with 0 before scaling, so unscaled "zeros" carry float noise of ~1e-7.
EVENT_EPS = 1e-3


def iob_fraction(minutes: Tensor, peak: float = INSULIN_PEAK_MIN, duration: float = INSULIN_DURATION_MIN) -> Tensor:
    """Fraction of a bolus still on board ``minutes`` after delivery (exponential model; 1 before delivery)."""
    tau = peak * (1 - peak / duration) / (1 - 2 * peak / duration)
    a = 2 * tau / duration
    s = 1 / (1 - a + (1 + a) * math.exp(-duration / tau))
    t = minutes.double().clamp(min=0.0)
    remaining = 1 - s * (1 - a) * ((t**2 / (tau * duration * (1 - a)) - t / tau - 1) * torch.exp(-t / tau) + 1)
    return torch.where(t >= duration, torch.zeros_like(t), remaining)


def cob_fraction(minutes: Tensor, absorption: float = CARB_ABSORPTION_MIN) -> Tensor:
    """Fraction of a meal's carbohydrates not yet absorbed ``minutes`` after it (Loop's linear model)."""
    return (1 - minutes.double().clamp(min=0.0) / absorption).clamp(min=0.0)


@dataclass
class EventSummary:
    """Per-window events for a batch; listed events are most recent first, padded with zeros beyond ``*_count``.

    Sizes are already rounded as the text states them: grams to integers, insulin to tenths of a unit (``*_tenths``).
    """

    meal_minutes: Tensor  # [B, MAX_LISTED] minutes before the origin
    meal_grams: Tensor  # [B, MAX_LISTED]
    meal_count: Tensor  # [B]
    bolus_minutes: Tensor  # [B, MAX_LISTED]
    bolus_tenths: Tensor  # [B, MAX_LISTED] units x 10
    bolus_count: Tensor  # [B]
    logged: Tensor  # [B] bool: a meal or bolus anywhere in the window (of a size that rounds above zero)
    basal_tenths: Tensor  # [B] U/h x 10 at the origin
    basal_logged: Tensor  # [B] bool: a basal rate is on record at the origin
    iob_tenths: Tensor  # [B] U x 10
    cob_grams: Tensor  # [B]


def _recent(sizes: Tensor, minutes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The most recent MAX_LISTED nonzero ``sizes`` [B, L] within LISTED_WITHIN_MIN: (minutes, sizes, count)."""
    newest_first, ago = sizes.flip(1), minutes.flip(0)
    listed = (newest_first > 0) & (ago <= LISTED_WITHIN_MIN)
    k = min(MAX_LISTED, sizes.shape[1])
    order = torch.sort(listed.long(), dim=1, descending=True, stable=True).indices[:, :k]
    keep = listed.gather(1, order)
    return torch.where(keep, ago[order], 0), torch.where(keep, newest_first.gather(1, order), 0), keep.sum(dim=1)


def summarize_events(basal: Tensor, bolus: Tensor, carbs: Tensor,
                     basal_logged: Optional[Tensor] = None) -> EventSummary:
    """Unscaled [B, L] basal (U/h), bolus (U) and carbs (g) windows -> the events stated in the prompt.

    ``basal_logged`` ([B, L] 0/1, the ``basal_logged`` input channel) tells an unlogged basal from a logged 0 U/h;
    without it (runs made before that channel) every basal value counts as logged. Only the window is read, and its
    last point is the origin, so nothing after the origin can appear.
    """
    length = basal.shape[1]
    minutes = (torch.arange(length - 1, -1, -1) * STEP_MINUTES).long()
    bolus, carbs = bolus.double(), carbs.double()
    bolus = torch.where(bolus.abs() < EVENT_EPS, 0.0, bolus)
    carbs = torch.where(carbs.abs() < EVENT_EPS, 0.0, carbs)
    grams, tenths = torch.round(carbs).long(), torch.round(bolus * 10).long()
    meal_minutes, meal_grams, meal_count = _recent(grams, minutes)
    bolus_minutes, bolus_tenths, bolus_count = _recent(tenths, minutes)
    iob = (bolus * iob_fraction(minutes)).sum(dim=1)
    cob = (carbs * cob_fraction(minutes)).sum(dim=1)
    return EventSummary(
        meal_minutes=meal_minutes, meal_grams=meal_grams, meal_count=meal_count,
        bolus_minutes=bolus_minutes, bolus_tenths=bolus_tenths, bolus_count=bolus_count,
        logged=((grams > 0) | (tenths > 0)).any(dim=1),
        basal_tenths=torch.round(basal.double()[:, -1].clamp(min=0.0) * 10).long(),
        basal_logged=(torch.ones(basal.shape[0], dtype=torch.bool) if basal_logged is None
                      else basal_logged[:, -1].double() > 0.5),
        iob_tenths=torch.round(iob.clamp(min=0.0) * 10).long(),
        cob_grams=torch.round(cob.clamp(min=0.0)).long(),
    )


def _units(tenths: int) -> str:
    return f"{tenths // 10}.{tenths % 10}"


# The wordings of the event text (ModelConfig.event_words, EVENT_WORDS): the same facts, in the same order, either as
# a diabetes log would say them ("full") or in about half the prompt tokens ("terse": no units, no "ago"/"on board",
# one word per quantity), since every prompt token is paid for in every window's pass through the backbone.


def event_text(s: EventSummary, i: int, words: str = "full") -> str:
    """Window i's events as a diabetes log would say them, e.g.
    ``meal 40 g 20 min ago; bolus 4.0 U 20 min ago; basal 0.8 U/h; insulin on board 3.9 U; carbs on board 36 g``,
    or with ``words="terse"`` ``meal 40 20 min; bolus 4.0 20 min; basal 0.8; insulin 3.9; carbs 36`` (39 against
    26 MiniLM WordPiece tokens; 30 against 15 with nothing logged).

    With no meal or bolus in the window it says ``no meals or boluses logged`` (terse: ``none``); with some, but none
    in the listed span, ``no meals or boluses in last 4 h`` (terse: ``none in 4 h``). Basal, insulin on board and
    carbs on board are always stated; a window with no basal rate on record at its origin says ``basal not logged``,
    which a suspended pump (a logged ``basal 0.0 U/h``) does not.
    """
    return _sentence({name: getattr(s, name)[i].tolist() for name in s.__dataclass_fields__}, words)


def event_texts(s: EventSummary, words: str = "full") -> list[str]:
    """``event_text`` for every window of the batch (the tensors are read into Python once, not per value)."""
    columns = {name: getattr(s, name).tolist() for name in s.__dataclass_fields__}
    return [_sentence({name: column[i] for name, column in columns.items()}, words) for i in range(len(s.logged))]


def _sentence(w: dict, words: str = "full") -> str:
    """One window's text from its ``EventSummary`` fields as Python values, in ``words`` (``EVENT_WORDS``)."""
    if words not in EVENT_WORDS:
        raise ValueError(f"event words must be one of {EVENT_WORDS}, got {words!r}")
    full = words == "full"
    meal, dose = ("meal {} g {} min ago", "bolus {} U {} min ago") if full else ("meal {} {} min", "bolus {} {} min")
    parts = [meal.format(w["meal_grams"][j], w["meal_minutes"][j]) for j in range(w["meal_count"])]
    parts += [dose.format(_units(w["bolus_tenths"][j]), w["bolus_minutes"][j]) for j in range(w["bolus_count"])]
    if not parts:
        hours = LISTED_WITHIN_MIN // 60
        parts = [(f"no meals or boluses in last {hours} h" if full else f"none in {hours} h") if w["logged"]
                 else ("no meals or boluses logged" if full else "none")]
    basal = (f"basal {_units(w['basal_tenths'])}" + (" U/h" if full else "")) if w["basal_logged"] \
        else "basal not logged"
    iob, cob = _units(w["iob_tenths"]), w["cob_grams"]
    parts += [basal, *((f"insulin on board {iob} U", f"carbs on board {cob} g") if full
                       else (f"insulin {iob}", f"carbs {cob}"))]
    return "; ".join(parts)


def horizon_texts(bolus: Tensor, carbs: Tensor) -> list[str]:
    """Unscaled [B, H] boluses (U) and carbs (g) logged at the H steps after each window's origin (the privileged
    view's horizon, ``data_provider/channels.py``) -> per window e.g. ``ahead: meal 50 g in 20 min; bolus 5.0 U in
    15 min``, soonest first, at most ``MAX_LISTED`` of each, or ``ahead: no meals or boluses``.

    Only a teacher's prompt states this: it is the log after the forecast time, which a deployed model cannot know.
    """
    minutes = ((torch.arange(bolus.shape[1]) + 1) * STEP_MINUTES).tolist()
    grams = torch.round(torch.where(carbs.double().abs() < EVENT_EPS, 0.0, carbs.double())).long().tolist()
    tenths = torch.round(torch.where(bolus.double().abs() < EVENT_EPS, 0.0, bolus.double()) * 10).long().tolist()
    texts = []
    for meal_row, bolus_row in zip(grams, tenths):
        meals = [f"meal {g} g in {m} min" for g, m in zip(meal_row, minutes) if g > 0][:MAX_LISTED]
        doses = [f"bolus {_units(t)} U in {m} min" for t, m in zip(bolus_row, minutes) if t > 0][:MAX_LISTED]
        texts.append("ahead: " + ("; ".join(meals + doses) or "no meals or boluses"))
    return texts


def longest_event_text(words: str = "full") -> str:
    """The longest text ``event_text`` writes in ``words`` for sizes up to 999 g, 99.9 U and 9.9 U/h, and events up
    to ``LISTED_WITHIN_MIN`` minutes old: what a fixed-width exported prompt (bench/export.py) must leave room for."""
    most = {"meal_grams": [999] * MAX_LISTED, "meal_minutes": [LISTED_WITHIN_MIN - STEP_MINUTES] * MAX_LISTED,
            "meal_count": MAX_LISTED, "bolus_tenths": [999] * MAX_LISTED,
            "bolus_minutes": [LISTED_WITHIN_MIN - STEP_MINUTES] * MAX_LISTED, "bolus_count": MAX_LISTED,
            "logged": True, "basal_tenths": 99, "basal_logged": True, "iob_tenths": 999, "cob_grams": 999}
    return _sentence(most, words)

