"""The distillation objective: truth, teacher forecast and (optionally) teacher hidden states.

    loss = alpha * MSE(student, truth) + beta * MSE(student, teacher forecast) + gamma * hidden-state loss

The hidden-state loss compares the student's patch-position hidden states (``Forecaster.forward_hidden``: embedding
output first, then one tensor per layer) with the teacher's at mapped layer pairs. Widths differ between
backbones, so each student state goes through a learned linear projection to the teacher's width; both sides are
standardised per feature vector (layer norm without affine) first, because raw hidden-state scales differ by orders
of magnitude across families and a plain MSE would be dominated by a few outlier features. Forecasts are real
numbers, so there is no softmax and no temperature: temperature scaling does not apply to regression.

The projections belong to the objective but are trained by the same optimiser as the student: ``DistillStudent``
wraps the student and its projections in one module whose plain ``forward(x)`` is the student's forecast, so the
shared ``Trainer`` validates and predicts with the student alone while the objective reaches the projected states
through its ``forward_hidden(x)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from data_provider.data_factory import WindowDataset
from distillation.mixup import Mixup
from distillation.teacher_cache import TeacherCache, normalise_hidden
from exp.objective import Objective, masked_mse
from models.backbones import FAMILIES
from models.base import Forecaster
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError

PROJECTION_PREFIX = "distill_projections."
LayerPairs = list[tuple[int, int]]


# --- layer mapping ------------------------------------------------------------------------------------------------


def uniform_layer_map(student_depth: int, teacher_depth: int) -> LayerPairs:
    """Student hidden index i <-> teacher index round(i * T / S), for i = 0 (embedding output) .. S (last layer).

    Ends meet ends: the embedding outputs are paired, and the student's last layer learns from the teacher's last.
    Halves round up, so the mapping does not depend on Python's round-half-to-even.
    """
    if student_depth < 1 or teacher_depth < 1:
        raise LLMTimeError(f"layer depths must be >= 1 (student {student_depth}, teacher {teacher_depth})")
    return [(i, int(math.floor(i * teacher_depth / student_depth + 0.5))) for i in range(student_depth + 1)]


def parse_layer_map(text: str) -> LayerPairs:
    """'0:0,1:3,2:6' -> [(0, 0), (1, 3), (2, 6)] (student:teacher hidden indices, 0 = embedding output)."""
    pairs = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise LLMTimeError(f"--layer-map item {item.strip()!r} is not STUDENT:TEACHER (e.g. 0:0,1:3,2:6)")
        pairs.append((int(parts[0]), int(parts[1])))
    return pairs


def check_layer_map(pairs: LayerPairs, student_depth: int, teacher_depth: int) -> LayerPairs:
    """Validate explicit pairs against the depths actually loaded (indices 0..depth)."""
    if not pairs:
        raise LLMTimeError("--layer-map is empty: give STUDENT:TEACHER pairs, or use --gamma 0 for output-only")
    for s, t in pairs:
        if not (0 <= s <= student_depth and 0 <= t <= teacher_depth):
            raise LLMTimeError(
                f"--layer-map pair {s}:{t} is outside student 0..{student_depth} / teacher 0..{teacher_depth}"
            )
    if len({s for s, _ in pairs}) != len(pairs):
        raise LLMTimeError("--layer-map names a student layer twice; give one teacher layer per student layer")
    return list(pairs)


def format_layer_map(pairs: LayerPairs) -> str:
    return ",".join(f"{s}:{t}" for s, t in pairs)


# --- features and projections -------------------------------------------------------------------------------------


def build_projections(student_width: int, teacher_width: int, n_pairs: int) -> nn.ModuleList:
    """One learned student->teacher projection per mapped pair; identity where the widths already agree."""
    make = (lambda: nn.Identity()) if student_width == teacher_width else (lambda: nn.Linear(student_width, teacher_width))
    return nn.ModuleList(make() for _ in range(n_pairs))


class DistillStudent(Forecaster):
    """A student plus its hidden-state projections, trained as one module by the shared Trainer.

    ``forward(x)`` is the student's forecast (validation and prediction see the student alone); ``forward_hidden(x)``
    also returns the projected, normalised student states at the mapped layers, one per pair (none mapped: it has
    no hidden states).
    Checkpoint state keeps the student's own keys unchanged and the projections under ``distill_projections.``, so
    ``student_state`` turns it back into a plain TimeLLM state. With no mapped layers (``gamma`` 0, or a student
    without a language model) there are no projections and the student's width is never read.
    """

    uses_llm = True

    def __init__(self, student: Forecaster, pairs: LayerPairs, teacher_width: int) -> None:
        super().__init__()
        self.student = student
        self.student_layers = [s for s, _ in pairs]
        self.has_hidden_states = bool(pairs)
        self.projections = (build_projections(hidden_width(student), teacher_width, len(pairs)) if pairs
                            else nn.ModuleList())

    @property
    def weights_source(self) -> str:
        return self.student.weights_source

    @property
    def backbone_row(self):
        return self.student.backbone_row

    def forward(self, x: Tensor, return_hidden: bool = False) -> Union[Tensor, tuple[Tensor, list[Tensor]]]:
        if not return_hidden:
            return self.student(x)
        pred, hidden = self.student.forward_hidden(x)
        # Normalise before projecting too: the projection then learns a mix of features, not their raw scale.
        feats = [normalise_hidden(proj(normalise_hidden(hidden[s]))) for proj, s in zip(self.projections, self.student_layers)]
        return pred, feats

    def fit_closed_form(self, train: WindowDataset) -> None:
        """The student's own closed-form fit (its ridge base, ``--base ridge``) before it trains."""
        self.student.fit_closed_form(train)

    def trainable_state_dict(self) -> dict[str, Tensor]:
        state = dict(self.student.trainable_state_dict())
        state.update({PROJECTION_PREFIX + k: v for k, v in self.projections.state_dict().items()})
        return state

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        student, projections = split_state(state)
        self.student.load_trainable_state_dict(student)
        self.projections.load_state_dict(projections)


