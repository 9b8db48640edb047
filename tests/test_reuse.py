"""Reusing a finished run: one rule for "same settings", and train_and_test(reuse=True) returning it untrained.

A one-patient simulated cohort and a DLinear run of one epoch: the rule does not depend on the model, and the
distillation tests cover reusing Time-LLM phases.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace

import pytest
import torch

from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from data_provider.cohort_files import generate_patient
from data_provider.simulate import cohort_specs
from exp.checkpoint import CHECKPOINT_NAME, load_checkpoint
from exp.reuse import EXTRA_SETTINGS_NAME, finished_run
from exp.run import train_and_test
from exp.trainer import Trainer
from utils.results import locked


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(config, result) of a completed run."""
    root = tmp_path_factory.mktemp("reuse")
    generate_patient(cohort_specs(1, 1.0, 0.25, seed=1)[0], root / "data")
    cfg = RunConfig(checkpoints=str(root / "runs"),
                    data=DataConfig(root_path=str(root / "data"), max_train_windows=48, max_val_windows=24),
                    model=ModelConfig(model="DLinear"), train=TrainConfig(train_epochs=1))
    return cfg, train_and_test(cfg)


def _with(cfg: RunConfig, **train) -> RunConfig:
    return replace(cfg, train=replace(cfg.train, **train))


def test_a_completed_run_of_the_same_settings_is_found(finished):
    cfg, result = finished
    saved = finished_run(result.run_dir, cfg)
    assert saved == json.loads((result.run_dir / "metrics.json").read_text())
    assert saved["summary"]["rmse_30"] == pytest.approx(result.row["rmse_30"])


def test_only_result_settings_decide(finished):
    cfg, result = finished
    assert finished_run(result.run_dir, _with(cfg, learning_rate=cfg.train.learning_rate / 2)) is None
    assert finished_run(result.run_dir, replace(cfg, model=replace(cfg.model, d_model=cfg.model.d_model * 2))) is None
    # where outputs go and how fast evaluation runs change nothing a run computes
    assert finished_run(result.run_dir, _with(cfg, eval_batch_size=7)) is not None
    assert finished_run(result.run_dir, replace(cfg, results_csv="elsewhere.csv", model_id="other")) is not None


def test_an_incomplete_run_or_other_extra_settings_are_not_reused(finished, tmp_path):
    cfg, result = finished
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    extra = {"alpha": 0.5, "layers": (0, 1)}
    assert finished_run(copy, cfg, extra) is None  # no extra settings written beside it
    (copy / EXTRA_SETTINGS_NAME).write_text(json.dumps(extra))
    assert finished_run(copy, cfg, extra) is not None  # the tuple compares as it reads back from JSON
    assert finished_run(copy, cfg, {**extra, "alpha": 0.2}) is None
    (copy / CHECKPOINT_NAME).unlink()
    assert finished_run(copy, cfg) is None
    assert finished_run(tmp_path / "nothing", cfg) is None


def test_train_and_test_reuses_without_training(finished, monkeypatch):
    cfg, result = finished

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(Trainer, "fit", must_not_train)
    monkeypatch.setattr(Trainer, "predict", must_not_train)
    again = train_and_test(_with(cfg, eval_batch_size=7), reuse=True)
    assert again.run_dir == result.run_dir
    assert again.row == json.loads((result.run_dir / "metrics.json").read_text())["summary"]
    assert set(again.metrics) == set(result.metrics)  # the scores as train_and_test returned them
    for minutes in (30, 60):
        assert again.metrics["mean_over_patients"][f"rmse_{minutes}"] == pytest.approx(
            result.metrics["mean_over_patients"][f"rmse_{minutes}"])
    _, _, state, _ = load_checkpoint(result.run_dir)
    rebuilt = again.model.state_dict()
    assert all(torch.equal(rebuilt[k], v) for k, v in state.items())
    with pytest.raises(AssertionError, match="trained again"):  # other settings: trains (here: refuses to)
        train_and_test(_with(cfg, learning_rate=cfg.train.learning_rate / 2), reuse=True)


def test_two_processes_on_one_run_take_turns_and_the_second_reuses(finished, tmp_path):
    """A grid run by two processes at once (``--kinds`` per process): the one that reaches a run second waits for the
    first to finish it, then reuses it, instead of training into the same folder at the same time."""
    cfg, _ = finished
    cfg = replace(cfg, checkpoints=str(tmp_path / "runs"))
    fits = []
    real_fit = Trainer.fit

    def counted(self, *args, **kwargs):
        fits.append(1)
        return real_fit(self, *args, **kwargs)

    results = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "fit", counted)
        run_dir = tmp_path / "runs" / "shared"
        with locked(run_dir):  # another process is training this run
            second = threading.Thread(target=lambda: results.append(train_and_test(cfg, name="shared", reuse=True)))
            second.start()
            second.join(timeout=2.0)
            assert second.is_alive() and not fits  # waits; trains nothing meanwhile
            first = train_and_test(cfg, name="shared")  # the holder trains it
        second.join(timeout=120)
    assert not second.is_alive() and len(fits) == 1  # the waiting one reused the finished run
    assert results[0].run_dir == first.run_dir and results[0].row == first.row
