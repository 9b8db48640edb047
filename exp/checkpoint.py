"""Checkpoints: the trainable weights + the run's config + the training scaler, never the frozen backbone.

A checkpoint is enough to rebuild the exact model (the backbone is reloaded from its row and weights source) and to
scale new data as in training. Written atomically, so an interrupted run leaves the previous best intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from data_provider.data_factory import Scaler, description
from configs import RunConfig
from configs.flags import check_config
from exp.safe_load import load_error
from exp.trainer import load_trainable_state
from models import build_model
from models.base import Forecaster
from utils.errors import LLMTimeError
from utils.io import atomic_file
from utils.seed import seed_everything

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict[str, torch.Tensor], cfg: RunConfig, scaler: Scaler, **extra: Any) -> Path:
    path = Path(run_dir) / CHECKPOINT_NAME
    payload = {"state": state, "config": cfg.to_dict(), "scaler": scaler.to_dict(), **extra}
    with atomic_file(path) as f:
        torch.save(payload, f)
    return path


def load_checkpoint(run_dir: str | Path) -> tuple[RunConfig, Scaler, dict[str, torch.Tensor], dict[str, Any]]:
    """(config, scaler, trainable state, extra fields) of a run folder (or a checkpoint file)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise LLMTimeError(f"no checkpoint at {path}: pass --checkpoint a run folder written by a training run")
    try:
        # weights_only: a checkpoint is tensors, numbers and strings, so nothing in it may run code when loaded
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged, foreign or planted file: one line saying what was refused or broken
        raise LLMTimeError(f"{path} is not a readable LLM-TIME checkpoint: {load_error(e)}: pass --checkpoint a run "
                           "folder written by a training run") from None
    if not isinstance(payload, dict) or not {"state", "config", "scaler"} <= set(payload):
        raise LLMTimeError(f"{path} is not an LLM-TIME checkpoint (missing state/config/scaler)")
    extra = {k: v for k, v in payload.items() if k not in ("state", "config", "scaler")}
    try:
        cfg, scaler = RunConfig.from_dict(payload["config"]), Scaler.from_dict(payload["scaler"])
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise LLMTimeError(f"{path} has a damaged config or scaler ({type(e).__name__}: {e})") from None
    try:  # held to the flags' declarations, as a command line is: a value no run accepts fails here, not mid-test
        check_config(cfg)
    except LLMTimeError as e:
        raise LLMTimeError(f"{path} has a damaged config ({e}): pass another training run's folder") from None
    return cfg, scaler, payload["state"], extra


def load_weights(model: Forecaster, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Put a checkpoint's trainable weights into a freshly built model.

    A mismatch means the checkpoint belongs to another configuration (a file copied between runs, or the backbone
    behind ``--llm_path`` replaced since training); that is the user's to fix, so it is one line, not a traceback.
    """
    try:
        load_trainable_state(model, state)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        detail = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
        raise LLMTimeError(
            f"the weights in {source} do not fit the model its config describes ({detail[:240]}); "
            "was the file copied from another run, or the backbone behind --llm_path replaced?"
        ) from None


def model_from_state(cfg: RunConfig, scaler: Scaler, description_text: str, state: dict[str, torch.Tensor],
                     source: str | Path) -> Forecaster:
    """The run's model with a checkpoint's weights, seeded as training seeded before building: a frozen backbone is
    not in the checkpoint, and a random one (``--llm_weights random``) is redrawn from the run's seed, so without
    the seed the rebuilt model would be another model."""
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, cfg.data, scaler, description_text)
    load_weights(model, state, source)
    return model


def rebuild_model(run_dir: str | Path) -> tuple[RunConfig, Scaler, Forecaster, dict[str, Any]]:
    """(config, training scaler, model with the checkpoint's weights, extra fields) of a saved run."""
    cfg, scaler, state, extra = load_checkpoint(run_dir)
    return cfg, scaler, model_from_state(cfg, scaler, description(cfg.data), state, run_dir), extra
