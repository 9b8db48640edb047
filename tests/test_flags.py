"""Flags declared once, on the config fields: the generator (configs/flags.py) carries a field's help, choices,
spellings and bounds to the parser and its checks; the shared command-line helper (utils/cli.py) makes every entry
point answer a bad flag with one line and status 2, and Ctrl-C with status 130."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import pytest

import forecast as forecast_cli
import run_main
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from bench.settings import BenchSettings
from configs.flags import FLAG, add_config_flags, check_config, config_from_namespace, flag, internal
from distillation import cli as distill_cli
from distillation import pipeline as distill_pipeline
from distillation.config import PipelineConfig
from scripts import benchmark, check_input_fill, compare_models, generate_cohort, tune
from utils.cli import OneLineArgumentParser, given_flags, run_cli
from utils.errors import INTERRUPTED_EXIT, USER_ERROR_EXIT, LLMTimeError


@dataclass
class Toy:
    """A config section of every kind of field the generator handles."""

    batch_size: int = field(default=32, metadata=flag("windows per step", minimum=1, aliases=("batch",)))
    rate: float = field(default=0.1, metadata=flag("a share", minimum=0, below=1))
    lr: float = field(default=1e-3, metadata=flag("step size", above=0))
    mode: str = field(default="fast", metadata=flag("how", choices=("fast", "slow")))
    cap: Optional[int] = field(default=None, metadata=flag("at most this many (0 = no cap)", none="0"))
    ids: Optional[list[str]] = field(default=None, metadata=flag("comma-separated ids (default: all)", none="all"))
    switch: bool = field(default=True, metadata=flag("1 = on"))
    note: str = field(default="", metadata=internal("written by the code"))


def _parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="toy")
    add_config_flags(p, Toy)
    return p


def test_a_fields_declaration_reaches_the_parser():
    actions = {a.dest: a for a in _parser()._actions}
    assert "note" not in actions  # internal: no flag
    assert actions["batch_size"].option_strings == ["--batch_size", "--batch-size", "--batch"]
    assert actions["batch_size"].help == "windows per step" and actions["batch_size"].default == 32
    assert actions["mode"].choices == ("fast", "slow")
    text = _parser().format_help()
    assert "--batch_size BATCH_SIZE, --batch BATCH_SIZE" in text and "--batch-size" not in text  # twin not listed
    assert "(default: 32)" in text and "1 = on (default: 1)" in text


def test_values_are_converted_as_typed_on_the_command_line():
    ns = _parser().parse_args(["--batch-size", "7", "--cap", "0", "--ids", "1001, 1002", "--switch", "0"])
    assert (ns.batch_size, ns.cap, ns.ids, ns.switch) == (7, None, ["1001", "1002"], False)
    ns = _parser().parse_args(["--switch", "--ids", "ALL", "--cap", "5", "--batch", "3"])
    assert (ns.switch, ns.ids, ns.cap, ns.batch_size) == (True, None, 5, 3)
    assert given_flags(ns) == {"switch", "ids", "cap", "batch_size"}  # defaults are not "given"
    assert given_flags(_parser().parse_args([])) == frozenset()


@pytest.mark.parametrize("argv, message", [
    (["--batch_size", "x"], "argument --batch_size: invalid int value: 'x' (see toy --help)"),
    (["--mode", "warp"], "argument --mode: invalid choice: 'warp'"),
    (["--switch", "maybe"], "argument --switch: expected 0/1, got 'maybe'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_a_bad_flag_is_one_line(argv, message):
    with pytest.raises(LLMTimeError) as caught:
        _parser().parse_args(argv)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("argv, message", [
    (["--batch_size", "0"], "--batch_size must be >= 1, got 0"),
    (["--rate", "1"], "--rate must be in [0, 1), got 1.0"),
    (["--lr", "0"], "--lr must be > 0, got 0.0"),
])
def test_declared_bounds_are_checked(argv, message):
    with pytest.raises(LLMTimeError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        config_from_namespace(Toy, _parser().parse_args(argv))


def test_a_namespace_builds_a_config_over_a_base_taking_only_the_fields_named():
    ns = _parser().parse_args(["--batch_size", "7", "--mode", "slow"])
    assert config_from_namespace(Toy, ns) == Toy(batch_size=7, mode="slow")
    base = Toy(rate=0.5, mode="slow", note="kept")
    assert config_from_namespace(Toy, ns, base=base, names=given_flags(ns)) == dataclasses.replace(base, batch_size=7)
    with pytest.raises(LLMTimeError, match=r"--mode 'warp': choose one of fast, slow"):
        check_config(Toy(mode="warp"))
    with pytest.raises(LLMTimeError, match=r"--batch_size '8': expected an integer"):
        check_config(Toy(batch_size="8"))


def test_every_setting_is_declared_once_across_the_run_configuration():
    """Each field is a flag or says why not, and flag names are unique across the sections (one namespace)."""
    names = []
    for cls in (RunConfig, DataConfig, ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            if cls is RunConfig and f.name in ("data", "model", "train"):
                continue  # the sections
            assert FLAG in f.metadata, f"{cls.__name__}.{f.name} declares neither flag() nor internal()"
            if f.metadata[FLAG] is not None:
                assert f.metadata[FLAG].help, f.name
                names.append(f.name)
    assert len(names) == len(set(names))
    run_main_flags = {a.dest for a in run_main.build_parser()._actions}
    # set through --features and --seed; horizon_events is the distillation teacher's privileged view only
    assert set(names) - run_main_flags == {"covariates", "scenario_seed", "horizon_events"}


def test_run_main_reads_time_llm_switches_and_spellings():
    cfg = run_main.config_from_args(run_main.build_parser().parse_args(
        ["--use_prompt", "0", "--event_text", "false", "--batch-size", "8", "--lr", "0.01", "--dataset", "OHIO",
         "--root-path", "/data", "--resume", "--max_train_windows", "0"]))
    assert not cfg.model.use_prompt and not cfg.model.event_text and cfg.train.resume
    assert (cfg.train.batch_size, cfg.train.learning_rate, cfg.data.data, cfg.data.root_path) == (8, 0.01, "ohio",
                                                                                                   "/data")
    assert cfg.data.max_train_windows is None  # 0 = no cap
    assert run_main.config_from_args(run_main.build_parser().parse_args(["--no_prompt"])).model.use_prompt is False


def test_run_cli_reports_user_errors_and_ctrl_c(capsys):
    def fail() -> int:
        raise LLMTimeError("bad thing")

    def stop() -> int:
        raise KeyboardInterrupt

    assert run_cli(fail, "unused") == USER_ERROR_EXIT and capsys.readouterr().err == "error: bad thing\n"
    assert run_cli(stop, "interrupted: x") == INTERRUPTED_EXIT and capsys.readouterr().err == "interrupted: x\n"


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("main, argv, target", [
    (run_main.main, ["--model", "DLinear"], "exp.run.train_and_test"),
    (forecast_cli.main, ["--checkpoint", "RUN", "--input", "x.csv"], "exp.forecast.forecast_file"),
    (generate_cohort.main, ["--patients", "1"], "scripts.generate_cohort.run_cohort"),
    (tune.main, ["--model", "DLinear"], "exp.tuning.sweep"),
    (check_input_fill.main, ["--patients", "1001"], "data_provider.data_factory.build_splits"),
])
def test_every_entry_point_stops_on_ctrl_c_with_status_130(main, argv, target, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(target, _interrupt)
    assert main(argv) == INTERRUPTED_EXIT
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted") and "\n" not in err


def _one_line_error(main, argv, capsys) -> str:
    assert main(argv) == USER_ERROR_EXIT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_the_distillation_pipeline_reads_its_declared_flags_in_either_spelling(capsys):
    """PipelineConfig's fields and its sections declare the pipeline's flags, their names unique across the tree."""
    names = [f.name for cls in (PipelineConfig, DataConfig, ModelConfig, TrainConfig) for f in dataclasses.fields(cls)
             if f.metadata.get(FLAG)]
    assert len(names) == len(set(names))
    backbones = ["--teacher", "bert", "--student", "tinybert"]
    err = _one_line_error(distill_pipeline.main, [*backbones, "--teacher_epochs", "0", "--dry_run"], capsys)
    assert "--teacher_epochs must be >= 1, got 0" in err
    cfg = distill_cli.config_from_args(distill_cli.build_parser().parse_args(
        [*backbones, "--teacher-epochs", "2", "--batch-size", "8", "--lr", "0.01", "--dataset", "OHIO",
         "--llm-weights", "random", "--student-weights", "pretrained", "--all-patients", "--max-train-windows", "0"]))
    assert (cfg.teacher_epochs, cfg.train.batch_size, cfg.train.learning_rate, cfg.data.data) == (2, 8, 0.01, "ohio")
    assert cfg.all_patients and cfg.data.max_train_windows is None and cfg.data.max_val_windows == 3_000
    assert (cfg.backbone_weights("teacher"), cfg.backbone_weights("student")) == ("random", "pretrained")


def test_the_model_comparison_reads_its_declared_flags_in_either_spelling(capsys, tmp_path):
    err = _one_line_error(compare_models.main, ["--quick", "--plan", "--out", str(tmp_path), "--batch_size", "0"],
                          capsys)
    assert "--batch_size must be >= 1, got 0" in err
    args = compare_models.build_parser().parse_args(
        ["--runs-dir", "R", "--batch-size", "8", "--learning-rate", "0.01", "--max-train-windows", "0",
         "--no-random-backbone", "--no-prompt-ablation"])
    assert (args.runs_dir, args.batch_size, args.learning_rate, args.random_backbone, args.no_prompt_ablation) == (
        "R", 8, 0.01, False, True)
    assert args.max_train_windows is None and "max_train_windows" in given_flags(args)  # 0 given: no cap
    assert args.patience is None and args.mixed_precision is None  # not given: the preset's or the recipe's


def test_the_benchmark_reads_its_declared_flags_in_either_spelling(capsys):
    assert "--batch must be >= 1, got 0" in _one_line_error(benchmark.main, ["--batch", "0"], capsys)
    args = benchmark.build_parser().parse_args(
        ["--llm-model", "BERT", "--seq-len", "24", "--latency-calls", "3", "--patients", "1001", "--no_train"])
    assert (args.llm_model, args.seq_len, args.patients) == ("BERT", 24, ["1001"])
    assert config_from_namespace(BenchSettings, args) == BenchSettings(latency_calls=3, train=False)
    assert benchmark.build_parser().parse_args([]).patients == ["1001", "1002", "1003"]
