"""run_main.py end to end on one bundled patient with a tiny saved backbone: outputs, CSV row, checkpoint round trip;
run folder names, Time-LLM's flags, --config, the launcher's precision, help texts, and no DeepSpeed import without
DeepSpeed."""

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import run_main
from configs import RunConfig
from exp.run import evaluate_saved, run_name
from models import MODELS, model_spec
from models.backbones import backbone_names
from utils.cli import HelpFormatter
from utils.errors import LLMTimeError

REPO = Path(__file__).resolve().parents[1]

TINY = ["--patients", "1001", "--max_train_windows", "384", "--max_val_windows", "128", "--batch_size", "32",
        "--learning_rate", "0.005", "--d_ff", "32", "--n_heads", "4", "--num_tokens", "50"]


def _run(tmp_path, folder, *extra):
    args = ["--llm_model", "BERT", "--llm_path", str(folder), "--checkpoints", str(tmp_path), *TINY, *extra]
    assert run_main.main(args) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.slow
def test_train_test_outputs_and_checkpoint_round_trip(tmp_path, tiny_backbones, capsys):
    run_dir = _run(tmp_path, tiny_backbones["bert"], "--train_epochs", "3", "--patience", "3")
    out = capsys.readouterr().out
    assert "mean" in out and "outputs:" in out
    for name in ("config.json", "metrics.json", "predictions.csv", "checkpoint.pt", "clarke_30min.png",
                 "parkes_60min.png", "forecast.png", "learning_curve.png"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # persistence on the same test windows is a line of the printed table and a block of metrics.json
    persist = next(line for line in out.splitlines() if line.strip().startswith("persist."))
    assert f"{metrics['persistence']['mean_over_patients']['rmse_30']:.2f}" in persist
    assert metrics["summary"]["persistence_rmse_60"] == metrics["persistence"]["mean_over_patients"]["rmse_60"]
    # the learning curve's verdict is recorded and printed
    assert metrics["convergence"]["verdict"] in ("converged", "capped")
    assert metrics["convergence"]["message"] in out
    history = metrics["fit"]["history"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]  # validation loss falls
    assert metrics["fit"]["best_epoch"] == min(history, key=lambda r: r["val_loss"])["epoch"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["provenance"]["packages"]["torch"] and config["weights_source"].startswith("pretrained")
    row = pd.read_csv(tmp_path / "results.csv", dtype={"config_hash": str}).iloc[-1]  # hex: "1961e791" is no float
    assert row["model"] == "TimeLLM" and row["backbone"] == "BERT" and str(row["patients"]) == "1001"
    # the settings that tell runs apart are in the row, and the hash in it is the one in the folder name
    assert row["learning_rate"] == 0.005 and row["d_ff"] == 32 and row["lradj"] == model_spec("TimeLLM").recipe.lradj
    assert row["features"] == "MS"
    assert bool(row["use_prompt"]) and row["patch_len"] == 12 and run_dir.name.endswith(f"_{row['config_hash']}")
    assert row["rmse_30"] == pytest.approx(metrics["summary"]["rmse_30"])
    preds = pd.read_csv(run_dir / "predictions.csv")
    assert set(preds["horizon_min"]) == set(range(5, 65, 5))
    assert preds.groupby("horizon_min").size().nunique() == 1  # every scored reading at every horizon
    # the checkpoint alone rebuilds the model: re-testing gives the same numbers
    again = evaluate_saved(run_dir)
    assert again.row["rmse_30"] == pytest.approx(row["rmse_30"], rel=1e-6)
    assert again.row["rmse_60"] == pytest.approx(row["rmse_60"], rel=1e-6)


@pytest.mark.slow
def test_deepspeed_zero2_runs_time_llm_on_cpu(tmp_path, tiny_backbones):
    pytest.importorskip("deepspeed")
    run_dir = _run(tmp_path, tiny_backbones["bert"], "--train_epochs", "1", "--use_deepspeed")
    row = pd.read_csv(tmp_path / "results.csv", dtype={"config_hash": str}).iloc[-1]
    assert bool(row["deepspeed"]) and row["rmse_30"] > 0 and row["mixed_precision"] == "no"  # never implied
    assert (run_dir / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_deepspeed_bf16_engine_gets_inputs_in_its_precision(tmp_path, tiny_backbones):
    """ZeRO with bf16 holds the weights in bf16 and does not autocast: the engine casts the inputs to match."""
    pytest.importorskip("deepspeed")
    _run(tmp_path, tiny_backbones["bert"], "--train_epochs", "1", "--use_deepspeed", "--mixed_precision", "bf16")
    row = pd.read_csv(tmp_path / "results.csv", dtype={"config_hash": str}).iloc[-1]
    assert bool(row["deepspeed"]) and row["mixed_precision"] == "bf16" and np.isfinite(row["rmse_30"])


@pytest.mark.slow
def test_random_weights_are_said_everywhere(tmp_path, tiny_backbones, capsys):
    args = ["--llm_model", "BERT-tiny", "--llm_weights", "random", "--checkpoints", str(tmp_path), *TINY,
            "--train_epochs", "1", "--max_train_windows", "64"]
    assert run_main.main(args) == 0
    assert "RANDOM BACKBONE WEIGHTS" in capsys.readouterr().out
    row = pd.read_csv(tmp_path / "results.csv", dtype={"config_hash": str}).iloc[-1]
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
        (["--data_path", "ETTh1.csv"], "expected a patient file"),
        (["--data_path", "1001-ws-training.xml", "--patients", "1002"], "selects patient 1001"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, args, message):
    assert run_main.main([*args, "--checkpoints", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def _config(*argv):
    return run_main.config_from_args(run_main.build_parser().parse_args(list(argv)))


def test_run_names_differ_exactly_when_results_can():
    """Runs differing in any result-relevant setting get their own folder; output-only settings keep the name."""
    base = _config()
    variants = [_config(*flags) for flags in (["--learning_rate", "0.01"], ["--d_model", "16"], ["--patch_len", "6"],
                                              ["--no_prompt"], ["--features", "S"], ["--lradj", "type1"],
                                              ["--mixed_precision", "fp16"])]
    names = {run_name(cfg) for cfg in [base, *variants]}
    assert len(names) == 1 + len(variants)
    prefix = run_name(base).rsplit("_", 1)[0]
    assert all(name.startswith(prefix) for name in names)  # the readable part stays
    same = _config("--checkpoints", "/elsewhere", "--num_workers", "2", "--eval_batch_size", "8", "--resume",
                   "--report_to", "tensorboard", "--results_csv", "r.csv")
    assert run_name(same) == run_name(base)
    assert run_name(_config("--model_comment", "TimeLLM-Ohio")) == f"{run_name(base)}-TimeLLM-Ohio"


def test_the_default_run_cuts_minilm_unless_told_otherwise():
    """No --max_train_windows: the 10-minute budget, fresh draws and MiniLM's first layers; a flag given, another
    backbone or a run with its own budget keeps the full backbone."""
    cfg = _config()
    assert cfg.model.llm_layers == run_main.DEFAULT_RUN_LAYERS and cfg.model.top_k == 5
    assert cfg.data.max_train_windows == run_main.DEFAULT_MAX_TRAIN_WINDOWS and cfg.data.train_draw == "fresh"
    assert cfg.train.train_epochs == run_main.DEFAULT_RUN_EPOCHS
    from exp.recipes import DEFAULT_RUN_TRAIN

    # its optimisation is the one its layer cut was chosen with, whatever Time-LLM's recipe; a flag still wins
    assert {k: getattr(cfg.train, k) for k in DEFAULT_RUN_TRAIN} == DEFAULT_RUN_TRAIN
    assert _config("--batch_size", "64").train.batch_size == 64
    budgeted = _config("--max_train_windows", "500").train
    assert {k: getattr(budgeted, k) for k in DEFAULT_RUN_TRAIN} == {
        k: v for k, v in model_spec("TimeLLM").recipe.fields().items() if k in DEFAULT_RUN_TRAIN}
    assert _config("--llm_layers", "6").model.llm_layers == 6
    assert _config("--llm_model", "BERT").model.llm_layers is None
    assert _config("--max_train_windows", "500").model.llm_layers is None


def test_the_privileged_teacher_view_is_no_flag_of_a_forecaster(tmp_path, capsys):
    """Horizon events are what the log holds after the forecast time: only the distillation teacher reads them."""
    assert run_main.main(["--horizon_events", "1", "--checkpoints", str(tmp_path)]) == 2
    assert "--horizon_events" in capsys.readouterr().err


def test_the_persistence_verdict_names_only_the_horizons_a_run_scores():
    from exp.run import _beats

    row = {"rmse_30": 10.0, "persistence_rmse_30": 12.0, "rmse_60": 30.0, "persistence_rmse_60": 25.0}
    assert _beats(row) == "the model beats it at 30 min only"
    assert _beats({**row, "rmse_60": 20.0}) == "the model beats it at 30 and 60 min"
    assert _beats({**row, "rmse_60": None, "persistence_rmse_60": None}) == "the model beats it at 30 min"
    assert _beats({**row, "rmse_30": 13.0, "rmse_60": float("nan")}) == "the model does NOT beat it"


TIME_LLM_FLAGS = ["--itr", "1", "--model_comment", "none", "--factor", "3", "--enc_in", "1", "--dec_in", "1",
                  "--c_out", "1", "--loss", "MSE", "--embed", "timeF", "--freq", "h", "--target", "OT", "--activation",
                  "gelu", "--output_attention", "--align_epochs", "10", "--label_len", "48", "--d_layers", "1"]


def test_time_llm_flags_are_accepted_and_named_in_one_warning():
    with pytest.warns(UserWarning) as caught:
        cfg = _config(*TIME_LLM_FLAGS, "--lradj", "type3")
    (warning,) = [str(w.message) for w in caught]
    assert "\n" not in warning
    for flag in ("--factor 3", "--enc_in 1", "--dec_in 1", "--c_out 1", "--embed timeF", "--freq h", "--target OT",
                 "--activation gelu", "--output_attention", "--align_epochs 10", "--label_len 48", "--d_layers 1"):
        assert flag in warning
    assert "--itr" not in warning and "--loss" not in warning  # --itr 1 and --loss MSE are what happens here
    assert cfg.train.lradj == "type3" and cfg.model_comment == "none"
    with pytest.warns(UserWarning, match=r"--loss MAE \(training minimises MSE.*--itr 3 \(one run per command"):
        _config("--loss", "MAE", "--itr", "3")


def test_features_m_runs_as_ms_and_says_so():
    with pytest.warns(UserWarning, match="--features M: glucose is the only forecast target here; running as --feat"):
        cfg = _config("--features", "M")
    assert cfg.data.covariates


def test_data_path_selects_its_patient():
    assert _config("--data_path", "570-ws-training.xml").data.patients == ["570"]
    nested = _config("--data_path", "OhioT1DM-training/570-ws-training.xml.gz", "--patients", "570")
    assert nested.data.patients == ["570"]
    with pytest.raises(LLMTimeError, match="selects patient 570 but --patients says 559"):
        _config("--data_path", "570-ws-training.xml", "--patients", "559")


@pytest.mark.slow
def test_launcher_mixed_precision_is_used_and_recorded(tmp_path, monkeypatch):
    """accelerate launch --mixed_precision bf16 (ACCELERATE_MIXED_PRECISION) applies unless run_main's flag is given."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert _config("--mixed_precision", "no").train.mixed_precision == "no"
    args = ["--model", "DLinear", "--patients", "1001", "--max_train_windows", "64", "--max_val_windows", "32",
            "--train_epochs", "1", "--checkpoints", str(tmp_path)]
    assert run_main.main(args) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "config.json").read_text())["train"]["mixed_precision"] == "bf16"
    row = pd.read_csv(tmp_path / "results.csv").iloc[-1]
    assert row["mixed_precision"] == "bf16" and row["device"].startswith(("CPU: ", "GPU: "))
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp8")
    with pytest.raises(LLMTimeError, match="launcher's mixed precision fp8 is not supported"):
        _config()


@pytest.mark.slow
def test_config_file_repeats_a_saved_run_and_given_flags_change_only_their_fields(tmp_path, monkeypatch, capsys):
    """--config RUN/config.json is the saved run's configuration (same folder name, so the same run); a flag given
    with it changes its own field and nothing else; a missing or malformed file is one line and status 2."""
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    args = ["--model", "DLinear", "--patients", "1001", "--max_train_windows", "64", "--max_val_windows", "32",
            "--train_epochs", "1", "--checkpoints", str(tmp_path / "runs")]
    assert run_main.main(args) == 0
    capsys.readouterr()  # the run's own output (its progress bars, unless LLMTIME_NO_BARS) is not under test here
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    saved = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert _config("--config", str(run_dir / "config.json")) == saved == _config("--config", str(run_dir))
    assert run_name(saved) == run_dir.name
    changed = _config("--config", str(run_dir), "--batch_size", "7")
    assert changed == dataclasses.replace(saved, train=dataclasses.replace(saved.train, batch_size=7))
    reseeded = _config("--config", str(run_dir), "--seed", "5", "--features", "S")  # flags mapped onto fields
    assert reseeded == dataclasses.replace(
        saved, train=dataclasses.replace(saved.train, seed=5),
        data=dataclasses.replace(saved.data, scenario_seed=5, covariates=False))
    bad = tmp_path / "bad.json"
    for text, message in (("{not json", "is not a run's config.json"),
                          ('{"train": {"batch_size": "many"}}', "--batch_size 'many': expected an integer"),
                          ('{"model": {"dropout": 3}}', "--dropout must be in [0, 1)")):
        bad.write_text(text)
        assert run_main.main(["--config", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: --config {bad}") and message in err and "\n" not in err
    assert run_main.main(["--config", str(tmp_path / "none.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_every_flag_has_help_and_shows_its_default_once():
    parser = run_main.build_parser()
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
    formatter = HelpFormatter("run_main.py")
    for action in parser._actions:
        shown = formatter._expand_help(action)
        assert shown.count("(default") <= 1, shown  # was "... (default: all) (default: None)"
        if action.default not in (None, argparse.SUPPRESS):
            assert "default" in shown, action.option_strings
    model_help = next(a.help for a in parser._actions if "--model" in a.option_strings)
    llm_help = next(a.help for a in parser._actions if "--llm_model" in a.option_strings)
    assert all(name in model_help for name in MODELS) and all(name in llm_help for name in backbone_names())


@pytest.mark.slow
def test_a_run_without_deepspeed_does_not_import_it(tmp_path):
    """Importing DeepSpeed prints 'Setting accelerator to CPU' in every CPU run; only --use_deepspeed may."""
    code = (
        "import sys, run_main\n"
        f"assert run_main.main(['--model', 'DLinear', '--patients', '1001', '--max_train_windows', '64',"
        f" '--max_val_windows', '32', '--train_epochs', '1', '--checkpoints', {str(tmp_path)!r}]) == 0\n"
        "assert 'deepspeed' not in sys.modules, 'deepspeed was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"LLMTIME_NO_BARS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Setting accelerator" not in done.stdout + done.stderr
