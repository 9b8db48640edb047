"""Forecasting models by name: ``MODELS`` is the registry, one ``ModelSpec`` per model (``models/spec.py``): its
class, recipe, plan cost rate, role in the grids and ONNX export. ``--model`` picks an entry;
``build_model`` constructs its class. Adding a model is its file and one entry here.

Every registered class is a ``models.base.Forecaster`` (the contract the engine calls: forward and the optional
hooks with their defaults) and takes ``(model_cfg, data_cfg, scaler, description)`` (``scaler``: the training
``data_factory.Scaler``, every channel); it maps [B, seq_len, C] scaled inputs to [B, pred_len] scaled forecasts,
so the engine, distillation and comparison runners never special-case a model. ``tests/test_conformance.py`` holds
every entry to that: built tiny, trained a step, its checkpoint round-tripped, exported where its spec says so.
"""

from __future__ import annotations

import math

from data_provider.data_factory import Scaler
from configs import DataConfig, ModelConfig
from configs.recipe import Recipe
from models.ablations import TimeLLM_LLM2Attn, TimeLLM_LLM2Trsf, TimeLLM_woLLM
from models.base import Forecaster
from models.dlinear import DLinear
from models.mlp import MLP
from models.patchtst import PatchTST
from models.persistence import Persistence
from models.residual import OnRidge
from models.ridge import Ridge
from models.spec import ModelSpec, Rate
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError

# Recipes: from the validation sweeps (docs/results/recipes/sweep.csv and recipes/ablations/sweep.csv), the lowest
# validation loss per model; docs/results/recipes.md says what each sweep covered. Schedules from
# docs/results/schedules/sweep.csv (scripts/schedule_sweep.sh): after warm-up a constant rate, the same halved after
# each epoch without a new validation best (plateau), or a cosine over a 30-epoch horizon, every run ended by early
# stopping (patience 3), so no rate reaches zero at an arbitrary cap; the lowest validation loss per model (DLinear
# constant 0.1447, plateau 0.1515, cosine 0.1512; PatchTST cosine 0.1563, plateau 0.1636, constant 0.1847; MLP
# plateau 0.1992, cosine 0.2009, constant 0.2023); Time-LLM below. Then each rate again on that protocol, grown past
# its grid's edges (scripts/rate_sweep.sh): DLinear's 1e-3 and PatchTST's 3e-3 stay (interior), the MLP's moves to
# 3e-3, woLLM's and LLM2Attn's to 9e-4 and LLM2Trsf's to 2.7e-4, each on Time-LLM's optimiser.
# Rates: bf16 autocast where the CPU has it (AMX), batch sizes of the recipes; measured runs shared the 2 cores with
# other work at times, so they err slow.
MODELS: dict[str, ModelSpec] = {
    "TimeLLM": ModelSpec(
        TimeLLM, role="timellm",
        # Batch 128 and the plateau schedule (docs/results/schedules.md): validation loss 0.1573 against 0.1736 for
        # batch 32 at a constant rate, 2.5x the training windows/s; warm-up over the same 640 windows as 20 steps of 32.
        # The rate, 9e-4, is the interior winner of a grid grown past its edges: 0.1541 against 0.1573 at 3e-3, 0.1607
        # at 1e-2 and 0.1601 at 2.7e-4 (capped at 30 epochs, improving by ~0.002 an epoch at the end).
        recipe=Recipe(learning_rate=9e-4, batch_size=128, lradj="plateau", warmup_steps=5, train_epochs=30, patience=3),
        rate=Rate(38, 230, 20, "measured: MiniLM's first layer, one thread, batch 128 (docs/results/schedules.md); "
                                "inference: benchmark_cpu.md's 1-thread row; batch 32: the scaling study's runs "
                                "(docs/results/scaling/tidy.csv), median of 9, fp32 on the AVX2 CPU",
                  train_at_batch=((32, 14),))),
    # The LLM-free ablations train with Time-LLM's optimiser (batch 128, plateau, 5 warm-up steps), their rates
    # grown past their grids' edges on validation (scripts/rate_sweep.sh, docs/results/schedules.md).
    "TimeLLM_woLLM": ModelSpec(
        TimeLLM_woLLM, role="ablation",
        # 9e-4: 0.1589, against 0.1599 at 3e-3 and 0.1711 at 2.7e-4
        recipe=Recipe(learning_rate=9e-4, batch_size=128, lradj="plateau", warmup_steps=5, train_epochs=30, patience=3),
        rate=Rate(59, 2_800, 10, "measured: the rate sweep, one thread, batch 128, beside other jobs; inference: the "
                                 "standard grid, seed 2021; batch 32: the scaling study's runs, median of 9",
                  train_at_batch=((32, 16),))),
    "TimeLLM_LLM2Attn": ModelSpec(
        TimeLLM_LLM2Attn, role="ablation",
        # 9e-4: 0.1773, against 0.2773 at 3e-3 and 0.1916 at 2.7e-4
        recipe=Recipe(learning_rate=9e-4, batch_size=128, lradj="plateau", warmup_steps=5, train_epochs=30, patience=3),
        rate=Rate(30, 960, 10, "measured: the rate sweep, one thread, batch 128, beside other jobs; inference: the "
                               "standard grid, seed 2021")),
    "TimeLLM_LLM2Trsf": ModelSpec(
        TimeLLM_LLM2Trsf, role="ablation",
        # 2.7e-4: 0.1590, against 0.1605 at 9e-4, 0.2762 at 3e-3 and 0.1786 at 8.1e-5
        recipe=Recipe(learning_rate=2.7e-4, batch_size=128, lradj="plateau", warmup_steps=5, train_epochs=30,
                      patience=3),
        rate=Rate(18, 520, 10, "measured: the rate sweep, one thread, batch 128, beside other jobs; inference: the "
                               "standard grid, seed 2021; batch 32: the scaling study's runs, median of 8",
                  train_at_batch=((32, 8.5),))),
    "Persistence": ModelSpec(
        Persistence, role="baseline",
        rate=Rate(math.inf, 1_000_000, 1, "estimated from the quick grid")),
    "Ridge": ModelSpec(
        Ridge, role="baseline", rate=Rate(100_000, 400_000, 1, "estimated from the quick grid")),
    "DLinear": ModelSpec(
        DLinear, role="baseline",
        recipe=Recipe(learning_rate=1e-3, batch_size=64, lradj="constant", warmup_steps=0, train_epochs=30, patience=3),
        rate=Rate(2_400, 10_000, 1, "measured: the standard grid, seed 2021")),
    "PatchTST": ModelSpec(
        PatchTST, role="baseline",
        recipe=Recipe(learning_rate=3e-3, batch_size=64, lradj="COS", warmup_steps=0, train_epochs=30, patience=3),
        rate=Rate(400, 4_000, 2, "measured: the standard grid, seed 2021 (S 864 / 8,743, MS 255 / 3,420)")),
    # Batch size DLinear's, the nearest model (a linear map of the same flattened window, here with a hidden layer);
    # its schedule swept (plateau), then its learning rate (scripts/rate_sweep.sh, docs/results/schedules.md): 3e-3,
    # validation loss 0.1788, interior between 1e-3 (0.1992) and 9e-3 (0.1963); its speed as DLinear's until a grid
    # measures it.
    "MLP": ModelSpec(
        MLP, role="student",
        recipe=Recipe(learning_rate=3e-3, batch_size=64, lradj="plateau", warmup_steps=0, train_epochs=30, patience=3),
        rate=Rate(2_400, 10_000, 1, "estimated: as DLinear, the nearest model (not measured)")),
}


