"""How a benchmark times: its settings, the precision it runs in and the device helpers every timing shares.

Kept apart from the measures so throughput, latency and the whole-benchmark run read one definition of a setting.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from configs.flags import flag
from utils.errors import LLMTimeError

PRECISIONS = ("no", "bf16")


@dataclass
class BenchSettings:
    """How long and how often to time; defaults give medians of 5 repeats in about a minute for MiniLM. Each field
    declares its flag (``configs/flags.py``), so the benchmark's command line and its checks come from here."""

    batch: int = field(default=32, metadata=flag("windows per timed batch", minimum=1))
    warmup: int = field(default=3, metadata=flag(
        "untimed steps before the first repeat (allocator, caches, oneDNN primitives)", minimum=0))
    steps: int = field(default=20, metadata=flag("timed batches per repeat", minimum=1))
    repeats: int = field(default=5, metadata=flag("timed repeats; throughputs are their median", minimum=1))
    latency_calls: int = field(default=100, metadata=flag("batch-1 forecasts timed one by one for p50/p95", minimum=1))
    mixed_precision: str = field(default="no", metadata=flag("autocast precision", choices=PRECISIONS))
    deepspeed: bool = field(default=False, metadata=flag("time training through DeepSpeed ZeRO-2"))
    fused_adamw: bool = field(default=False, metadata=flag(
        "time training with AdamW(fused=True) instead of the engine's foreach AdamW"))
    train: bool = field(default=True, metadata=flag(
        "time training as well (--no_train skips it, e.g. for models with nothing to train)"))


def precision_context(device: torch.device, mixed_precision: str) -> contextlib.AbstractContextManager:
    """Autocast for 'bf16', nothing for 'no' (what the engine's accelerator does for the same setting)."""
    if mixed_precision not in PRECISIONS:
        raise LLMTimeError(f"--mixed_precision must be one of {', '.join(PRECISIONS)}, got {mixed_precision!r}")
    if mixed_precision == "no":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer stopped after it counts the work and not only its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")
