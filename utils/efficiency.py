"""What a forecaster costs to train and to run: throughput, latency, memory, size, FLOPs and prompt length.

Every function takes a built model and real windows, so one code path measures Time-LLM with any backbone and every
baseline in ``models.MODELS``. Timings follow the engine's own loop (``exp/trainer.py``: accelerate, autocast,
optional DeepSpeed) so a benchmark number is what a run would see, and each timing is repeated: shared machines are
noisy, and only the median of several repeats is worth quoting.

Order matters in ``run_benchmark``: the training measurement comes last because it updates the weights and
``accelerate.prepare`` wraps the model's forward; everything measured before it sees the model as given.
"""

from __future__ import annotations

import contextlib
import io
import math
import resource
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from configs import TrainConfig
from exp.trainer import forecast_objective, load_trainable_state, make_accelerator, trainable_state
from utils.errors import LLMTimeError

PRECISIONS = ("no", "bf16")


@dataclass
class BenchSettings:
    """How long and how often to time; defaults give medians of 5 repeats in about a minute for MiniLM."""

    batch: int = 32
    warmup: int = 3  # untimed steps before the first repeat (allocator, caches, oneDNN primitives)
    steps: int = 20  # timed steps (batches) per repeat
    repeats: int = 5
    latency_calls: int = 100  # batch-1 forecasts timed one by one for p50/p95
    mixed_precision: str = "no"  # 'no' or 'bf16' (autocast)
    deepspeed: bool = False  # train through DeepSpeed ZeRO-2, as --use_deepspeed runs do
    fused_adamw: bool = False  # torch.optim.AdamW(fused=True) instead of the engine's default (foreach) AdamW
    train: bool = True  # False skips the training measurement (e.g. models with nothing to train)


def precision_context(device: torch.device, mixed_precision: str) -> contextlib.AbstractContextManager:
    """Autocast for 'bf16', nothing for 'no' (what the engine's accelerator does for the same setting)."""
    if mixed_precision not in PRECISIONS:
        raise LLMTimeError(f"--mixed_precision must be one of {', '.join(PRECISIONS)}, got {mixed_precision!r}")
    if mixed_precision == "no":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


# --- static measures ------------------------------------------------------------------------------------------------

def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable, frozen and total parameters (frozen = requires_grad False, e.g. a language-model backbone)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": trainable, "frozen_params": total - trainable, "total_params": total}


def checkpoint_bytes(model: nn.Module) -> int:
    """Bytes of what a checkpoint stores for this model: its trainable state, saved with torch.save."""
    buffer = io.BytesIO()
    torch.save(trainable_state(model), buffer)
    return buffer.tell()


def prompt_tokens(model: nn.Module, x: torch.Tensor) -> Optional[dict[str, float]]:
    """Prompt length in tokens over windows x (None for models without a prompt), and the whole sequence length."""
    builder = getattr(model, "prompt", None)
    if builder is None:
        return None
    _, lengths = builder(x)
    lengths = lengths.float()
    patches = int(getattr(model, "n_patches", 0))
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
                              objective: Callable = forecast_objective) -> float:
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


# --- memory ----------------------------------------------------------------------------------------------------------

class PeakMemory:
    """Peak memory of a block: GPU allocator peak on CUDA, else the process RSS sampled every few milliseconds.

    RSS sampling (psutil, a dependency of accelerate) sees what the whole process holds, including the model, as a
    user watching the machine would; ``peak_mb`` is the highest sample.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.005) -> None:
        self.device, self.interval_s, self.peak_mb = device, interval_s, 0.0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        import psutil

        process = psutil.Process()

        def sample() -> None:
            while True:
                self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
                if self._stop.wait(self.interval_s):
                    return

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        self._stop.set()
        assert self._thread is not None
        self._thread.join()


def process_peak_rss_mb() -> float:
    """Highest resident memory of this process so far (getrusage; kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# --- timing ----------------------------------------------------------------------------------------------------------

def _cycle(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    while True:
        yield from loader


def inference_throughput(model: nn.Module, x: torch.Tensor, settings: BenchSettings) -> list[float]:
    """Windows/s of eval forecasts in batches of ``settings.batch``, one rate per repeat (each over ``steps``)."""
    device = model_device(model)
    batches = [x[i : i + settings.batch].to(device) for i in range(0, len(x) - settings.batch + 1, settings.batch)]
    if not batches:
        raise LLMTimeError(f"need at least {settings.batch} windows to time batches of {settings.batch}")
    model.eval()
    rates = []
    with torch.no_grad(), precision_context(device, settings.mixed_precision):
        for i in range(settings.warmup):
            model(batches[i % len(batches)])
        for _ in range(settings.repeats):
            _sync(device)
            start = time.perf_counter()
            for i in range(settings.steps):
                model(batches[i % len(batches)])
            _sync(device)
            rates.append(settings.steps * settings.batch / (time.perf_counter() - start))
    return rates


def latency_ms(forecast: Callable[[torch.Tensor], object], x: torch.Tensor, calls: int, warmup: int = 5,
               device: torch.device = torch.device("cpu")) -> dict[str, float]:
    """p50/p95 milliseconds of single-window forecasts ``forecast(x[i:i+1])`` over ``calls`` windows of x."""
    singles = [x[i % len(x)][None] for i in range(calls + warmup)]
    times = []
    for i, window in enumerate(singles):
        _sync(device)
        start = time.perf_counter()
        forecast(window)
        _sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]}


