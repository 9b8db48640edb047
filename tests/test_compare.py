"""The comparison runner: a tiny real grid end to end, resuming, user errors, and the plain-language findings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import exp.run
from scripts import compare_models as cm

TINY_GRID = ["--models", "persistence,Ridge,DLinear", "--patients", "1001", "--seeds", "7", "--epochs", "1",
             "--max-train-windows", "200", "--max-val-windows", "100"]


def test_tiny_grid_writes_every_output_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMTIME_NO_BARS", "1")
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = TINY_GRID + ["--out", str(out), "--runs-dir", str(runs)]
    assert cm.main(argv) == 0
    for name in ("tidy.csv", "summary.csv", "summary.md", "rmse_by_model.png", "rmse_by_model_60.png"):
        assert (out / name).stat().st_size > 0
    tidy = pd.read_csv(out / "tidy.csv", dtype={"patients": str})
    assert list(tidy["label"]) == ["Persistence", "Ridge", "DLinear"]
    assert tidy["cell_key"].is_unique and set(tidy["patients"]) == {"1001"} and (tidy["test_windows"] > 2000).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["label"]) == ["Persistence", "Ridge", "DLinear"] and (summary["runs"] == 1).all()
    text = (out / "summary.md").read_text()
    assert "python -m scripts.compare_models " + " ".join(argv) in text
    assert "Best at 30 min: **" in text and "Best at 60 min: **" in text and "| Ridge | 1 |" in text
    assert (runs / tidy["run_id"][0] / "metrics.json").is_file()
    assert (runs / tidy["run_id"][2] / "checkpoint.pt").is_file() and not (runs / tidy["run_id"][2] / "last.pt").exists()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(exp.run, "train_and_test", must_not_run)
    capsys.readouterr()
    assert cm.main(argv) == 0
    assert len(pd.read_csv(out / "tidy.csv")) == 3
    # A changed setting is a different cell: it must run (and here hits the stub).
    with pytest.raises(AssertionError, match="run again"):
        cm.main([*argv[:-4], "--epochs", "2", *argv[-4:]])


@pytest.mark.parametrize("flags, message", [
    (["--models", "Ridge,Arima"], "unknown --model 'Arima'"),
    (["--models", "Ridge", "--patients", "1001,9999"], "unknown patient id(s) 9999"),
    (["--models", "Ridge", "--backbones", "NoSuchLM"], "NoSuchLM"),
    (["--models", "Ridge", "--seeds", "one"], "--seeds must be comma-separated integers"),
    (["--models", "Ridge", "--quick", "--full"], "not allowed with argument"),
])
def test_bad_requests_are_one_line_errors(tmp_path, capsys, flags, message):
    assert cm.main([*flags, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_time_llm_switches_join_the_grid_only_with_time_llm():
    grid = cm.variants(["Ridge", "TimeLLM", "TimeLLM_woLLM"], ["MiniLM"], random_backbone=True, no_prompt=True)
    assert [v.label for v in grid] == ["Ridge", "TimeLLM (MiniLM)", "TimeLLM (MiniLM, random LLM)",
                                       "TimeLLM (MiniLM, no prompt)", "TimeLLM_woLLM (MiniLM)"]
    assert [v.label for v in cm.variants(["Ridge"], ["MiniLM"], True, True)] == ["Ridge"]


def _row(label, model, backbone, variant, patient, rmse30, rmse60):
    return {"label": label, "model": model, "backbone": backbone, "variant": variant, "patients": patient, "seed": 1,
            "rmse_30": rmse30, "rmse_60": rmse60, "mae_30": 1.0, "mae_60": 2.0, "clarke_ab_30": 99.0,
            "clarke_ab_60": 98.0, "trainable_params": 10, "total_params": 20, "epochs_run": 1,
            "train_windows_per_s": 5.0, "test_windows_per_s": 50.0, "wall_seconds": 3.0}


def test_findings_say_plainly_who_won():
    rows = pd.DataFrame([
        _row("TimeLLM (MiniLM)", "TimeLLM", "MiniLM", "", "1001", 20.0, 30.0),
        _row("TimeLLM (MiniLM)", "TimeLLM", "MiniLM", "", "1002", 22.0, 34.0),
        _row("TimeLLM_woLLM (MiniLM)", "TimeLLM_woLLM", "MiniLM", "", "1001", 19.0, 29.0),
        _row("TimeLLM_woLLM (MiniLM)", "TimeLLM_woLLM", "MiniLM", "", "1002", 21.0, 33.0),
        _row("Ridge", "Ridge", "", "", "1001", 21.0, 29.5),
        _row("Ridge", "Ridge", "", "", "1002", 23.0, 33.0),
    ])
    labels = ["TimeLLM (MiniLM)", "TimeLLM_woLLM (MiniLM)", "Ridge"]
    summary = cm.summarise(rows, labels)
    assert summary.loc[0, "rmse_30_mean"] == pytest.approx(21.0) and summary.loc[0, "runs"] == 2
    lines = cm.findings(rows, summary)
    assert lines[0].startswith("- Best at 30 min: **TimeLLM_woLLM (MiniLM)**")
    assert lines[1].startswith("- Best at 60 min: **TimeLLM_woLLM (MiniLM)**")
    assert "beat its ablations? **No**: lower RMSE in 0 of 4" in lines[2]
    assert "beat the baselines? **Partly**: lower RMSE in 2 of 4" in lines[3]
    assert "split (30 vs 60 min) with Ridge (2/4)" in lines[3]


def test_summary_carries_the_cgm_metrics_and_old_rows_leave_them_blank():
    new = {**_row("Ridge", "Ridge", "", "", "1001", 21.0, 29.5), "mard_30": 10.0, "mard_60": 16.0, "lag_30": 15.0,
           "lag_60": 35.0, "pooled_hypo_sensitivity_30": 0.5, "pooled_hypo_precision_30": 0.25,
           "pooled_hypo_mcc_30": 0.3}
    rows = pd.DataFrame([new, {**new, "patients": "1002", "mard_30": 12.0}])
    summary = cm.summarise(rows, ["Ridge"])
    assert summary.loc[0, "mard_30_mean"] == pytest.approx(11.0) and summary.loc[0, "lag_60_mean"] == 35.0
    assert summary.loc[0, "pooled_hypo_mcc_30_mean"] == pytest.approx(0.3)
    table = "\n".join(cm.glucose_table(summary))
    assert "| Ridge | 11.0 ± 1.4 | 16.0 ± 0.0 | 15.0 ± 0.0 | 35.0 ± 0.0 | 0.50 / 0.25 / 0.30 | – / – / – |" in table
    old = cm.summarise(pd.DataFrame([_row("Ridge", "Ridge", "", "", "1001", 21.0, 29.5)]), ["Ridge"])
    assert np.isnan(old.loc[0, "mard_30_mean"]) and "| Ridge | – | – | – | – |" in "\n".join(cm.glucose_table(old))
