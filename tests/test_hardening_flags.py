"""Flags and settings a user can get wrong before anything runs: every number is finite and within the range its
field declares, text is UTF-8, at every entry point and in a saved configuration or checkpoint; a damaged backbone
file, a too-deep --llm_layers and emulated bf16 are named in one line; the guide's root wrapper and teacher facade.

Each entry point is called in-process; training, data loading and benchmarking are replaced by a failure, so a value
that slipped through fails the test at once instead of starting a run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import forecast as forecast_cli
import run_main
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from data_provider.data_factory import Scaler
from distillation import pipeline as distill_pipeline
from distillation.config import PipelineConfig, patient_groups, phase_configs, run_names
from distillation.scripts.train_teachers import TeacherTrainer
from models.backbones import load_backbone, resolve_backbone
from scripts import benchmark, compare_models
from utils.errors import USER_ERROR_EXIT, LLMTimeError

REPO = Path(__file__).resolve().parents[1]


def _started(*args, **kwargs):
    raise AssertionError("a bad setting reached training, data loading or timing")


@pytest.fixture
def nothing_runs(monkeypatch):
    """Training, evaluation, forecasting and the benchmark's data loading fail the test if they are reached."""
    for target in ("exp.run.train_and_test", "exp.run.evaluate_saved", "bench.run.build_splits"):
        monkeypatch.setattr(target, _started)
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)


def _one_line_error(main, argv, capsys) -> str:
    assert main(argv) == USER_ERROR_EXIT
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["--pred_len", "3"], "--pred_len must be >= 6 (every run is scored at the 30-minute horizon"),
    (["--weight_decay", "-1"], "--weight_decay must be >= 0, got -1.0"),
    (["--weight_decay", "nan"], "--weight_decay must be a finite number >= 0, got nan"),
    (["--learning_rate", "nan"], "--learning_rate must be a finite number > 0, got nan"),
    (["--learning_rate", "inf"], "--learning_rate must be a finite number > 0, got inf"),
    (["--lradj", "TST", "--pct_start", "nan"], "--pct_start must be a finite number in (0, 1), got nan"),
    (["--dropout", "nan"], "--dropout must be a finite number in [0, 1), got nan"),
    (["--seed", "-1"], "--seed must be in [0, 4294967295] (NumPy's seed range), got -1"),
    (["--seed", "99999999999999999999"], "--seed must be in [0, 4294967295]"),
    (["--noise_std", "nan"], "--noise_std must be a finite number >= 0, got nan"),
    (["--missing", "random", "--missing_rate", "nan"], "--missing_rate must be a finite number in [0, 1), got nan"),
    (["--val_fraction", "1"], "--val_fraction must be in (0, 1), got 1.0"),
    (["--percent", "101"], "--percent must be in [1, 100], got 101"),
    (["--des", "Exp\udcff"], "--des 'Exp\\udcff' holds bytes that are not UTF-8 text"),
])
def test_run_main_refuses_a_value_outside_its_declaration_in_one_line(argv, message, nothing_runs, capsys):
    assert message in _one_line_error(run_main.main, argv, capsys)


def test_every_entry_point_holds_numbers_to_the_declarations(nothing_runs, capsys, tmp_path):
    pipeline = ["--teacher", "bert", "--student", "tinybert", "--patients", "1001", "--dry-run"]
    assert "--learning_rate must be a finite number > 0, got nan" in _one_line_error(
        distill_pipeline.main, [*pipeline, "--learning_rate", "nan"], capsys)
    assert "--seed must be in [0, 4294967295]" in _one_line_error(distill_pipeline.main, [*pipeline, "--seed", "-1"],
                                                                  capsys)
    assert "--learning_rate must be a finite number > 0, got nan" in _one_line_error(
        compare_models.main, ["--models", "Ridge", "--plan", "--out", str(tmp_path), "--learning_rate", "nan"], capsys)
    assert "--pred_len must be >= 6" in _one_line_error(benchmark.main, ["--pred_len", "3"], capsys)


def test_a_saved_config_holding_nan_is_refused_in_one_line(nothing_runs, capsys, tmp_path):
    saved = RunConfig(train=TrainConfig(learning_rate=float("nan"))).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(saved))  # NaN, as Python's json writes it
    line = _one_line_error(run_main.main, ["--config", str(tmp_path)], capsys)
    assert f"--config {tmp_path / 'config.json'} holds a value no run accepts" in line
    assert "--learning_rate must be a finite number > 0, got nan" in line


