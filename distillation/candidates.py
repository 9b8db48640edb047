"""The points of the validation search: loss weights x teacher-data share x mixup alpha.

Each candidate trains one distilled student and validation MSE picks among them (``distillation/search.py``), so
whether teacher-only windows (``distillation/teacher_data.py``) or blended windows (``distillation/mixup.py``) help
is decided on validation, per seed, as the loss weights are. A share or an alpha of 0 is the candidate without that
lever, so the search can always choose neither.

Both levers feed the student the teacher's forecasts (of windows without labels, or of blends), so they pair only
with weights that have a teacher-forecast term (beta > 0); mixup also needs gamma 0, since the teacher's hidden
states are cached for its unblended inputs only. Pairs that miss this are left out of the search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from distillation.losses import LossWeights
from utils.cli import split_list
from utils.errors import LLMTimeError


@dataclass(frozen=True)
class Candidate:
    """One distilled student to train: its loss weights, teacher-only windows per epoch (as a multiple of the
    labelled ones) and mixup alpha."""

    weights: LossWeights
    teacher_data: float = 0.0
    mixup_alpha: float = 0.0

    @property
    def plain(self) -> bool:
        """Whether the candidate trains on the labelled windows as they are (neither lever)."""
        return not self.teacher_data and not self.mixup_alpha

    def label(self) -> str:
        """Its run folder's suffix: the weights' label, then each lever in use."""
        return (self.weights.label() + (f"_td{self.teacher_data:g}" if self.teacher_data else "")
                + (f"_mix{self.mixup_alpha:g}" if self.mixup_alpha else ""))

    def describe(self) -> str:
        """How plans and progress lines name it: '(0.5, 0.5, 0.0)', then 'teacher data 1x' and 'mixup 0.2' if used."""
        return ", ".join([str(self.weights.as_tuple())]
                         + ([f"teacher data {self.teacher_data:g}x"] if self.teacher_data else [])
                         + ([f"mixup {self.mixup_alpha:g}"] if self.mixup_alpha else []))


def parse_levels(text: str, name: str) -> list[float]:
    """'0,1,4' -> [0.0, 1.0, 4.0]: the values the search tries for ``--<name>``, in the order given, repeats dropped."""
    try:
        values = [float(item) for item in split_list(text)]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v >= 0 for v in values):
        raise LLMTimeError(f"--{name} {text!r}: give comma-separated numbers >= 0 (0 = off), e.g. 0,1")
    return list(dict.fromkeys(values))


def usable(weights: LossWeights, share: float, alpha: float) -> bool:
    """Whether the levers apply to these weights: either needs a teacher-forecast term, mixup no hidden states."""
    return (not (share or alpha) or weights.beta > 0) and not (alpha and weights.gamma)


def search_space(weights: list[LossWeights], shares: list[float], alphas: list[float]) -> list[Candidate]:
    """Every usable (weights, share, alpha), the weights' order first: with shares and alphas of 0 alone, the
    candidates are the weights in their order, so the first still wins ties."""
    return [Candidate(w, s, a) for w in weights for s in shares for a in alphas if usable(w, s, a)]
