"""Whether a run folder already holds the result of a configuration, so finished work is reused instead of redone.

One rule decides "same settings" for every caller: the folder's ``config.json`` records every result-relevant
setting of the wanted ``RunConfig`` with the same value. Settings that only say where outputs go, what a run is
called or how fast it goes (``NOT_RESULT_SETTINGS``) and the recorded provenance may differ. ``--resume``
(``exp.run.check_resumable``) refuses a folder that fails the rule; the distillation pipeline and
``train_and_test(reuse=True)`` take a finished run that passes it instead of training again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
from torch import nn

from configs import RunConfig
from data_provider.data_factory import Splits
from exp.checkpoint import CHECKPOINT_NAME, load_checkpoint, model_from_state

# Settings that say where outputs go, what a run is called, or how fast it goes, never what it computes: left out
# of the run name's hash, free to change on --resume, and no reason to retrain a finished run.
NOT_RESULT_SETTINGS = {"is_training", "checkpoint", "input", "output", "checkpoints", "results_csv", "model_id",
                       "des", "model_comment", "train.resume", "train.num_workers", "train.eval_batch_size",
                       "train.report_to"}
# Written beside a run by callers that train it with more than its RunConfig says (the distillation objective's
# weights and teacher): part of what the run computed, so ``extra`` must match it too.
EXTRA_SETTINGS_NAME = "distillation.json"


def plain(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, paths strings), so saved and wanted values compare."""
    return json.loads(json.dumps(obj, default=str))


def result_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The result-relevant settings of a config dict (as saved in config.json), flattened to 'train.seed' keys."""
    return {k: v for k, v in _flat(config).items() if k not in NOT_RESULT_SETTINGS}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k in ("provenance", "weights_source") and not prefix:  # what produced the run, not what it computed
            continue
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_settings(saved: dict[str, Any], cfg: RunConfig) -> list[str]:
    """'key old -> new' for each result-relevant setting of ``cfg`` that the ``saved`` config records otherwise or
    not at all; empty when a run of ``saved`` computed what ``cfg`` would."""
    old, new = result_settings(saved), result_settings(plain(cfg.to_dict()))
    return [f"{k} {old[k]!r} -> {v!r}" if k in old else f"{k} (not recorded) -> {v!r}"
            for k, v in new.items() if k not in old or old[k] != v]


def read_json(path: Path) -> Optional[dict]:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def finished_run(run_dir: Path, cfg: RunConfig, extra: Optional[dict] = None) -> Optional[dict]:
    """The saved ``metrics.json`` when ``run_dir`` holds a completed run (config, metrics and checkpoint) whose
    result-relevant settings equal ``cfg``'s and, when ``extra`` is given, whose ``EXTRA_SETTINGS_NAME`` equals it;
    otherwise None. metrics.json is written last, so an interrupted run never passes."""
    run_dir = Path(run_dir)
    saved, metrics = read_json(run_dir / "config.json"), read_json(run_dir / "metrics.json")
    if saved is None or metrics is None or not (run_dir / CHECKPOINT_NAME).is_file():
        return None
    if changed_settings(saved, cfg):
        return None
    if extra is not None and read_json(run_dir / EXTRA_SETTINGS_NAME) != plain(extra):
        return None
    return metrics


def rebuild(run_dir: Path, cfg: RunConfig, splits: Splits) -> Optional[nn.Module]:
    """A finished run's best model, built for ``splits``, or None when their scaler is not the checkpoint's (the
    data changed since the run, so its weights and scores belong to other data)."""
    _, scaler, state, _ = load_checkpoint(run_dir)
    if not (np.allclose(scaler.mean, splits.scaler.mean) and np.allclose(scaler.std, splits.scaler.std)):
        return None
    return model_from_state(cfg, splits.scaler, splits.description, state, run_dir)
