"""Same seed, same numbers; another seed, other numbers; and a run folder says exactly what produced it.

``--seed`` fixes Python, NumPy and torch, the loaders' shuffling generator and the workers' seeds; two CPU runs of
the whole pipeline with one seed must agree to the bit. ``config.json`` records the full configuration, package
versions, git commit (and whether tracked files had uncommitted edits) and where the backbone weights came from.
"""

from __future__ import annotations

import json
import subprocess
from importlib import metadata

import numpy as np
import pytest
import torch

from builders import TINY_BERT, cgm_times, sine_glucose, write_patient_xml
from data_provider.data_factory import build_splits, make_loader
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from exp.reuse import CHECKPOINT_HASH
from exp.run import REPO_ROOT, train_and_test

TIMING = ("seconds", "_per_s")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("repro")
    rng = np.random.default_rng(5)
    for part, start, n in (("training", "2024-02-01 00:01:09", 3 * 288), ("testing", "2024-02-04 00:06:09", 200)):
        write_patient_xml(folder, "3", part, cgm_times(start, n), np.round(sine_glucose(n, 150, 50, 17, 8, rng)))
    return folder


def _run(data_dir, tiny, out, seed: int, **train):
    data = DataConfig(data="ohio", root_path=str(data_dir), patients=["3"], max_train_windows=64, max_val_windows=32)
    cfg = RunConfig(
        checkpoints=str(out),
        data=data,
        model=ModelConfig(llm_path=str(tiny), **TINY_BERT),
        train=TrainConfig(**{"train_epochs": 2, "batch_size": 16, "seed": seed, **train}),
    )
    result = train_and_test(cfg)
    return cfg, result, json.loads((result.run_dir / "metrics.json").read_text())


def _without_timing(obj):
    if isinstance(obj, dict):
        # the checkpoint's hash differs too: its saved config records --num_workers (predictions are compared below)
        return {k: _without_timing(v) for k, v in obj.items()
                if not any(t in k for t in TIMING) and k != CHECKPOINT_HASH}
    if isinstance(obj, list):
        return [_without_timing(v) for v in obj]
    return obj


@pytest.mark.slow
def test_same_seed_same_metrics_other_seed_other_metrics(data_dir, tiny_backbones, tmp_path):
    tiny = tiny_backbones["bert"]
    _, a, ma = _run(data_dir, tiny, tmp_path / "a", seed=5)
    _, b, mb = _run(data_dir, tiny, tmp_path / "b", seed=5, num_workers=2)  # workers must not change what is seen
    _, c, mc = _run(data_dir, tiny, tmp_path / "c", seed=6)
    assert _without_timing(ma) == _without_timing(mb)
    assert (a.run_dir / "predictions.csv").read_bytes() == (b.run_dir / "predictions.csv").read_bytes()
    assert ma["summary"]["rmse_30"] != mc["summary"]["rmse_30"]
    assert ma["fit"]["history"][0]["train_loss"] != mc["fit"]["history"][0]["train_loss"]


@pytest.mark.slow
def test_run_folder_records_config_versions_commit_and_weights(data_dir, tiny_backbones, tmp_path):
    cfg, result, _ = _run(data_dir, tiny_backbones["bert"], tmp_path, seed=1, train_epochs=1)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert {k: v for k, v in saved.items() if k not in ("provenance", "weights_source")} == json.loads(
        json.dumps(cfg.to_dict()))
    prov = saved["provenance"]
    assert prov["packages"]["torch"] == metadata.version("torch")
    assert prov["packages"]["transformers"] == metadata.version("transformers")
    assert prov["python"] and prov["machine"] and isinstance(prov["cuda"], bool)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert prov["git_commit"] == head.stdout.strip() and isinstance(prov["git_dirty"], bool)
    assert saved["weights_source"] == f"pretrained:{tiny_backbones['bert']}"
    assert result.row["weights_source"] == saved["weights_source"] and result.row["seed"] == 1


def test_loader_order_depends_on_the_seed_only(data_dir):
    ds = build_splits(DataConfig(data="ohio", root_path=str(data_dir), patients=["3"])).train

    def order(seed, workers):
        loader = make_loader(ds, 16, shuffle=True, seed=seed, num_workers=workers)
        assert (loader.worker_init_fn is not None) == (workers > 0)
        return torch.cat([batch["index"] for batch in loader]).tolist()

    assert order(9, 0) == order(9, 2) != order(10, 0)