def _checkpoint_with_text_seq_len(folder: Path) -> Path:
    config = RunConfig(model=ModelConfig(model="Ridge")).to_dict()
    config["data"]["seq_len"] = "72"
    folder.mkdir()
    scaler = Scaler(np.array([150.0]), np.array([50.0]))
    torch.save({"state": {}, "config": config, "scaler": scaler.to_dict()}, folder / "checkpoint.pt")
    return folder


def test_a_checkpoint_whose_config_holds_text_for_a_number_is_one_line(capsys, tmp_path, monkeypatch):
    run = _checkpoint_with_text_seq_len(tmp_path / "run")
    cgm = tmp_path / "cgm.csv"
    times = [f"2024-01-01 {h:02d}:{m:02d}" for h in range(12) for m in range(0, 60, 5)]
    cgm.write_text("timestamp,glucose\n" + "".join(f"{t},{120 + i % 30}\n" for i, t in enumerate(times)))
    monkeypatch.chdir(tmp_path)
    expected = f"{run / 'checkpoint.pt'} has a damaged config (--seq_len '72': expected an integer)"
    assert expected in _one_line_error(run_main.main, ["--is_training", "0", "--checkpoint", str(run)], capsys)
    assert expected in _one_line_error(forecast_cli.main, ["--checkpoint", str(run), "--input", str(cgm)], capsys)


def test_a_truncated_safetensors_file_is_named_as_damaged(tiny_backbones, tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    for file in tiny_backbones["bert"].iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(LLMTimeError, match=rf"^{weights} of BERT is damaged \(.*\): download or save_pretrained it"):
        load_backbone(resolve_backbone("BERT"), str(folder))


def test_llm_layers_deeper_than_the_backbone_names_the_fix():
    with pytest.raises(LLMTimeError) as caught:
        load_backbone(resolve_backbone("MiniLM"), weights="random", n_layers=32)
    assert str(caught.value) == ("--llm_layers 32 is outside 1..6, the depth of MiniLM: pass --llm_layers 6 or fewer, "
                                 "or a backbone of 32 or more layers (--llm_model LLAMA)")


def _precision_of(*argv: str) -> str:
    return run_main.config_from_args(run_main.build_parser().parse_args(list(argv))).train.mixed_precision


def test_bf16_asked_for_without_native_bf16_is_warned_once(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setattr("exp.accelerator.native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="bf16 is not native here.*several times slower than fp32") as caught:
        assert _precision_of("--mixed_precision", "bf16") == "bf16"
    assert len(caught) == 1
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # accelerate launch --mixed_precision bf16
    with pytest.warns(UserWarning, match="bf16 is not native here"):
        assert _precision_of() == "bf16"
    monkeypatch.setattr("exp.accelerator.native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _precision_of("--mixed_precision", "bf16") == "bf16"


@pytest.mark.slow
def test_the_root_distill_pipeline_wrapper_is_the_scripts_one():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "LLMTIME_NO_BARS": "1"}
    runs = [subprocess.run(["bash", script, "--help"], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=300) for script in ("distill_pipeline.sh", "scripts/distill_pipeline.sh")]
    assert runs[0].returncode == runs[1].returncode == 0, runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and "usage: python -m distillation.pipeline" in runs[0].stdout


def test_teacher_trainer_reads_the_teacher_rows_of_the_backbone_table():
    assert TeacherTrainer().teacher_models == {
        "GPT2": "openai-community/gpt2", "BERT": "google-bert/bert-base-uncased",
        "DistilBERT": "distilbert/distilbert-base-uncased", "ALBERT": "albert/albert-base-v2"}


def test_teacher_trainer_runs_the_pipelines_teacher_phase(monkeypatch):
    """train() is the pipeline's phase 1, per patient group, in the folder and under the name the pipeline uses."""
    calls = []
    monkeypatch.setattr("distillation.pipeline.train_phase", lambda cfg, name, splits, build: calls.append(
        (cfg, name, splits)) or name)
    monkeypatch.setattr("distillation.scripts.train_teachers.build_splits", lambda data: f"splits of {data.patients}")
    cfg = PipelineConfig(teacher="bert", student="tinybert", data=DataConfig(patients=["1001", "1002"]))
    phases = TeacherTrainer().train(cfg)
    expected = []
    for tag, patients in patient_groups(cfg):
        configs = phase_configs(cfg, tag, patients)
        name = run_names(configs, cfg.candidates[0], cfg.init_from_baseline)["teacher"]
        expected.append((configs["teacher"], name, f"splits of {patients}"))
    assert calls == expected and phases == [name for _, name, _ in expected] and len(calls) == 2
    with pytest.raises(LLMTimeError, match="--learning_rate must be a finite number"):
        TeacherTrainer().train(dataclasses.replace(cfg, train=TrainConfig(learning_rate=float("nan"))))
