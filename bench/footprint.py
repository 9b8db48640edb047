"""What a model is before it runs: parameters, checkpoint size, prompt length and FLOPs per window.

Each takes a built model (and real windows where the answer depends on them), so one code path sizes Time-LLM with any
backbone and every baseline in ``models.MODELS``.
"""

from __future__ import annotations

import io
from typing import Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from exp.objective import Objective
from exp.trainer import count_parameters, trainable_state


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable, frozen and total parameters (frozen = requires_grad False, e.g. a language-model backbone)."""
    trainable, total = count_parameters(model)
    return {"trainable_params": trainable, "frozen_params": total - trainable, "total_params": total}


def checkpoint_bytes(model: nn.Module) -> int:
    """Bytes of what a checkpoint stores for this model: its trainable state, saved with torch.save."""
    buffer = io.BytesIO()
    torch.save(trainable_state(model), buffer)
    return buffer.tell()


def prompt_tokens(model: nn.Module, x: torch.Tensor) -> Optional[dict[str, float]]:
    """Prompt length in tokens over windows x (None for models without a prompt), and the whole sequence length."""
    builder = model.prompt
    if builder is None:
        return None
    _, lengths = builder(x)
    lengths = lengths.float()
    patches = model.n_patches
    return {"prompt_tokens_mean": float(lengths.mean()), "prompt_tokens_min": int(lengths.min()),
            "prompt_tokens_max": int(lengths.max()), "sequence_tokens_mean": float(lengths.mean()) + patches}


def inference_flops_per_window(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one eval forward pass per window (what FlopCounterMode counts: matmuls, convolutions, attention)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() / x.shape[0]


def training_flops_per_window(model: nn.Module, batch: dict[str, torch.Tensor],
                              objective: Objective = Objective()) -> float:
    """FLOPs of one training forward + backward per window (no optimizer step); 0 for models with nothing to train.

    Unlike inference this includes work redone every step, e.g. Time-LLM's prototype mapping.
    """
    if not any(p.requires_grad for p in model.parameters()):
        return 0.0
    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        objective(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch["x"].shape[0]