def model_spec(name: str) -> ModelSpec:
    """The registry entry of a model name, case-insensitive."""
    by_key = {key.lower(): spec for key, spec in MODELS.items()}
    spec = by_key.get(name.strip().lower())
    if spec is None:
        raise LLMTimeError(f"unknown --model {name!r}; choose one of: {', '.join(MODELS)}")
    return spec


def models_in_role(*roles: str) -> list[str]:
    """The registered names with one of these roles, by role in the order given, then in registry order."""
    return [name for role in roles for name, spec in MODELS.items() if spec.role == role]


def resolve_model(name: str) -> type[Forecaster]:
    """The registered class of a model name, case-insensitive."""
    return model_spec(name).cls


def build_model(cfg: ModelConfig, data: DataConfig, scaler: Scaler, description: str) -> Forecaster:
    """Construct ``cfg.model`` for these data settings, training scaler (every channel) and description; with
    ``--base ridge`` on a closed-form ridge base (``models.residual``)."""
    builder = resolve_model(cfg.model)
    if cfg.base == "none":
        return builder(cfg, data, scaler, description)
    if not builder.gradient_trained:
        raise LLMTimeError(f"--base {cfg.base} goes under a gradient-trained model; {builder.__name__} has nothing to "
                           "train: leave --base none")
    return OnRidge(builder(cfg, data, scaler, description), Ridge(cfg, data, scaler, description))


def model_uses_llm(name: str) -> bool:
    """Whether a model name runs a language-model backbone (so its backbone and weights source get reported)."""
    return model_spec(name).uses_llm
