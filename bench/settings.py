"""What a benchmark measures and how it times: its target (``BenchTarget``) and timing settings (``BenchSettings``),
the precision it runs in and the device helpers every timing shares.

Kept apart from the measures so throughput, latency and the whole-benchmark run read one definition of a setting.
Each field declares its flag (``configs/flags.py``): ``scripts/benchmark.py`` builds its command line from them and
both objects from the parsed flags, so nothing below the entry point reads argparse.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from configs import DataConfig, ModelConfig
from configs.flags import flag
from utils.errors import LLMTimeError

PRECISIONS = ("no", "bf16")
DEFAULT_OUT = "checkpoints/bench"  # outputs stay out of docs/ unless --out puts them there
BENCH_PATIENTS = ["1001", "1002", "1003"]  # whose training windows are timed unless --patients names others


@dataclass
class BenchTarget:
    """Which model is benchmarked on which windows, and where its result goes; ``model`` and ``data`` are the
    run configuration's sections (their flags are run_main.py's)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(patients=list(BENCH_PATIENTS)))
    checkpoint: Optional[str] = field(default=None, metadata=flag(
        "benchmark a saved run's model (its config, weights, scaler)"))
    levers_off: Optional[str] = field(default=None, metadata=flag(
        "Time-LLM: switch fast-path levers off to measure them, comma-separated or 'all' (short_prompt, "
        "vectorised_prompt, sdpa, prototype_cache, eval_backbone, prefix_cache; see bench/levers.py)"))
    compile: bool = field(default=False, metadata=flag("torch.compile the model before timing"))
    features: str = field(default="MS", metadata=flag(
        "S: glucose; MS: + basal, bolus, carbs (run_main's default: events as text and channels)",
        choices=("S", "MS")))
    windows: int = field(default=1024, metadata=flag("real windows drawn (evenly spaced) for timing", minimum=1))
    threads: Optional[int] = field(default=None, metadata=flag("torch threads (default: torch's choice)"))
    export: bool = field(default=False, metadata=flag(
        "also the ONNX graph (onnxruntime) and its dynamic-INT8 copy (ONNX Runtime quantiser)"))
    out: str = field(default=DEFAULT_OUT, metadata=flag("folder for <label>.json and benchmark.csv"))
    label: Optional[str] = field(default=None, metadata=flag("row name (default: derived from the settings)"))
    onnx_path: Optional[str] = field(default=None, metadata=flag(
        "keep the exported graph here (default: a temporary file)"))


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