def model_latency_ms(model: nn.Module, x: torch.Tensor, settings: BenchSettings) -> dict[str, float]:
    """Batch-1 forecast latency of a torch model in eval mode under the benchmark's precision."""
    device = model_device(model)
    model.eval()
    with torch.no_grad(), precision_context(device, settings.mixed_precision):
        return latency_ms(model, x.to(device), settings.latency_calls, device=device)


def training_throughput(model: nn.Module, loader: DataLoader, settings: BenchSettings,
                        objective: Callable = forecast_objective) -> list[float]:
    """Windows/s of training steps (forward + backward + optimizer step), one rate per repeat.

    The loop is the engine's (accelerate prepare/autocast/backward; DeepSpeed ZeRO-2 with ``settings.deepspeed``),
    with AdamW as the engine builds it (or fused). The weights are restored afterwards, but ``prepare`` may leave
    the model's forward wrapped, so time training after everything else.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise LLMTimeError("this model has no trainable parameters: there is no training step to time")
    saved = trainable_state(model)
    accelerator = make_accelerator(TrainConfig(mixed_precision=settings.mixed_precision,
                                               use_deepspeed=settings.deepspeed))
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True if settings.fused_adamw else None)
    prepared, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    device = accelerator.device
    batches = _cycle(loader)

    def step() -> int:
        batch = next(batches)
        with accelerator.autocast():
            loss = objective(prepared, batch)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return len(batch["y"])

    prepared.train()
    for _ in range(settings.warmup):
        step()
    rates = []
    for _ in range(settings.repeats):
        _sync(device)
        start, seen = time.perf_counter(), 0
        for _ in range(settings.steps):
            seen += step()
        _sync(device)
        rates.append(seen / (time.perf_counter() - start))
    load_trainable_state(accelerator.unwrap_model(prepared), saved)
    return rates


# --- the whole benchmark -------------------------------------------------------------------------------------------

def summary(rates: list[float]) -> dict[str, float]:
    """Median, min and max of repeated rates (the median is the number to quote)."""
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def run_benchmark(model: nn.Module, x: torch.Tensor, loader: Optional[DataLoader], settings: BenchSettings,
                  extra: Optional[Callable[[nn.Module], dict]] = None) -> dict:
    """Every measure for one model on windows x ([N, seq_len, C] scaled, N >= batch) and a training loader.

    ``extra(model)`` runs after the inference measures and before training (e.g. the ONNX/INT8 comparison, which
    needs the untouched float model); its dict is merged in.
    """
    device = model_device(model)
    x = x.to(device)
    result: dict = {"settings": asdict(settings), "device": str(device), "threads": torch.get_num_threads()}
    result.update(parameter_counts(model))
    result["checkpoint_mb"] = checkpoint_bytes(model) / 2**20
    result["prompt"] = prompt_tokens(model, x[: settings.batch])
    result["inference_gflops_per_window"] = inference_flops_per_window(model, x[: settings.batch]) / 1e9
    with PeakMemory(device) as memory:
        infer = inference_throughput(model, x, settings)
    result["inference_windows_per_s"] = summary(infer) | {"runs": infer}
    result["inference_peak_mb"] = memory.peak_mb
    result["latency_ms_batch1"] = model_latency_ms(model, x, settings)
    if extra is not None:
        result.update(extra(model))
    trainable = any(p.requires_grad for p in model.parameters())
    if settings.train and trainable and loader is not None:
        first = {k: v.to(device) for k, v in next(iter(loader)).items()}
        result["training_gflops_per_window"] = training_flops_per_window(model, first) / 1e9
        with PeakMemory(device) as memory:
            train = training_throughput(model, loader, settings)
        result["training_windows_per_s"] = summary(train) | {"runs": train}
        result["training_peak_mb"] = memory.peak_mb
    else:
        result["training_windows_per_s"] = None
    result["process_peak_rss_mb"] = process_peak_rss_mb()
    return result
