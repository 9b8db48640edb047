"""What the rest of the code asks about a registered model, declared once beside its class in ``models.MODELS``.

A model's class says how it forecasts; its ``ModelSpec`` says how the project treats it: the training recipe it starts
from (``exp.recipes``), the per-window rates a comparison plan costs it at (``comparison.costs``), its role in the
comparison grids, and whether it exports to ONNX (every gradient-trained model gets the standard grid's one window
budget, ``comparison.standard``). Grids, plans, recipes and the conformance test (``tests/test_conformance.py``) read the spec and never test
a model's name, so adding a model is one file and one registry entry.

Whether a model runs a language model or trains by gradients is not declared again: the spec reads it from its class
(``Forecaster.uses_llm`` / ``gradient_trained``), where the engine reads it too. Recipes are ``configs.recipe.Recipe``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from configs.recipe import Recipe
from models.base import Forecaster

# Roles in the comparison grids. baseline: a row of every grid, on inputs S and MS in the standard grid; timellm: the
# reference and its event, prompt and backbone variants; ablation: Time-LLM with its language model removed or
# replaced (standard grid: inputs MS only); student: in no preset grid (named with --models), a distillation student.
ROLES = ("baseline", "timellm", "ablation", "student")


@dataclass(frozen=True)
class Rate:
    """Per-window speed on this project's 2-core CPU, what a comparison plan estimates a cell's time from."""

    train: float  # training windows/s at the recipe's batch size (a closed-form fit: windows/s of the fit)
    infer: float  # validation and test windows/s
    startup: float  # seconds to build the model (a language model loads its weights)
    source: str  # measured where, or how it was estimated
    # Training windows/s measured at other batch sizes, as (batch, windows/s): a grid that trains off the recipe's
    # batch (the scaling study trains the Time-LLM family at 32) would otherwise be planned at the recipe's speed.
    train_at_batch: tuple[tuple[int, float], ...] = ()

    def train_rate(self, batch_size: int) -> float:
        """Training windows/s at ``batch_size``: its measured figure where one exists, else ``train``."""
        return dict(self.train_at_batch).get(batch_size, self.train)


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its class and everything the grids, plans, recipes and tests ask about it."""

    cls: type[Forecaster]
    role: str  # one of ROLES
    rate: Rate
    recipe: Optional[Recipe] = None  # None exactly when nothing is trained by gradients
    onnx: bool = True  # bench.export.export_onnx writes it as a graph (a decoder backbone is refused at run time)

    def __post_init__(self) -> None:
        name = self.cls.__name__
        if self.role not in ROLES:
            raise ValueError(f"{name}: role must be one of {ROLES}")
        if (self.recipe is not None) != self.gradient_trained:
            raise ValueError(f"{name}: a gradient-trained model has a recipe; a model with nothing to train has none")

    @property
    def uses_llm(self) -> bool:
        """Whether it runs a language-model backbone (its backbone and weights source are reported)."""
        return self.cls.uses_llm

    @property
    def gradient_trained(self) -> bool:
        return self.cls.gradient_trained

    @property
    def training(self) -> str:
        """'gradient', 'closed form' (fitted on the training windows, e.g. Ridge) or 'none' (e.g. Persistence)."""
        if self.gradient_trained:
            return "gradient"
        return "closed form" if self.cls.fit_closed_form is not Forecaster.fit_closed_form else "none"

    @property
    def timellm_family(self) -> bool:
        """Time-LLM or one of its ablations: built as the default run builds Time-LLM (``exp.recipes``)."""
        return self.role in ("timellm", "ablation")
