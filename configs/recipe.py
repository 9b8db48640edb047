"""A training recipe: the optimisation settings a validation sweep chose for one model (``scripts/tune.py``).

Each model declares its recipe in its registry entry (``models.MODELS``) and ``exp.recipes`` starts runs from it.
Plain values in a leaf module, like the rest of ``configs/``, so a command line can name the recipe's fields without
loading any model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """The optimisation settings of one model: the ``TrainConfig`` fields a run starts from."""

    learning_rate: float
    batch_size: int
    lradj: str
    warmup_steps: int
    train_epochs: int
    patience: int

    def fields(self) -> dict:
        return dataclasses.asdict(self)
