"""Whether a run folder already holds the result of a configuration, so finished work is reused instead of redone.

One rule decides "same settings" for every caller, the rule of a run's identity (``configs.identity``): the
folder's ``config.json`` records every result-relevant setting of the wanted ``RunConfig`` with the same value, a
setting it does not record counting as its default. Settings that only say where outputs go, what a run is called or
how fast it goes (declared ``OUTSIDE_IDENTITY`` in ``configs/schema.py``) and the recorded provenance may differ.
``--resume`` (``exp.run.check_resumable``) refuses a folder that fails the rule; the distillation pipeline and
``train_and_test(reuse=True)`` take a finished run that passes it instead of training again.

"Finished" also means the outputs belong to the weights beside them: ``metrics.json`` is written last and records the
SHA-256 of ``checkpoint.pt`` (``mark_finished``), and a run that is about to write new weights first removes the
outputs of the old ones (``invalidate_outputs``). So a rerun killed in its first epoch, which has already replaced
the checkpoint, leaves nothing that looks finished. Run folders written before the hash was recorded count as
unfinished and are trained again when reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
from torch import nn

from configs import RunConfig
from configs.identity import plain, settings
from data_provider.data_factory import Splits
from exp.checkpoint import CHECKPOINT_NAME, load_checkpoint, model_from_state
from utils.io import write_json

# Written beside a run by callers that train it with more than its RunConfig says (the distillation objective's
# weights and teacher): part of what the run computed, so ``extra`` must match it too.
EXTRA_SETTINGS_NAME = "distillation.json"
METRICS_NAME = "metrics.json"
CHECKPOINT_HASH = "checkpoint_sha256"  # metrics.json's record of the weights it scored
# What a run derives from its weights: stale once new weights are written. metrics.json first: it marks a finished run.
OUTPUTS = (METRICS_NAME, EXTRA_SETTINGS_NAME, "metrics_eval.json", "predictions.csv", "forecast.png",
           "learning_curve.png", "clarke_*min.png", "parkes_*min.png")


def changed_settings(saved: dict[str, Any], cfg: RunConfig) -> list[str]:
    """'key old -> new' for each result-relevant setting on which the ``saved`` config (a config.json; provenance
    and fields it does not know are ignored, fields it does not record are their defaults) and ``cfg`` differ; empty
    when a run of ``saved`` computed what ``cfg`` would."""
    old, new = settings(RunConfig.from_dict(saved)), settings(cfg)
    shown = lambda values, key: repr(values[key]) if key in values else "(default)"  # noqa: E731
    return [f"{k} {shown(old, k)} -> {shown(new, k)}" for k in dict.fromkeys([*new, *old])
            if k not in old or k not in new or old[k] != new[k]]  # one side absent: it holds the default


def read_json(path: Path) -> Optional[dict]:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def checkpoint_sha256(run_dir: Path) -> str:
    """SHA-256 of a run folder's ``checkpoint.pt``."""
    digest = hashlib.sha256()
    with open(Path(run_dir) / CHECKPOINT_NAME, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def invalidate_outputs(run_dir: Path) -> None:
    """Remove what a run folder derived from its current weights, before new weights replace them: a rerun stopped
    before it finishes must not leave the old scores beside its new checkpoint."""
    run_dir = Path(run_dir)
    for pattern in OUTPUTS:
        for path in sorted(run_dir.glob(pattern)):
            path.unlink(missing_ok=True)


def mark_finished(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json``, the mark of a finished run, recording the SHA-256 of the checkpoint it scored; call it
    after every other output (and after any rewrite of the checkpoint)."""
    write_json(Path(run_dir) / METRICS_NAME, {**metrics, CHECKPOINT_HASH: checkpoint_sha256(run_dir)})


def finished_run(run_dir: Path, cfg: RunConfig, extra: Optional[dict] = None) -> Optional[dict]:
    """The saved ``metrics.json`` when ``run_dir`` holds a completed run (config, metrics and the checkpoint they
    scored, by its SHA-256) whose result-relevant settings equal ``cfg``'s and, when ``extra`` is given, whose
    ``EXTRA_SETTINGS_NAME`` equals it; otherwise None. metrics.json is written last and a retraining run removes it
    before writing new weights, so an interrupted run never passes; neither does a folder written before the hash
    was recorded."""
    run_dir = Path(run_dir)
    saved, metrics = read_json(run_dir / "config.json"), read_json(run_dir / METRICS_NAME)
    if saved is None or metrics is None or not (run_dir / CHECKPOINT_NAME).is_file():
        return None
    if changed_settings(saved, cfg):
        return None
    if extra is not None and read_json(run_dir / EXTRA_SETTINGS_NAME) != plain(extra):
        return None
    if metrics.get(CHECKPOINT_HASH) != checkpoint_sha256(run_dir):  # last: the one check that reads the weights
        return None
    return metrics


def rebuild(run_dir: Path, cfg: RunConfig, splits: Splits) -> Optional[nn.Module]:
    """A finished run's best model, built for ``splits``, or None when their scaler is not the checkpoint's (the
    data changed since the run, so its weights and scores belong to other data)."""
    _, scaler, state, _ = load_checkpoint(run_dir)
    if not (np.allclose(scaler.mean, splits.scaler.mean) and np.allclose(scaler.std, splits.scaler.std)):
        return None
    return model_from_state(cfg, splits.scaler, splits.description, state, run_dir)
