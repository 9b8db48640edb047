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
            "--out", str(out)]
    assert tune.main(args) == 0
    rows = pd.read_csv(out)
    assert len(rows) == 2 and set(rows["features"]) == {"MS"}
    assert {json.loads(p)["learning_rate"] for p in rows["point"]} == {1e-3, 1e-2}
    for _, row in rows.iterrows():  # validation only: the curve, the verdict and persistence on the same windows
        history = json.loads(row["history"])
        assert [h["epoch"] for h in history] == [1, 2] and row["verdict"] in ("plateau", "levelled", "still improving")
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
