"""A run's identity (configs/identity.py): one hash over the result-relevant settings that differ from their
defaults, the same for run folders, the reuse of finished runs, comparison cells, sweep points and distillation
rows."""

from __future__ import annotations

import dataclasses
from dataclasses import field, replace

from comparison.settings import build_grid
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from configs.identity import identity, plain, settings
from distillation.config import PipelineConfig, config_key, patient_groups, phase_configs
from exp.reuse import changed_settings
from exp.run import config_hash, run_name
from exp.tuning import point_key
from scripts import compare_models

CFG = RunConfig(data=DataConfig(patients=["1001"], covariates=True), model=ModelConfig(model="DLinear"),
                train=TrainConfig(learning_rate=3e-3, seed=7))


def _train(cfg: RunConfig, **changes) -> RunConfig:
    return replace(cfg, train=replace(cfg.train, **changes))


def test_only_settings_that_differ_from_their_defaults_count():
    assert settings(RunConfig()) == {}
    assert settings(CFG) == {"data.patients": ["1001"], "data.covariates": True, "model.model": "DLinear",
                             "train.learning_rate": 3e-3, "train.seed": 7}


def test_adding_a_field_with_a_default_keeps_every_identity():
    """A field added later, at its default, is not part of any identity: no finished run is renamed."""
    later_train = dataclasses.make_dataclass("LaterTrain", [("new_knob", int, field(default=3))], bases=(TrainConfig,))
    later_run = dataclasses.make_dataclass("LaterRun", [("new_switch", bool, field(default=False))],
                                           bases=(RunConfig,))
    grown = later_run(data=CFG.data, model=CFG.model, train=later_train(**dataclasses.asdict(CFG.train)))
    assert identity(grown) == identity(CFG)
    assert identity(replace(grown, new_switch=True)) != identity(CFG)
    assert identity(replace(grown, train=replace(grown.train, new_knob=4))) != identity(CFG)
    # a config.json written before a field existed reads as that field's default: the same run
    saved = plain(CFG.to_dict())
    del saved["data"]["percent"], saved["train"]["weight_decay"]
    assert changed_settings(saved, CFG) == []


def test_speed_and_output_settings_never_change_an_identity():
    quiet = replace(_train(CFG, eval_batch_size=256, num_workers=4, resume=True, report_to="tensorboard"),
                    checkpoints="/elsewhere", results_csv="x.csv", model_id="other", des="tag", model_comment="c")
    assert identity(quiet) == identity(CFG) and run_name(quiet).split("_")[-1].startswith(config_hash(CFG))
    assert changed_settings(plain(quiet.to_dict()), CFG) == []
    assert point_key(quiet) == point_key(CFG)


def test_a_result_relevant_setting_changes_every_identity():
    other = _train(CFG, learning_rate=1e-3)  # back to the default: leaves the identity's settings
    assert identity(other) != identity(CFG) and config_hash(other) != config_hash(CFG)
    assert point_key(other) != point_key(CFG)
    assert changed_settings(plain(other.to_dict()), CFG) == ["train.learning_rate (default) -> 0.003"]
    assert changed_settings(plain(_train(CFG, seed=8).to_dict()), CFG) == ["train.seed 8 -> 7"]


def test_run_folders_sweeps_and_comparison_cells_share_the_identity(tmp_path):
    assert config_hash(CFG) == identity(CFG)[:8] and point_key(CFG) == identity(CFG)

    def grid(*flags):
        args = compare_models.build_parser().parse_args(["--standard", "--mixed_precision", "bf16", *flags])
        return build_grid(compare_models.grid_flags(args), "standard", tmp_path / "runs")

    cells = grid().cells
    assert all(c.key.endswith(f"|{identity(c.config)}") for c in cells)
    assert [c.key for c in grid("--eval_batch_size", "8").cells] == [c.key for c in cells]  # no cell retrains


def test_a_distillation_row_keeps_its_key_when_only_speed_settings_change():
    cfg = PipelineConfig(teacher="bert", student="tinybert", data=DataConfig(patients=["1001"]))
    fast = replace(cfg, train=replace(cfg.train, eval_batch_size=512))
    group = patient_groups(cfg)[0]
    assert config_key(cfg, phase_configs(cfg, *group)) == config_key(fast, phase_configs(fast, *group))
    slow = replace(cfg, train=replace(cfg.train, learning_rate=1e-4))
    assert config_key(cfg, phase_configs(cfg, *group)) != config_key(slow, phase_configs(slow, *group))
