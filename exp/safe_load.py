"""Reading the torch files of a run folder without letting them run code, and saying in one line why one is refused.

Checkpoints and ``last.pt`` hold only tensors, numbers, strings and plain containers, so they load through torch's
weights-only unpickler, which builds nothing else. DeepSpeed reads its own resume state (the model and optimiser
files under ``last_deepspeed/``) with ``torch.load(weights_only=False)``: a planted file there would run its code on
``--resume``. ``check_deepspeed_state`` therefore opens every pickle there first with the weights-only unpickler,
allowing exactly the few DeepSpeed classes its optimiser file holds, and refuses the folder if any file needs more.

torch's own refusal is several lines of advice about its defaults; ``load_error`` keeps what was refused and why.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from utils.errors import LLMTimeError

# What DeepSpeed and accelerate read back with torch.load: model and optimiser states, RNG states, samplers.
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle")
# The keys every resume file has; a DeepSpeed run keeps model and optimiser in its state folder instead.
RESUME_KEYS = ("epoch", "scheduler", "rng", "best", "best_state", "bad_epochs", "windows", "seconds")
_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation", "WeightsUnpickler")


def load_error(error: BaseException) -> str:
    """Why ``torch.load`` failed, as one clause: the code or object a weights-only load refused, or the damage."""
    if isinstance(error, pickle.UnpicklingError):
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = next((line for line in lines if not line.startswith(_ADVICE)), type(error).__name__)
        wanted = re.search(r"GLOBAL ([\w.]+)", detail)
        if wanted:
            detail = f"it asks to load {wanted[1]}"
        return f"refused: {detail.rstrip('.')}, which a weights-only load never runs (the file holds more than weights)"
    if isinstance(error, OSError) and error.errno not in (None, errno.EINVAL):
        return f"it cannot be read ({error.strerror})"
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "").split(". ")[0]
    detail = f"{type(error).__name__}: {first[:160]}" if first else type(error).__name__
    return f"it is damaged or was not written by torch.save ({detail})"


def load_weights_only(path: Path, fix: str, allowed: Sequence[Any] = (), mmap: bool = False) -> Any:
    """The object in torch file ``path``, built by the weights-only unpickler (``allowed``: further classes it may
    build); a one-line ``LLMTimeError`` ending in ``fix`` when it is refused or unreadable. With ``mmap`` the tensors
    of a zip-format file are mapped, not read, so checking a large file costs little (drop the result soon: a mapped
    file cannot be replaced or deleted on Windows)."""
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except Exception as e:  # whatever a damaged or planted file does to the loader, the user gets one line
        raise LLMTimeError(f"cannot load {path}: {load_error(e)}: {fix}") from None


def load_resume_state(path: Path, deepspeed_dir: Optional[Path] = None) -> dict:
    """The resume state in ``path`` (``last.pt``), its keys checked; for a DeepSpeed run (``deepspeed_dir``, the
    folder of its model and optimiser states) the state folder it names is checked with ``check_deepspeed_state``
    before DeepSpeed reads it."""
    fix = "delete it, or rerun without --resume to start afresh"
    saved = load_weights_only(path, fix)
    keys = RESUME_KEYS + (("deepspeed_state",) if deepspeed_dir is not None else ("model", "optimizer"))
    missing = [k for k in keys if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise LLMTimeError(f"--resume: {path} is not a resume state of this run (no {', '.join(missing[:3])}): {fix}")
    if deepspeed_dir is not None:
        name = saved["deepspeed_state"]
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise LLMTimeError(f"--resume: {path} names no state folder inside {deepspeed_dir} ({name!r}): {fix}")
        check_deepspeed_state(Path(deepspeed_dir) / name)
    return saved


def check_deepspeed_state(folder: Path) -> None:
    """Refuse a DeepSpeed state folder unless every pickle in it loads with the weights-only unpickler and
    DeepSpeed's own state classes: DeepSpeed itself loads them with ``weights_only=False``.

    Links are refused too: the folders this project writes have none, and one could point the check past a file
    DeepSpeed would read.
    """
    fix = f"delete {folder.parent} and last.pt beside it, or rerun without --resume to start afresh"
    if not folder.is_dir():
        raise LLMTimeError(f"--resume: the DeepSpeed state {folder} is missing: {fix}")
    allowed = _deepspeed_globals()
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            if path.is_symlink():
                raise LLMTimeError(f"--resume: {path} is a link, which no DeepSpeed state of this project holds: {fix}")
            if name.endswith(PICKLE_SUFFIXES) and path.is_file():
                load_weights_only(path, fix, allowed, mmap=True)


def _deepspeed_globals() -> list[Any]:
    """The classes a ZeRO checkpoint pickles beyond tensors (loss scaler, ZeRO stage, parameter fragment addresses),
    and NumPy's RNG state types, which accelerate itself allows when it reads its ``random_states_*.pkl``."""
    from accelerate.utils.other import TORCH_SAFE_GLOBALS
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [*TORCH_SAFE_GLOBALS, LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]
