"""Windows per second: training steps and eval forecasts timed the way a run executes them, repeated.

Training follows the engine's own loop (``exp/trainer.py``: accelerate, autocast, optional DeepSpeed) so a benchmark
number is what a run would see. Each timing is repeated: shared machines are noisy, and only the median of several
repeats is worth quoting.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from bench.settings import BenchSettings, model_device, precision_context, sync
from configs import TrainConfig
from exp.accelerator import make_accelerator
from exp.objective import Objective
from exp.trainer import load_trainable_state, trainable_state
from utils.errors import LLMTimeError


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
            sync(device)
            start = time.perf_counter()
            for i in range(settings.steps):
                model(batches[i % len(batches)])
            sync(device)
            rates.append(settings.steps * settings.batch / (time.perf_counter() - start))
    return rates


def training_throughput(model: nn.Module, loader: DataLoader, settings: BenchSettings,
                        objective: Objective = Objective()) -> list[float]:
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
        sync(device)
        start, seen = time.perf_counter(), 0
        for _ in range(settings.steps):
            seen += step()
        sync(device)
        rates.append(seen / (time.perf_counter() - start))
    load_trainable_state(accelerator.unwrap_model(prepared), saved)
    return rates


def batch_throughput(run: Callable[[Tensor], object], x: Tensor, batch: int, calls: int = 5,
                     repeats: int = 3) -> float:
    """Median windows/s of any forecaster ``run`` (torch model or ONNX runner) on batches of ``batch`` windows of x,
    after one untimed call: the deployables' comparison, which times each conversion the same simple way."""
    chunk = x[:batch]
    run(chunk)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run(chunk)
        rates.append(calls * len(chunk) / (time.perf_counter() - start))
    return statistics.median(rates)


def summary(rates: list[float]) -> dict[str, float]:
    """Median, min and max of repeated rates (the median is the number to quote)."""
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}
