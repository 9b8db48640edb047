"""Run folders that must not deceive or harm: planted resume files, results that look finished but are not, a full
disk, non-finite forecasts, damaged saved files, and a grid cell killed between its two writes.

One simulated patient and DLinear (2 epochs, a few dozen windows): the run-folder rules do not depend on the model.
Runs go through ``run_main.main`` as a user's command would; a kill is simulated by an exception raised from a
monkeypatched hook after the first epoch's resume state was written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import forecast
import run_main
from builders import cgm_times, sine_glucose
from data_provider.cohort_files import generate_patient
from data_provider.simulate import cohort_specs
from exp.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from exp.reuse import CHECKPOINT_HASH, finished_run
from exp.trainer import Trainer, deepspeed_state_dir
from utils.errors import LLMTimeError


class _Killed(Exception):
    """Stands for a process killed in the middle of a run."""


class _Planted:
    """What a planted file holds: unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """One simulated patient (1001): a day to train on, six hours to test on."""
    folder = tmp_path_factory.mktemp("data")
    generate_patient(cohort_specs(1, 1.0, 0.25, seed=1)[0], folder)
    return folder


def _flags(data: Path, checkpoints: Path, *extra: str) -> list[str]:
    return ["--model", "DLinear", "--data", "simulated", "--root_path", str(data), "--patients", "1001",
            "--max_train_windows", "64", "--max_val_windows", "32", "--train_epochs", "2", "--patience", "3",
            "--seed", "3", "--mixed_precision", "no", "--checkpoints", str(checkpoints), *extra]


def _run_dir(checkpoints: Path) -> Path:
    (run,) = [p for p in checkpoints.iterdir() if p.is_dir()]
    return run


def _one_line(err: str, *fragments: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@contextlib.contextmanager
def _killed_after_epoch_1():
    """The run inside dies right after epoch 1 wrote its best checkpoint and its resume state."""
    original = Trainer._save_resume

    def save_then_die(self, path, *args):
        original(self, path, *args)
        raise _Killed()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_save_resume", save_then_die)
        with pytest.raises(_Killed):
            yield


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> Path:
    """A finished run's checkpoints folder (copy it before changing anything)."""
    root = tmp_path_factory.mktemp("finished")
    assert run_main.main(_flags(data, root)) == 0
    return root


@pytest.fixture(scope="module")
def interrupted(data, tmp_path_factory) -> Path:
    """The checkpoints folder of a run killed after epoch 1 (copy it before changing anything)."""
    root = tmp_path_factory.mktemp("interrupted")
    with _killed_after_epoch_1():
        run_main.main(_flags(data, root))
    assert (_run_dir(root) / "last.pt").is_file()
    return root


def _copy(checkpoints: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoints, tmp_path / "runs"))


# --- results that look finished but are not ---------------------------------------------------------------------


def test_a_killed_rerun_of_a_finished_run_leaves_nothing_that_looks_finished(data, finished, tmp_path):
    runs = _copy(finished, tmp_path)
    run_dir = _run_dir(runs)
    cfg = load_checkpoint(run_dir)[0]
    assert finished_run(run_dir, cfg) is not None
    with _killed_after_epoch_1():  # same flags, no --resume: it retrains and dies with a new epoch-1 checkpoint
        run_main.main(_flags(data, runs))
    assert finished_run(run_dir, cfg) is None
    for stale in ("metrics.json", "predictions.csv", "forecast.png", "clarke_30min.png", "learning_curve.png"):
        assert not (run_dir / stale).exists(), stale


def test_metrics_of_other_weights_are_not_a_finished_run(finished, tmp_path):
    run_dir = _run_dir(_copy(finished, tmp_path))
    cfg, scaler, state, extra = load_checkpoint(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics[CHECKPOINT_HASH]) == 64 and finished_run(run_dir, cfg) is not None
    save_checkpoint(run_dir, {k: v + 1 for k, v in state.items()}, cfg, scaler, **extra)  # other weights
    assert finished_run(run_dir, cfg) is None
    # a folder from before the hash was recorded is not taken as finished either (it is trained again)
    save_checkpoint(run_dir, state, cfg, scaler, **extra)
    assert finished_run(run_dir, cfg) is not None
    (run_dir / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items() if k != CHECKPOINT_HASH}))
    assert finished_run(run_dir, cfg) is None


