"""Files a run reads back, made safe and portable.

Checkpoints and resume files hold only tensors, numbers, strings and plain containers, so they load with
``torch.load(weights_only=True)``: loading a run folder someone sent you cannot execute code from it. The results-CSV
lock does not need POSIX ``fcntl``, so the entry points import on Windows.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from builders import H, L, Linear, sine_windows
from data_provider.data_factory import Scaler, description, make_loader
from exp.checkpoint import CHECKPOINT_NAME, load_checkpoint, rebuild_model, save_checkpoint
from configs import RunConfig, TrainConfig
from exp.trainer import FitResult, Trainer, trainable_state
from models import build_model
from utils.seed import seed_everything

def test_checkpoint_loads_with_weights_only(tmp_path):
    state = {"proj.weight": torch.randn(H, L), "proj.bias": torch.zeros(H)}
    scaler = Scaler(np.array([140.0, 0.5]), np.array([50.0, 1.0]))
    save_checkpoint(tmp_path, state, RunConfig(), scaler, weights_source="random",
                    distill_projections={"p.weight": torch.ones(2, 2)})
    payload = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert payload["weights_source"] == "random" and torch.equal(payload["state"]["proj.weight"], state["proj.weight"])
    cfg, loaded_scaler, _, extra = load_checkpoint(tmp_path)
    assert cfg == RunConfig() and loaded_scaler.glucose == (140.0, 50.0) and "distill_projections" in extra


def test_resume_file_loads_with_weights_only_and_resumes(tmp_path):
    path = tmp_path / "last.pt"
    cfg = TrainConfig(batch_size=32, learning_rate=1e-2, train_epochs=1, patience=3)
    train, val = sine_windows(185, seed=0), sine_windows(185, seed=1)  # 186 windows of 200 readings
    Trainer(cfg, Linear()).fit(make_loader(train, 32, True, 5), make_loader(val, 64, False, 0), resume_path=path)
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 1 and saved["best"]["best_epoch"] == 1 and isinstance(saved["rng"]["numpy"], dict)
    cfg.train_epochs = 2
    resumed = Trainer(cfg, Linear()).fit(make_loader(train, 32, True, 5), make_loader(val, 64, False, 0),
                                         resume_path=path)
    assert isinstance(resumed, FitResult) and [r["epoch"] for r in resumed.history] == [1, 2]


def test_results_lock_needs_no_fcntl(tmp_path, monkeypatch):
    """With fcntl absent (as on Windows) utils.results still imports, and appends still lock and widen the table."""
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl now raises ImportError
    monkeypatch.delitem(sys.modules, "utils.results", raising=False)
    results = importlib.import_module("utils.results")
    path = tmp_path / "results.csv"
    results.append_row(path, {"a": 1})
    results.append_row(path, {"a": 2, "b": 3})
    table = pd.read_csv(path)
    assert list(table["a"]) == [1, 2] and table["b"].isna().tolist() == [True, False]


def test_appending_keeps_earlier_rows_as_written(tmp_path):
    """Hex hashes that look like numbers ("1961e791" reads as inf, "01234567" as 1234567) and blank cells survive
    later appends exactly: the rows already in the file are copied as text, not re-parsed."""
    from utils.results import append_row

    path = tmp_path / "results.csv"
    append_row(path, {"config_hash": "1961e791", "run": "a", "rmse_30": 19.25, "note": ""})
    append_row(path, {"config_hash": "01234567", "run": "b", "rmse_30": 18.5, "note": "x", "extra": 1})
    append_row(path, {"config_hash": "abcdef12", "run": "c", "rmse_30": 20.0})
    lines = path.read_text().splitlines()
    assert lines[0] == "config_hash,run,rmse_30,note,extra"
    assert lines[1:] == ["1961e791,a,19.25,,", "01234567,b,18.5,x,1", "abcdef12,c,20.0,,"]
    table = pd.read_csv(path, dtype={"config_hash": str})
    assert list(table["config_hash"]) == ["1961e791", "01234567", "abcdef12"] and table["rmse_30"].dtype == float


def test_a_random_backbone_rebuilds_as_it_was_trained(tmp_path):
    """The checkpoint leaves the frozen backbone out; a random one is redrawn from the run's seed, so a rebuilt run
    (forecast, benchmark, retime) is the trained model whatever the caller drew before."""
    cfg = RunConfig()
    cfg.model.llm_model, cfg.model.llm_weights, cfg.train.seed = "BERT-tiny", "random", 7
    scaler = Scaler(np.array([140.0]), np.array([50.0]))
    seed_everything(7)  # as training does before building its model
    with pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        trained = build_model(cfg.model, cfg.data, scaler, description(cfg.data))
    save_checkpoint(tmp_path, trainable_state(trained), cfg, scaler)
    torch.randn(1000)  # the caller's own draws
    with pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        _, _, rebuilt, _ = rebuild_model(tmp_path)
    again = rebuilt.state_dict()
    assert all(torch.equal(v, again[k]) for k, v in trained.state_dict().items())
