"""Per-model training recipes, chosen on validation by ``scripts/tune.py``: the one place a model's defaults live.

``run_main.py`` (and everything that builds a ``TrainConfig`` through ``apply_recipe``) starts from the model's
recipe; a flag given on the command line overrides its field, and ``TrainConfig.recipe`` records which recipe the
run started from, so ``config.json`` says where every setting came from. The sweeps, the chosen points and each
winner's learning curve are in ``docs/results/recipes.md``.

Models with nothing to train (Persistence, Ridge in closed form) have no recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from configs import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """The optimisation settings a sweep chose for one model."""

    learning_rate: float
    batch_size: int
    lradj: str
    warmup_steps: int
    train_epochs: int
    patience: int

    def fields(self) -> dict:
        return dataclasses.asdict(self)


RECIPE_FLAGS = tuple(f.name for f in dataclasses.fields(Recipe))  # TrainConfig fields a recipe sets


# From the validation sweeps (docs/results/recipes/sweep.csv and recipes/ablations/sweep.csv): the lowest validation
# loss per model; docs/results/recipes.md says what each sweep covered. train_epochs / patience are the budget of a
# run to the plateau (early stopping, not the epoch cap, is meant to end it). LLM2Attn diverged at the w/o-LLM
# ablation's learning rate (3e-3), so the two single-layer replacements have their own sweep at lower rates
# (LLM2Attn best at 3e-4 of 1e-3 and 3e-4; LLM2Trsf swept at 1e-3 only).
RECIPES: dict[str, Recipe] = {
    "TimeLLM": Recipe(learning_rate=3e-3, batch_size=32, lradj="COS", warmup_steps=20, train_epochs=10, patience=3),
    "TimeLLM_woLLM": Recipe(learning_rate=3e-3, batch_size=32, lradj="COS", warmup_steps=20, train_epochs=20,
                            patience=3),
    "TimeLLM_LLM2Attn": Recipe(learning_rate=3e-4, batch_size=32, lradj="COS", warmup_steps=20, train_epochs=12,
                               patience=3),
    "TimeLLM_LLM2Trsf": Recipe(learning_rate=1e-3, batch_size=32, lradj="COS", warmup_steps=20, train_epochs=12,
                               patience=3),
    "PatchTST": Recipe(learning_rate=3e-3, batch_size=64, lradj="COS", warmup_steps=0, train_epochs=20, patience=3),
    "DLinear": Recipe(learning_rate=1e-3, batch_size=64, lradj="COS", warmup_steps=0, train_epochs=30, patience=4),
    # Not swept yet: DLinear's, the nearest model (a linear map of the same flattened window, here with a hidden layer).
    "MLP": Recipe(learning_rate=1e-3, batch_size=64, lradj="COS", warmup_steps=0, train_epochs=30, patience=4),
}


def recipe_for(model: str) -> Optional[Recipe]:
    """The recipe of a model name (case-insensitive), or None for models with nothing to train."""
    return {k.lower(): v for k, v in RECIPES.items()}.get(model.strip().lower())


def apply_recipe(train: TrainConfig, model: str, given: dict) -> TrainConfig:
    """``train`` with the model's recipe for every recipe field not in ``given`` (the fields set explicitly)."""
    recipe = recipe_for(model)
    if recipe is None:
        return dataclasses.replace(train, **given, recipe="none (nothing to train)")
    return dataclasses.replace(train, **{**recipe.fields(), **given}, recipe=f"{model} (exp/recipes.py)")
