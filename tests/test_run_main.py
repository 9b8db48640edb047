"""run_main.py end to end on one bundled patient with a tiny saved backbone: outputs, CSV row, checkpoint round trip."""

import json

import pandas as pd
import pytest

import run_main
from exp.run import evaluate_saved

TINY = ["--patients", "1001", "--max_train_windows", "384", "--max_val_windows", "128", "--batch_size", "32",
        "--learning_rate", "0.005", "--d_ff", "32", "--n_heads", "4", "--num_tokens", "50"]


def _run(tmp_path, folder, *extra):
    args = ["--llm_model", "BERT", "--llm_path", str(folder), "--checkpoints", str(tmp_path), *TINY, *extra]
    assert run_main.main(args) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return run_dir


def test_train_test_outputs_and_checkpoint_round_trip(tmp_path, tiny_backbones, capsys):
    run_dir = _run(tmp_path, tiny_backbones["bert"], "--train_epochs", "3", "--patience", "3")
    out = capsys.readouterr().out
    assert "mean" in out and "outputs:" in out
    for name in ("config.json", "metrics.json", "predictions.csv", "checkpoint.pt", "clarke_30min.png",
                 "parkes_60min.png", "forecast.png"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = metrics["fit"]["history"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]  # validation loss falls
    assert metrics["fit"]["best_epoch"] == min(history, key=lambda r: r["val_loss"])["epoch"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["provenance"]["packages"]["torch"] and config["weights_source"].startswith("pretrained")
    row = pd.read_csv(tmp_path / "results.csv").iloc[-1]
    assert row["model"] == "TimeLLM" and row["backbone"] == "BERT" and str(row["patients"]) == "1001"
    assert row["rmse_30"] == pytest.approx(metrics["summary"]["rmse_30"])
    preds = pd.read_csv(run_dir / "predictions.csv")
    assert set(preds["horizon_min"]) == set(range(5, 65, 5))
    assert preds.groupby("horizon_min").size().nunique() == 1  # every scored reading at every horizon
    # the checkpoint alone rebuilds the model: re-testing gives the same numbers
    again = evaluate_saved(run_dir)
    assert again.row["rmse_30"] == pytest.approx(row["rmse_30"], rel=1e-6)
    assert again.row["rmse_60"] == pytest.approx(row["rmse_60"], rel=1e-6)


def test_deepspeed_zero2_runs_time_llm_on_cpu(tmp_path, tiny_backbones):
    pytest.importorskip("deepspeed")
    run_dir = _run(tmp_path, tiny_backbones["bert"], "--train_epochs", "1", "--use_deepspeed")
    row = pd.read_csv(tmp_path / "results.csv").iloc[-1]
    assert bool(row["deepspeed"]) and row["rmse_30"] > 0
    assert (run_dir / "checkpoint.pt").is_file()


def test_random_weights_are_said_everywhere(tmp_path, tiny_backbones, capsys):
    args = ["--llm_model", "BERT-tiny", "--llm_weights", "random", "--checkpoints", str(tmp_path), *TINY,
            "--train_epochs", "1", "--max_train_windows", "64"]
    assert run_main.main(args) == 0
    assert "RANDOM BACKBONE WEIGHTS" in capsys.readouterr().out
    row = pd.read_csv(tmp_path / "results.csv").iloc[-1]
    assert row["weights_source"] == "random" and "random" in row["run_id"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--llm_model", "NoSuchLM"], "unknown"),
        (["--lradj", "warp"], "invalid choice"),
        (["--use_amp", "--mixed_precision", "no"], "contradicts"),
        (["--data", "ohio"], "--root_path"),
        (["--patients", "9999"], "unknown patient"),
        (["--is_training", "0"], "--checkpoint"),
        (["--enc_in", "7"], "not used"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, args, message):
    assert run_main.main([*args, "--checkpoints", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
