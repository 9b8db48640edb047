"""Forecasting models by name: ``--model`` picks a class from ``MODELS``; ``build_model`` constructs it.

Every registered class is a ``models.base.Forecaster`` (the contract the engine calls: forward and the optional
hooks with their defaults) and takes ``(model_cfg, data_cfg, scaler, description)`` (``scaler``: the training
``data_factory.Scaler``, every channel); it maps [B, seq_len, C] scaled inputs to [B, pred_len] scaled forecasts,
so the engine, distillation and comparison runners never special-case a model.
"""

from __future__ import annotations

from data_provider.data_factory import Scaler
from configs import DataConfig, ModelConfig
from models.ablations import TimeLLM_LLM2Attn, TimeLLM_LLM2Trsf, TimeLLM_woLLM
from models.base import Forecaster
from models.dlinear import DLinear
from models.mlp import MLP
from models.patchtst import PatchTST
from models.persistence import Persistence
from models.residual import OnRidge
from models.ridge import Ridge
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError

MODELS: dict[str, type[Forecaster]] = {
    "TimeLLM": TimeLLM,
    "TimeLLM_woLLM": TimeLLM_woLLM,
    "TimeLLM_LLM2Attn": TimeLLM_LLM2Attn,
    "TimeLLM_LLM2Trsf": TimeLLM_LLM2Trsf,
    "Persistence": Persistence,
    "Ridge": Ridge,
    "DLinear": DLinear,
    "PatchTST": PatchTST,
    "MLP": MLP,
}


def resolve_model(name: str) -> type[Forecaster]:
    """The registered builder for a model name, case-insensitive."""
    by_key = {key.lower(): builder for key, builder in MODELS.items()}
    builder = by_key.get(name.strip().lower())
    if builder is None:
        raise LLMTimeError(f"unknown --model {name!r}; choose one of: {', '.join(MODELS)}")
    return builder


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
    return resolve_model(name).uses_llm
