"""Peak memory of a measured block and of the whole process, as a user watching the machine would see it."""

from __future__ import annotations

import resource
import sys
import threading
from typing import Optional

import torch


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
