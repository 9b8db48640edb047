"""The recipe sweep: one validation-only row per grid point, resumable, with curves and a summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from scripts import tune
from utils.errors import LLMTimeError

SMALL = ["patients=1001", "max_train_windows=200", "max_val_windows=100", "train_epochs=2", "patience=2",
         "batch_size=32", "mixed_precision=no"]


@pytest.mark.slow
def test_sweep_writes_a_row_per_point_and_resumes(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    args = ["--model", "DLinear", "--features", "MS", "--grid", "learning_rate=1e-3,1e-2", "--set", *SMALL,
            "--out", str(out), "--extend_edges", "0"]
    assert tune.main(args) == 0
    rows = pd.read_csv(out)
    assert len(rows) == 2 and set(rows["features"]) == {"MS"}
    assert {json.loads(p)["learning_rate"] for p in rows["point"]} == {1e-3, 1e-2}
    for _, row in rows.iterrows():  # validation only: the curve, the verdict and persistence on the same windows
        history = json.loads(row["history"])
        assert [h["epoch"] for h in history] == [1, 2] and row["verdict"] in ("converged", "capped")
        assert row["val_rmse_30"] > 0 and row["persistence_val_rmse_30"] > 0
        assert "test" not in " ".join(rows.columns)
    assert (tmp_path / "curve_DLinear_MS.png").is_file()
    capsys.readouterr()
    assert tune.main(args) == 0  # a rerun skips the finished points
    assert capsys.readouterr().out.count("done earlier, skipped") == 2 and len(pd.read_csv(out)) == 2


@pytest.mark.parametrize("bad", [["--grid", "no_such=1"], ["--grid", "learning_rate=fast"], ["--set", "seed=1,2"]])
def test_bad_settings_are_one_line_errors(tmp_path, bad, capsys):
    assert tune.main(["--model", "DLinear", *bad, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    with pytest.raises(LLMTimeError):
        from exp.tuning import parse_assignments

        parse_assignments(["learning_rate"], many=True)


def test_a_winner_on_an_edge_grows_the_grid_until_it_is_interior(tmp_path, monkeypatch, capsys):
    """Validation loss smallest near learning rate 3e-2 and at batch 32: a 1e-3,3e-3 grid grows by the grid's
    ratio (9e-3, 2.7e-2, 8.1e-2) until its winner, 2.7e-2, is interior; batch size, already interior, stays."""
    import exp.tuning

    def fake_point(cfg, splits):
        loss = (json_log(cfg.train.learning_rate) - json_log(3e-2)) ** 2 + abs(cfg.train.batch_size - 32) / 100
        return {"best_val_loss": loss, "best_epoch": 1, "epochs_run": 1, "verdict": "converged", "history": "[]",
                "seconds": 0.0}

    monkeypatch.setattr(exp.tuning, "run_point", fake_point)
    monkeypatch.setattr(exp.tuning, "build_splits", lambda data: None)
    out = tmp_path / "sweep.csv"
    assert tune.main(["--model", "DLinear", "--grid", "learning_rate=1e-3,3e-3", "batch_size=16,32,64",
                      "--out", str(out)]) == 0
    rates = sorted({json.loads(p)["learning_rate"] for p in pd.read_csv(out)["point"]})
    assert rates == pytest.approx([1e-3, 3e-3, 9e-3, 2.7e-2, 8.1e-2])
    assert {json.loads(p)["batch_size"] for p in pd.read_csv(out)["point"]} == {16, 32, 64}
    assert "warning" not in capsys.readouterr().out
    assert exp.tuning.beyond_edges({"lr": [0.0, 1.0]}, {"lr": 0.0}) == {"lr": [0.0, 1.0, -1.0]}
    assert exp.tuning.beyond_edges({"fill": ["carry", "linear"]}, {"fill": "carry"}) == {}


def test_a_point_another_sweep_ran_counts_in_the_winner(tmp_path, monkeypatch, capsys):
    """A schedule sweep ran the recipe's rate (labelled by its schedule); a rate sweep over the same settings reuses
    that row and counts its loss: here it is the best, so the grid 3e-4,1e-3,3e-3 has an interior winner and does
    not grow. Another model's row with the same label (PatchTST at 3e-3, far lower) is not this sweep's."""
    import exp.tuning

    def fake_point(cfg, splits):
        if cfg.model.model == "PatchTST":
            return {"best_val_loss": 0.01, "best_epoch": 1, "epochs_run": 1, "verdict": "converged",
                    "history": "[]", "seconds": 0.0}
        loss = {3e-4: 0.3, 1e-3: 0.1, 3e-3: 0.2}.get(cfg.train.learning_rate, 0.05)
        return {"best_val_loss": loss, "best_epoch": 1, "epochs_run": 1, "verdict": "converged", "history": "[]",
                "seconds": 0.0}

    monkeypatch.setattr(exp.tuning, "run_point", fake_point)
    monkeypatch.setattr(exp.tuning, "build_splits", lambda data: None)
    out = tmp_path / "sweep.csv"
    assert tune.main(["--model", "PatchTST", "--grid", "learning_rate=3e-3", "--out", str(out)]) == 0
    common = ["--model", "DLinear", "--from_recipe", "1", "--out", str(out)]
    assert tune.main([*common, "--extend_edges", "0", "--grid", "lradj=constant", "--set", "learning_rate=1e-3"]) == 0
    assert tune.main([*common, "--grid", "learning_rate=3e-4,1e-3,3e-3", "--set", "lradj=constant"]) == 0
    printed = capsys.readouterr().out
    assert "learning_rate=0.001: done earlier, skipped" in printed and "extending" not in printed
    assert len(pd.read_csv(out)) == 4  # PatchTST's, then DLinear's two new rates; 1e-3 was not trained again


def json_log(value: float) -> float:
    import math

    return math.log(value)


def test_from_recipe_starts_each_point_from_the_models_recipe_under_the_fixed_settings(tmp_path, monkeypatch):
    """--from_recipe 1: a point is the model's recipe, then --set, then the grid (so a schedule sweep varies one
    choice of a chosen recipe); without it the configuration defaults apply."""
    import exp.tuning
    from models import model_spec

    seen = []

    def fake_point(cfg, splits):
        seen.append(cfg.train)
        return {"best_val_loss": 1.0, "best_epoch": 1, "epochs_run": 1, "verdict": "converged", "history": "[]",
                "seconds": 0.0}

    monkeypatch.setattr(exp.tuning, "run_point", fake_point)
    monkeypatch.setattr(exp.tuning, "build_splits", lambda data: None)
    recipe = model_spec("PatchTST").recipe
    assert tune.main(["--model", "PatchTST", "--from_recipe", "1", "--extend_edges", "0", "--grid",
                      "lradj=constant,COS", "--set", "patience=5", "--out", str(tmp_path / "s.csv")]) == 0
    assert {t.lradj for t in seen} == {"constant", "COS"} and {t.patience for t in seen} == {5}
    assert {(t.learning_rate, t.batch_size, t.warmup_steps) for t in seen} == {
        (recipe.learning_rate, recipe.batch_size, recipe.warmup_steps)}
    seen.clear()
    assert tune.main(["--model", "PatchTST", "--extend_edges", "0", "--grid", "lradj=constant",
                      "--out", str(tmp_path / "d.csv")]) == 0
    from configs import TrainConfig

    assert seen[0].learning_rate == TrainConfig().learning_rate
