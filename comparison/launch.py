"""``--shard auto``: one grid split over the processes of one launch (``accelerate launch --multi_gpu
--num_processes N``, ``torchrun --nproc_per_node N``, on one node or several).

A launcher starts N copies of the same command, so they cannot be told apart by their flags; it tells each its place
in the environment instead (``RANK`` of ``WORLD_SIZE``, ``LOCAL_RANK`` on its node). Each process takes shard
RANK+1 of WORLD_SIZE and trains its cells alone on its node's LOCAL_RANK-th GPU: a comparison cell is small, so N
cells side by side beat one cell data-parallel over N GPUs, and the cells of different processes differ, which
data-parallel training (one step in lockstep on every process) could not run anyway. The launcher's variables are
therefore removed once read, so the training engine (``Accelerator``) sees a single process and no process group
is formed. The launcher's precision (``ACCELERATE_MIXED_PRECISION``) is kept and applies as in ``run_main.py``.
"""

from __future__ import annotations

import os
from typing import MutableMapping

import torch

from utils.errors import LLMTimeError

# What torchrun (under accelerate launch too) sets for each process; left in place, Accelerator would join them
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                      "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT")


def launcher_shard(environ: MutableMapping[str, str] = os.environ) -> tuple[int, int]:
    """(I, N) of this process for ``--shard auto``; picks the process's GPU (if any) and removes the launcher's
    variables from ``environ`` so that each process trains alone."""
    try:
        world, rank = int(environ.get("WORLD_SIZE", "1")), int(environ.get("RANK", "0"))
        local = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise LLMTimeError("--shard auto: the launcher's RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None
    if world < 2:
        raise LLMTimeError(
            "--shard auto splits the grid over the processes of a launcher (accelerate launch --multi_gpu "
            "--num_processes N, torchrun --nproc_per_node N); this process was started alone: give --shard I/N"
        )
    if not 0 <= rank < world:
        raise LLMTimeError(f"--shard auto: RANK {rank} is outside WORLD_SIZE {world}")
    if torch.cuda.is_available():
        torch.cuda.set_device(local % torch.cuda.device_count())
    for name in LAUNCHER_VARIABLES:
        environ.pop(name, None)
    return rank + 1, world