def test_a_distilled_run_stays_finished_after_its_projections_are_stripped(finished, tmp_path):
    """The distillation phase rewrites the checkpoint after the run finished (the projections go to an extra field);
    metrics.json then records the new checkpoint, so the run is reused rather than trained again."""
    from distillation.losses import PROJECTION_PREFIX
    from distillation.phases import _strip_projections
    from exp.reuse import mark_finished

    run_dir = _run_dir(_copy(finished, tmp_path))
    cfg, scaler, state, extra = load_checkpoint(run_dir)
    save_checkpoint(run_dir, {**state, f"{PROJECTION_PREFIX}0.weight": torch.ones(2, 2)}, cfg, scaler, **extra)
    mark_finished(run_dir, json.loads((run_dir / "metrics.json").read_text()))  # as train_and_test leaves it
    _strip_projections(run_dir)
    assert set(load_checkpoint(run_dir)[2]) == set(state) and finished_run(run_dir, cfg) is not None


def test_a_fresh_run_over_an_interrupted_one_says_it_discards_it(data, interrupted, tmp_path):
    runs = _copy(interrupted, tmp_path)
    with pytest.warns(UserWarning, match=r"held an interrupted run \(epoch 1\); starting afresh, its resume state is "
                                         r"discarded; use --resume to continue it"):
        assert run_main.main(_flags(data, runs)) == 0
    assert not (_run_dir(runs) / "last.pt").exists()


# --- damaged, foreign and planted files ---------------------------------------------------------------------------