def split_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """A DistillStudent state -> (plain TimeLLM trainable state, projection state)."""
    student = {k: v for k, v in state.items() if not k.startswith(PROJECTION_PREFIX)}
    projections = {k[len(PROJECTION_PREFIX):]: v for k, v in state.items() if k.startswith(PROJECTION_PREFIX)}
    return student, projections


def hidden_width(model: TimeLLM) -> int:
    """Width of the backbone's layer outputs (ALBERT/MobileBERT: the hidden width, not the embedding width)."""
    return FAMILIES[model.backbone_row.family].hidden_width(model.backbone.config)


def backbone_depth(model: Forecaster) -> int:
    """Layers actually loaded (after any --llm_layers cut); 0 for a model without a language model."""
    if model.backbone_row is None:
        return 0
    return FAMILIES[model.backbone_row.family].depth(model.backbone.config)


# --- the loss ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossWeights:
    """alpha (truth), beta (teacher forecast), gamma (hidden states); a zero weight switches its term off."""

    alpha: float
    beta: float
    gamma: float

    def __post_init__(self) -> None:
        if min(self.alpha, self.beta, self.gamma) < 0 or not all(map(math.isfinite, self.as_tuple())):
            raise LLMTimeError(f"distillation weights must be finite and >= 0, got {self.as_tuple()}")
        if self.alpha + self.beta <= 0:
            raise LLMTimeError("alpha + beta must be > 0: without a forecast term the forecasting head never learns")

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta, self.gamma)

    def label(self) -> str:
        return f"a{self.alpha:g}_b{self.beta:g}_g{self.gamma:g}"


def parse_grid(text: str) -> list[LossWeights]:
    """'0.5,0.5,0;0.5,0.5,0.1' -> candidate weights."""
    grid = []
    for item in text.split(";"):
        parts = item.strip().split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3:
            raise LLMTimeError(f"--grid item {item.strip()!r} is not ALPHA,BETA,GAMMA (items separated by ';')")
        grid.append(LossWeights(*values))
    return grid


