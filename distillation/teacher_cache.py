"""The teacher's forecasts and mapped hidden states, computed once per training window and reused every epoch.

The teacher is frozen during distillation, and its dropout is off in eval mode, so its outputs for a window never
change: running it again each epoch (and for each candidate of the weight search) would only multiply the most
expensive forward pass. Entries are keyed by the dataset's window index (``batch['index']``), so any shuffling or
batch size finds the right rows.

A cache of forecasts only (no hidden states: output distillation, the standard report's grid) is a few MB, so it is
also kept on disk in the teacher's run folder (``stored``): the other students of the same teacher and windows load
it instead of running the teacher again, which for a 6-layer teacher's teacher-data cover is most of an hour each.

Memory: hidden states take ``n_windows x n_patches x teacher_width x 2 bytes`` (float16) per mapped layer, already
normalised, e.g. 12,000 windows x 12 patches x 768 x 5 layers ~ 1.1 GB. ``estimate_bytes`` lets callers refuse a
cache above a budget before running anything; forecasts are kept in float32 (a few hundred KB).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from data_provider.data_factory import WindowDataset, make_loader
from models.base import Forecaster
from utils.io import atomic_path

HIDDEN_DTYPE = torch.float16
STORE_DIR = "teacher_forecasts"  # in the teacher's run folder: one file per (checkpoint, windows, precision, batch)


def normalise_hidden(h: Tensor) -> Tensor:
    """Standardise each feature vector (last axis) to zero mean, unit variance: layer norm with no affine.

    Defined here, beside the cache that stores the teacher's states already normalised, and used by the objective
    (``distillation.losses``) for the student's: both sides of the hidden-state loss go through this one function.
    """
    return F.layer_norm(h.float(), (h.shape[-1],))


def estimate_bytes(n_windows: int, n_patches: int, width: int, n_layers: int, pred_len: int) -> int:
    """Bytes a cache of this shape holds: float16 hidden states plus float32 forecasts."""
    return n_windows * (n_patches * width * n_layers * 2 + pred_len * 4)


@dataclass
class TeacherCache:
    """Teacher forecasts [N, H] (scaled units) and normalised hidden states [N, P, W] per mapped teacher layer."""

    pred: Tensor
    hidden: list[Tensor]
    layers: tuple[int, ...]
    windows_run: int = 0  # teacher forward passes, in windows: equals N when every window ran exactly once
    seconds: float = 0.0
    lookups: int = field(default=0, compare=False)

    @classmethod
    def build(
        cls,
        teacher: Forecaster,
        dataset: WindowDataset,
        layers: Sequence[int],
        batch_size: int = 64,
        autocast_dtype: Optional[torch.dtype] = None,
    ) -> "TeacherCache":
        """Run the frozen teacher once over every window of ``dataset`` (in eval mode, without gradients)."""
        t0 = time.perf_counter()
        layers = tuple(layers)
        device = next(teacher.parameters()).device
        n = len(dataset)
        pred = torch.empty(n, dataset.pred_len)
        hidden: list[Tensor] = []
        run = 0
        was_training = teacher.training
        teacher.eval()
        autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
                    else contextlib.nullcontext())
        try:
            with torch.no_grad(), autocast:
                for batch in make_loader(dataset, batch_size, shuffle=False, seed=0):
                    index = batch["index"]
                    x = batch["x"].to(device)
                    if layers:
                        out, states = teacher.forward_hidden(x)
                        if not hidden:
                            hidden = [torch.empty(n, *states[l].shape[1:], dtype=HIDDEN_DTYPE) for l in layers]
                        for store, l in zip(hidden, layers):
                            store[index] = normalise_hidden(states[l]).to("cpu", HIDDEN_DTYPE)
                    else:
                        out = teacher(x)
                    pred[index] = out.float().cpu()
                    run += len(index)
        finally:
            teacher.train(was_training)
        return cls(pred, hidden, layers, run, time.perf_counter() - t0)

    @property
    def nbytes(self) -> int:
        return self.pred.numel() * self.pred.element_size() + sum(h.numel() * h.element_size() for h in self.hidden)

    def lookup(self, index: Tensor, device: torch.device, hidden: bool = True) -> tuple[Tensor, list[Tensor]]:
        """(teacher forecasts, teacher hidden states) of the windows ``index``, on ``device``."""
        self.lookups += 1
        idx = index.cpu()
        pred = self.pred[idx].to(device)
        states = [h[idx].to(device, torch.float32) for h in self.hidden] if hidden else []
        return pred, states


def stored(build: Callable[[], TeacherCache], folder: Optional[Path], dataset: WindowDataset, checkpoint: str,
           autocast_dtype: Optional[torch.dtype], batch_size: int) -> TeacherCache:
    """The forecast-only cache ``build`` makes, kept under ``folder`` (the teacher's run folder; None: not kept).

    The file is keyed by everything its numbers depend on: the teacher checkpoint's digest, the exact windows (their
    patients and origins, in order), the autocast dtype and the batch size (the same rows in the same batches give
    the same floats); a key that differs in anything is another file, so a loaded cache is the one ``build`` would
    make. Loading runs no teacher pass (``windows_run`` 0, ``seconds`` the load's).
    """
    if folder is None:
        return build()
    digest = hashlib.sha1(json.dumps({"checkpoint": checkpoint, "autocast": str(autocast_dtype),
                                      "batch_size": batch_size}, sort_keys=True).encode())
    digest.update(dataset.origins.numpy().tobytes())
    digest.update(np.asarray(dataset.patient).astype(str).tobytes())
    path = Path(folder) / STORE_DIR / f"{digest.hexdigest()[:16]}.pt"
    if path.is_file():
        t0 = time.perf_counter()
        pred = torch.load(path, map_location="cpu", weights_only=True)
        return TeacherCache(pred, [], (), 0, time.perf_counter() - t0)
    cache = build()
    with atomic_path(path) as tmp:
        torch.save(cache.pred, tmp)
    return cache