def test_resume_from_a_damaged_foreign_or_planted_last_pt_is_one_line(data, interrupted, tmp_path, capsys):
    runs = _copy(interrupted, tmp_path)
    last = _run_dir(runs) / "last.pt"
    good = last.read_bytes()
    marker = tmp_path / "planted-ran"
    cases = {
        "truncated": lambda: last.write_bytes(good[: len(good) // 2]),
        "foreign": lambda: torch.save({"weights": torch.zeros(3)}, last),
        "planted": lambda: torch.save({"epoch": 1, "model": _Planted(marker)}, last),
    }
    expected = {"truncated": "is damaged or was not written by torch.save", "foreign": "is not a resume state",
                "planted": "refused: it asks to load posix.system"}
    for case, damage in cases.items():
        damage()
        capsys.readouterr()
        assert run_main.main(_flags(data, runs, "--resume")) == 2, case
        _one_line(capsys.readouterr().err, "last.pt", expected[case], "--resume")
    assert not marker.exists()


def test_a_planted_or_damaged_checkpoint_is_one_line(finished, tmp_path, capsys):
    run_dir = _run_dir(_copy(finished, tmp_path))
    marker = tmp_path / "planted-ran"
    torch.save({"state": _Planted(marker), "config": {}, "scaler": {}}, run_dir / CHECKPOINT_NAME)
    assert run_main.main(["--is_training", "0", "--checkpoint", str(run_dir)]) == 2
    line = _one_line(capsys.readouterr().err, "checkpoint.pt is not a readable LLM-TIME checkpoint",
                     "refused: it asks to load posix.system", "weights-only")
    assert "PyTorch 2.6" not in line and not marker.exists()
    (run_dir / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 cut short")
    assert run_main.main(["--is_training", "0", "--checkpoint", str(run_dir)]) == 2
    _one_line(capsys.readouterr().err, "checkpoint.pt is not a readable LLM-TIME checkpoint", "damaged")


@pytest.mark.slow
def test_a_planted_deepspeed_state_file_does_not_run_on_resume(data, tmp_path, capsys):
    """DeepSpeed unpickles its own state with weights_only=False; the file is checked before DeepSpeed reads it."""
    pytest.importorskip("deepspeed")
    runs = tmp_path / "runs"
    with _killed_after_epoch_1():
        run_main.main(_flags(data, runs, "--use_deepspeed", "1"))
    state = deepspeed_state_dir(_run_dir(runs) / "last.pt") / "epoch1"
    planted = state / "pytorch_model" / "mp_rank_00_model_states.pt"
    assert planted.is_file()
    marker = tmp_path / "planted-ran"
    torch.save({"module": _Planted(marker)}, planted)
    capsys.readouterr()
    assert run_main.main(_flags(data, runs, "--use_deepspeed", "1", "--resume")) == 2
    _one_line(capsys.readouterr().err, str(planted), "refused: it asks to load posix.system", "--resume")
    assert not marker.exists()


@pytest.mark.slow
def test_a_clean_deepspeed_state_passes_the_check_and_a_link_in_it_does_not(tmp_path):
    pytest.importorskip("deepspeed")
    from exp.safe_load import check_deepspeed_state

    state = tmp_path / "last_deepspeed" / "epoch1"
    (state / "pytorch_model").mkdir(parents=True)
    torch.save({"module": {"w": torch.ones(2)}}, state / "pytorch_model" / "mp_rank_00_model_states.pt")
    check_deepspeed_state(state)
    (state / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(LLMTimeError, match="elsewhere is a link"):
        check_deepspeed_state(state)
    with pytest.raises(LLMTimeError, match="epoch2 is missing"):
        check_deepspeed_state(state.with_name("epoch2"))


def test_a_reused_teachers_missing_empty_or_header_only_predictions_are_one_line(tmp_path):
    from distillation.measure import agreement

    student = tmp_path / "student"
    student.mkdir()
    pd.DataFrame({"timestamp": ["2024-01-01 00:00"], "patient": ["7"], "horizon_min": [30], "truth": [120.0],
                  "forecast": [118.0]}).to_csv(student / "predictions.csv", index=False)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    for content, expected in ((None, "is missing"), ("", "not a readable predictions table"),
                              ("timestamp,patient,horizon_min,truth,forecast\n", "holds no forecasts")):
        if content is not None:
            (teacher / "predictions.csv").write_text(content)
        with pytest.raises(LLMTimeError, match=expected) as caught:
            agreement(teacher, student, 30)
        assert "\n" not in str(caught.value) and "metrics.json" in str(caught.value)


# --- non-finite forecasts ---------------------------------------------------------------------------------------


def test_a_checkpoint_with_nan_weights_forecasts_nothing_and_says_so(finished, tmp_path, capsys):
    run_dir = _run_dir(_copy(finished, tmp_path))
    cfg, scaler, state, extra = load_checkpoint(run_dir)
    save_checkpoint(run_dir, {k: torch.full_like(v, float("nan")) for k, v in state.items()}, cfg, scaler, **extra)
    cgm = tmp_path / "cgm.csv"
    times = cgm_times("2024-05-01 00:00", 144)
    pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M"), "glucose": np.round(
        sine_glucose(144, 140, 40, 12))}).to_csv(cgm, index=False)
    assert forecast.main(["--checkpoint", str(run_dir), "--input", str(cgm), "--output", str(tmp_path / "f.csv")]) == 2
    _one_line(capsys.readouterr().err, "forecasts are not finite", str(run_dir))
    assert not (tmp_path / "f.csv").exists()
    assert run_main.main(["--is_training", "0", "--checkpoint", str(run_dir)]) == 2  # re-testing it
    _one_line(capsys.readouterr().err, "forecasts are not finite")


def test_non_finite_test_forecasts_are_an_error_not_a_row(data, tmp_path, monkeypatch, capsys):
    original = Trainer.predict

    def diverged(self, loader):
        pred, index = original(self, loader)
        pred[::7] = np.inf
        return pred, index

    monkeypatch.setattr(Trainer, "predict", diverged)
    runs = tmp_path / "runs"
    assert run_main.main(_flags(data, runs)) == 2
    _one_line(capsys.readouterr().err, "forecasts are not finite (NaN or inf) for")
    assert not (_run_dir(runs) / "metrics.json").exists() and not (runs / "results.csv").exists()


# --- a full disk ------------------------------------------------------------------------------------------------


class _FullDisk:
    """A binary file on a disk that fills after ``room`` bytes."""

    def __init__(self, path, room: int) -> None:
        self.file, self.room = open(path, "wb"), room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def test_a_full_disk_at_the_results_row_is_one_line_and_nothing_looks_finished(data, tmp_path, monkeypatch, capsys):
    to_csv = pd.DataFrame.to_csv

    def full(self, path=None, *args, **kwargs):
        if path is not None and Path(path).name.startswith(".results.csv."):  # atomic_path's temporary file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return to_csv(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    runs = tmp_path / "runs"
    assert run_main.main(_flags(data, runs)) == 2
    _one_line(capsys.readouterr().err, f"no space left to write {runs / 'results.csv'}", "free of")
    run_dir = _run_dir(runs)
    assert not (run_dir / "metrics.json").exists() and finished_run(run_dir, load_checkpoint(run_dir)[0]) is None


def test_a_full_disk_at_the_checkpoint_is_one_line(data, tmp_path, monkeypatch, capsys):
    import utils.io

    monkeypatch.setattr(utils.io, "open", lambda path, mode: _FullDisk(path, 600), raising=False)
    runs = tmp_path / "runs"
    assert run_main.main(_flags(data, runs)) == 2
    line = _one_line(capsys.readouterr().err, "no space left to write", "checkpoint.pt", "free of")
    assert re.search(r"it needs more than the \d+ bytes written before the disk filled; .* free of ", line)
    assert not list(_run_dir(runs).glob("*.tmp")) and not (_run_dir(runs) / CHECKPOINT_NAME).exists()


# --- a comparison cell killed between its two writes ------------------------------------------------------------


def test_a_cell_killed_between_its_writes_leaves_no_duplicate_patient_rows(tmp_path, monkeypatch):
    import exp.run
    import data_provider.data_factory
    import utils.results
    from comparison.grid import Cell, Variant
    from comparison.runner import run_grid
    from configs import RunConfig
    from models.base import Forecaster

    def fake_train_and_test(cfg, splits=None, name=None, reuse=False, **kwargs):
        per = {p: {"rmse_30": 20.0, "rmse_60": 30.0, "mae_30": 1.0, "mae_60": 2.0, "n_30": 9, "n_60": 9}
               for p in ("1001", "1002")}
        row = {"run_id": name, "rmse_30": 20.0, "rmse_60": 30.0, "wall_seconds": 1.0, "features": "MS"}
        return SimpleNamespace(row=row, metrics={"per_patient": per}, model=Forecaster())

    monkeypatch.setenv("LLMTIME_NO_BARS", "1")
    monkeypatch.setattr(exp.run, "train_and_test", fake_train_and_test)
    monkeypatch.setattr(data_provider.data_factory, "build_splits", lambda data: None)
    cells = [Cell(Variant("DLinear"), ("1001", "1002"), 1, "abc", RunConfig(checkpoints=str(tmp_path / "r")))]
    out = tmp_path / "out"
    append_row = utils.results.append_row

    def killed_at_the_tidy_row(path, row):
        if Path(path).name == "tidy.csv":
            raise _Killed()
        append_row(path, row)

    monkeypatch.setattr(utils.results, "append_row", killed_at_the_tidy_row)
    with pytest.raises(_Killed):
        run_grid(cells, out, "cmd")
    monkeypatch.setattr(utils.results, "append_row", append_row)
    assert run_grid(cells, out, "cmd") == 1
    rows = pd.read_csv(out / "per_patient.csv", dtype={"patient": str})
    assert sorted(rows["patient"]) == ["1001", "1002"] and len(pd.read_csv(out / "tidy.csv")) == 1
