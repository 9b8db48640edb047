"""The data-scaling study: budgets become windows per epoch (Ridge: windows fitted on), every row of a budget sees
the same presentations, cells run budget by budget, and the report says where the curves cross."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import data_provider.data_factory
import exp.run
from comparison import scaling
from configs import TrainConfig
from models.base import Forecaster
from scripts import compare_models as cm
from utils.errors import LLMTimeError

# Ridge is better with little data, DLinear overtakes it at 64 windows: their curves cross between 16 and 64.
RMSE = {("Ridge", 16): 20.0, ("Ridge", 64): 19.0, ("DLinear", 16): 24.0, ("DLinear", 64): 17.0}


def _budget(cfg) -> int:
    per_epoch = cfg.data.max_train_windows
    return per_epoch if cfg.model.model == "Ridge" else per_epoch * scaling.EPOCHS


@pytest.fixture
def fake_engine(monkeypatch):
    calls: list = []

    def run(cfg, splits=None, name=None, reuse=False, **kwargs):
        calls.append(cfg)
        rmse = RMSE[(cfg.model.model, _budget(cfg))] + cfg.train.seed / 10
        per = {p: {"rmse_30": rmse, "rmse_60": 2 * rmse} for p in cfg.data.patients}
        row = {"run_id": name, "model": cfg.model.model, "seed": cfg.train.seed, "features": "MS", "rmse_30": rmse,
               "rmse_60": 2 * rmse, "trainable_params": 1, "total_params": 1, "best_epoch": 8,
               "epochs_run": 0 if cfg.model.model == "Ridge" else 8, "convergence": "capped", "capped": True,
               "train_windows_seen": 0 if cfg.model.model == "Ridge" else _budget(cfg),
               "train_windows_per_epoch": cfg.data.max_train_windows,
               "test_windows_per_s": 1.0, "wall_seconds": 1.0, "persistence_rmse_30": 25.0,
               "persistence_rmse_60": 45.0}
        return SimpleNamespace(row=row, metrics={"per_patient": per}, model=Forecaster())

    monkeypatch.setenv("LLMTIME_NO_BARS", "1")
    monkeypatch.setattr(exp.run, "train_and_test", run)
    monkeypatch.setattr(data_provider.data_factory, "build_splits", lambda data: None)
    return calls


ARGV = ["--scaling", "--models", "Ridge,DLinear", "--patients", "1001,1002", "--seeds", "1,2", "--budgets", "16,64",
        "--mixed-precision", "no"]


def test_budgets_are_presentations_per_row(tmp_path, fake_engine):
    assert cm.main([*ARGV, "--out", str(tmp_path / "out"), "--runs-dir", str(tmp_path / "runs")]) == 0
    assert len(fake_engine) == 8  # 2 budgets x 2 seeds x 2 rows, budget by budget
    assert [_budget(c) for c in fake_engine] == [16] * 4 + [64] * 4
    dlinear = [c for c in fake_engine if c.model.model == "DLinear"]
    assert {c.data.max_train_windows for c in dlinear} == {2, 8} and all(c.train.train_epochs == 8 for c in dlinear)
    assert all(c.train.lradj == "constant" and c.train.patience == scaling.PATIENCE for c in dlinear)
    assert all(c.data.max_val_windows == scaling.VAL_WINDOWS and c.data.covariates and c.data.train_draw == "fresh"
               for c in fake_engine)
    assert isinstance(dlinear[0].train, TrainConfig) and dlinear[0].train.learning_rate == 1e-3  # its recipe's


def test_the_full_budget_is_one_pass_over_the_patients_training_windows(monkeypatch):
    """``full`` spreads one pass (every training window of the study's patients, counted from their splits) over the
    epochs, rounded up so that no window goes short; Ridge fits on every window."""
    counted = []
    monkeypatch.setattr(data_provider.data_factory, "build_splits",
                        lambda data: counted.append(data.patients) or SimpleNamespace(train=range(101)))
    base = scaling.base_config("simulated", None, None, Path("runs"), "no")
    grid, budget_of = scaling.build_grid(base, "MiniLM", ["1001", "1002"], [2021], ["16", scaling.FULL],
                                         "Ridge,DLinear")
    assert counted == [["1001", "1002"]]  # counted once, for the study's patients
    full = {c.variant.model: c.config for c in grid.cells if budget_of[c.key] == scaling.FULL}
    assert full["DLinear"].data.max_train_windows == 13 and 13 * scaling.EPOCHS >= 101  # ceil(101 / 8)
    assert full["Ridge"].data.max_train_windows is None
    grid, _ = scaling.build_grid(base, "MiniLM", ["1001"], [2021], ["16"], "DLinear")
    assert len(counted) == 1  # no full budget: nothing counted


def test_the_report_has_its_columns_charts_and_crossings(tmp_path, fake_engine):
    out = tmp_path / "out"
    assert cm.main([*ARGV, "--out", str(out), "--runs-dir", str(tmp_path / "runs")]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[:9]) == ["model", "budget", "seeds", "capped", "train_windows_seen", "rmse_30_mean",
                                         "rmse_30_sd", "persistence_rmse_30", "rmse_60_mean"]
    ridge16 = summary[(summary["model"] == "Ridge (MS)") & (summary["budget"] == 16)].iloc[0]
    assert ridge16["seeds"] == 2 and ridge16["rmse_30_mean"] == pytest.approx(20.15)
    assert ridge16["train_windows_seen"] == 16  # a closed-form fit: the distinct windows it was fitted on
    assert ridge16["rmse_30_sd"] == pytest.approx(math.sqrt(0.005))
    text = (out / "summary.md").read_text()
    assert "Complete" in text and "capped" in text and "(sum of the runs' wall times; " in text
    assert "**Worse than persistence**: DLinear (MS) at budget 16." in text  # 48.3 against 45 at 60 min
    assert "- 30 min: Ridge (MS) and DLinear (MS) cross between budgets 16 and 64; DLinear (MS) is ahead at 64" in text
    assert (out / "scaling_30.png").stat().st_size > 0 and (out / "scaling_60.png").stat().st_size > 0
    fake_engine.clear()
    assert cm.main([*ARGV, "--out", str(out), "--runs-dir", str(tmp_path / "runs")]) == 0
    assert fake_engine == []  # every cell finished: nothing runs again


@pytest.mark.parametrize("flags, message", [
    (["--budgets", "4"], "at least 8"),
    (["--budgets", "lots"], "at least 8"),
    (["--models", "Arima"], "unknown --models arima for --scaling"),
])
def test_bad_scaling_requests_are_one_line_errors(tmp_path, capsys, flags, message):
    assert cm.main(["--scaling", "--plan", "--out", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err


def test_plan_lists_every_cell(capsys):
    assert cm.main(["--scaling", "--plan", "--budgets", "1000,full", "--seeds", "2021"]) == 0
    printed = capsys.readouterr().out
    assert "TimeLLM_random (MS)" in printed and "Estimated time" in printed
    assert cm.main(["--standard", "--plan", "--budgets", "1000"]) == 2
    assert "--budgets belongs to --scaling" in capsys.readouterr().err
    with pytest.raises(LLMTimeError, match="at least 8"):
        scaling.parse_budgets("0")


def test_the_summary_reads_each_runs_validation_loss_from_its_row_or_folder(tmp_path):
    """Budgets are chosen on validation: the summary's val_loss_mean is the mean of the runs' best validation
    losses, from the row where it recorded one, else from the run's metrics.json; a run with neither counts as
    unknown, not as zero, and the summary says over how many runs the mean was taken."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.json").write_text('{"fit": {"best_val_loss": 0.25}}')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "metrics.json").write_text('{"fit": {"best_val_loss": 0.35}}')
    rows = pd.DataFrame({"cell_key": ["k1", "k2", "k3"], "label": ["X"] * 3, "run_id": ["a", "b", "gone"],
                         "rmse_30": [1.0, 2.0, 3.0], "rmse_60": [2.0, 3.0, 4.0], "persistence_rmse_30": [5.0] * 3,
                         "persistence_rmse_60": [6.0] * 3, "capped": [False] * 3, "train_windows_seen": [8] * 3,
                         "train_windows_per_epoch": [1] * 3, "epochs_run": [8] * 3})
    summary = scaling.summarise(rows, {"k1": "8", "k2": "8", "k3": "64"}, ["X"], tmp_path).set_index("budget")
    assert summary["val_loss_mean"]["8"] == pytest.approx(0.30) and summary["val_loss_runs"]["8"] == 2
    assert math.isnan(summary["val_loss_mean"]["64"]) and summary["val_loss_runs"]["64"] == 0
    recorded = rows.assign(best_val_loss=[None, 0.45, 0.5], cell_key=["k1", "k2", "k3"])  # a row's own value wins
    summary = scaling.summarise(recorded, {"k1": "8", "k2": "8", "k3": "8"}, ["X"], tmp_path).iloc[0]
    assert summary["val_loss_mean"] == pytest.approx((0.25 + 0.45 + 0.5) / 3) and summary["val_loss_runs"] == 3
    half = scaling.summarise(recorded, {"k1": "8", "k2": "8", "k3": "8"}, ["X"], tmp_path / "elsewhere").iloc[0]
    assert half["val_loss_runs"] == 2 and scaling._val_loss(half) == "0.4750 (2 of 3)"


def test_the_llm_free_ablations_keep_the_settings_the_study_began_with():
    """The study's ablation rows train at batch 32 with their earlier rates whatever the grids' recipes say, beside
    Time-LLM's batch-32 rows, so the cells already run stay the study's cells."""
    from exp.recipes import SCALING_ABLATION_TRAIN

    base = scaling.base_config("simulated", None, None, Path("runs"), "no")
    grid, _ = scaling.build_grid(base, "MiniLM", ["1001"], [2021], ["1000"], "TimeLLM_woLLM,TimeLLM_LLM2Trsf,TimeLLM")
    train = {c.variant.model_name: c.config.train for c in grid.cells}
    for model, pinned in SCALING_ABLATION_TRAIN.items():
        assert {k: getattr(train[model], k) for k in pinned} == pinned
        assert (train[model].lradj, train[model].train_epochs) == ("constant", scaling.EPOCHS)
    assert train["TimeLLM"].batch_size == 32