def hidden_state_loss(student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
    """Mean over mapped layers of the MSE between normalised (projected) student and teacher states."""
    if len(student_feats) != len(teacher_feats) or not student_feats:
        raise ValueError(f"{len(student_feats)} student vs {len(teacher_feats)} teacher hidden states")
    terms = [F.mse_loss(s.float(), t.float()) for s, t in zip(student_feats, teacher_feats)]
    return torch.stack(terms).mean()


def distillation_loss(
    weights: LossWeights,
    pred: Tensor,
    y: Tensor,
    mask: Tensor,
    teacher_pred: Optional[Tensor] = None,
    student_feats: Optional[Sequence[Tensor]] = None,
    teacher_feats: Optional[Sequence[Tensor]] = None,
    teacher_mask: Optional[Tensor] = None,
) -> tuple[Tensor, dict[str, float]]:
    """The weighted sum and its unweighted terms; terms with weight 0 are neither computed nor needed.
    ``teacher_mask`` (default ``mask``) marks the targets compared with the teacher's forecast, where they differ
    from the truth's: a teacher-only window has a teacher target and no truth (``distillation.teacher_data``)."""
    total = pred.new_zeros((), dtype=torch.float32)
    terms: dict[str, float] = {}
    if weights.alpha:
        term = masked_mse(pred, y, mask)
        total, terms["truth"] = total + weights.alpha * term, float(term.detach())
    if weights.beta:
        if teacher_pred is None:
            raise ValueError("beta > 0 needs the teacher's forecast")
        term = masked_mse(pred, teacher_pred, mask if teacher_mask is None else teacher_mask)  # float32 always
        total, terms["teacher"] = total + weights.beta * term, float(term.detach())
    if weights.gamma:
        if student_feats is None or teacher_feats is None:
            raise ValueError("gamma > 0 needs student and teacher hidden states")
        term = hidden_state_loss(student_feats, teacher_feats)
        total, terms["hidden"] = total + weights.gamma * term, float(term.detach())
    return total, terms


class DistillationObjective(Objective):
    """The Trainer's loss for a student: its outputs against truth and the cached teacher.

    It also keeps running sums of each unweighted term, so the run's history shows the truth, teacher-output and
    hidden-state terms falling epoch by epoch, not only their weighted total (``epoch_terms``). With ``mixup`` the
    batch and the teacher's forecasts of it are blended before the student sees them (``distillation.mixup``).
    """

    def __init__(self, weights: LossWeights, cache: Optional[TeacherCache], mixup: Optional[Mixup] = None) -> None:
        if (weights.beta or weights.gamma) and cache is None:
            raise ValueError("beta or gamma > 0 needs a teacher cache")
        if weights.gamma and cache is not None and not cache.layers:
            raise ValueError("gamma > 0 needs a teacher cache holding hidden states")
        if weights.gamma and mixup is not None:
            raise ValueError("mixup blends inputs whose teacher hidden states are not cached: use gamma 0")
        self.weights, self.cache, self.mixup = weights, cache, mixup
        self._sums: dict[str, float] = {}
        self._steps = 0

    def __call__(self, model: nn.Module, batch: dict) -> Tensor:
        w = self.weights
        teacher_pred = teacher_feats = None
        if self.cache is not None and (w.beta or w.gamma):
            teacher_pred, teacher_feats = self.cache.lookup(batch["index"], batch["x"].device, hidden=bool(w.gamma))
        if self.mixup is not None:
            batch, teacher_pred = self.mixup(batch, teacher_pred)
        if w.gamma:
            pred, feats = model.forward_hidden(batch["x"])
        else:
            pred, feats = model(batch["x"]), None
        loss, terms = distillation_loss(w, pred, batch["y"], batch["mask"], teacher_pred, feats, teacher_feats,
                                        batch.get("teacher_mask"))
        for name, value in terms.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._steps += 1
        return loss

    def epoch_terms(self) -> dict[str, float]:
        """Mean of each unweighted term over the training steps since the last call, as ``train_<term>_loss``
        (truth, teacher, hidden), then start afresh: the Trainer calls it once per epoch and records the means."""
        means = {f"train_{name}_loss": total / self._steps for name, total in self._sums.items()} if self._steps else {}
        self._sums, self._steps = {}, 0
        return means
