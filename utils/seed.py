"""One seed for everything: Python, NumPy, torch (CPU and CUDA) and data-loader workers.

Same seed, same CPU result: the loaders draw their shuffling order from a generator seeded here, and workers derive
their seeds from it, so the number of workers does not change what a run sees.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def worker_init(worker_id: int) -> None:
    """DataLoader worker seeding from torch's per-worker seed (itself derived from the loader's generator)."""
    seed = torch.initial_seed() % (2**32)
    random.seed(seed)
    np.random.seed(seed)
