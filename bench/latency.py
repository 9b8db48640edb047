"""How long a forecast takes: one timing loop, summarised the two ways the project's reports quote latency.

- ``batch1_latency_ms`` (the benchmark, ``latency_ms_batch1`` and the deployables' ``latency_ms_p50``): one window
  per call, cycling through distinct windows (a Time-LLM prompt's length depends on the window), 5 untimed calls
  first, p50 and p95 in milliseconds per call, on whatever device and thread count the caller set up.
- ``latency_ms`` (the distillation rows' ``*_latency_b1_ms`` / ``*_latency_b64_ms``): what a deployment on a phone or
  pump controller would pay. The same batch of ``batch_size`` windows each call, on the CPU in eval mode without
  gradients and on a fixed number of threads (1 by default: on a loaded machine, multi-threaded passes of small
  models mostly measure threads waiting for each other; 50x slower batch-1 passes were seen on a shared 2-core
  machine), 2 untimed calls first (which also fill TimeLLM's prototype cache, as a deployed model would), the median
  in milliseconds per window. Medians resist the remaining noise, but timings still depend on the CPU and its load.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from bench.settings import BenchSettings, model_device, precision_context, sync


def call_times_ms(forecast: Callable[[Tensor], object], inputs: Sequence[Tensor], warmup: int,
                  device: torch.device = torch.device("cpu")) -> list[float]:
    """Milliseconds of each call ``forecast(inputs[i])``, one call per input, leaving out the first ``warmup``."""
    times = []
    for i, x in enumerate(inputs):
        sync(device)
        start = time.perf_counter()
        forecast(x)
        sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return times


def batch1_latency_ms(forecast: Callable[[Tensor], object], x: Tensor, calls: int, warmup: int = 5,
                      device: torch.device = torch.device("cpu")) -> dict[str, float]:
    """p50/p95 milliseconds of single-window forecasts ``forecast(x[i:i+1])`` over ``calls`` windows of x."""
    times = sorted(call_times_ms(forecast, [x[i % len(x)][None] for i in range(calls + warmup)], warmup, device))
    return {"p50": statistics.median(times), "p95": times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]}


def model_batch1_latency_ms(model: nn.Module, x: Tensor, settings: BenchSettings) -> dict[str, float]:
    """Batch-1 forecast latency of a torch model in eval mode under the benchmark's precision."""
    device = model_device(model)
    model.eval()
    with torch.no_grad(), precision_context(device, settings.mixed_precision):
        return batch1_latency_ms(model, x.to(device), settings.latency_calls, device=device)


def latency_ms(model: nn.Module, windows: Tensor, batch_size: int, repeats: int, threads: int = 1,
               warmup: int = 2) -> float:
    """Median CPU milliseconds per window for forward passes of ``batch_size`` windows on ``threads`` threads."""
    model = model.to("cpu").eval()
    x = _batch(windows, batch_size)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            times = call_times_ms(model, [x] * (warmup + repeats), warmup)
    finally:
        torch.set_num_threads(previous)
    return statistics.median(times) / batch_size


def _batch(windows: Tensor, batch_size: int) -> Tensor:
    """The first ``batch_size`` windows, tiled when there are fewer."""
    reps = -(-batch_size // len(windows))
    return windows.repeat(reps, 1, 1)[:batch_size].contiguous()
