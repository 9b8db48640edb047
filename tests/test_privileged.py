"""The privileged teacher view (``--horizon_events``, ``--teacher_view privileged``): what it adds, and that nothing
after the forecast origin ever reaches a history-only model, nor future glucose the privileged teacher.

Each leak test perturbs the series after one test window's origin (future glucose, or future meals, boluses and
basal), rebuilds the splits with the same scaler and compares that window's input tensor and prompt.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from builders import TINY_WIDTHS, pipeline_args
from configs import DataConfig, ModelConfig
from data_provider.channels import AHEAD, channel_names, model_inputs
from data_provider.data_factory import build_splits
from data_provider.datasets import load_records
from data_provider.events import horizon_texts
from distillation import pipeline
from distillation.config import phase_configs, plan, run_names
from distillation.cli import build_parser, config_from_args
from distillation.retime import retime_csv
from exp.forecast import forecast_file
from models.prompt import render
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError

STUDENT = DataConfig(covariates=True)  # history only, events as channels and text: the richest student view
TEACHER = replace(STUDENT, horizon_events=True)


@pytest.fixture(scope="module")
def records(cohort):
    return load_records(DataConfig(root_path=str(cohort)))


def _origin(records, cfg) -> tuple[pd.Timestamp, int]:
    """A test window's origin time and index (one well inside the test file)."""
    test = build_splits(replace(cfg, root_path=""), records=records).test
    k = len(test) // 2
    return pd.Timestamp(test.origin_time[k]), k


def _perturbed(records, after: pd.Timestamp, glucose: bool, events: bool):
    """The records with every row after ``after`` changed: glucose raised, or meals, boluses and basal logged."""
    out = copy.deepcopy(records)
    for rec in out.values():
        for part in (rec.train, rec.test):
            later = part.grid.index > after
            if glucose:
                part.grid.loc[later, "glucose"] += 37.0
            if events:
                part.grid.loc[later, "carbs"] = 55.0
                part.grid.loc[later, "bolus"] = 4.5
                part.grid.loc[later, "basal"] = 2.3
    return out


def _window(records, cfg, scaler, k):
    splits = build_splits(cfg, records=records, scaler=scaler)
    return splits.test.__getitems__([k])["x"], splits


def _prompt(tiny_backbones, cfg, splits, x) -> tuple[torch.Tensor, str]:
    torch.manual_seed(0)
    model = TimeLLM(ModelConfig(llm_model="BERT", llm_path=str(tiny_backbones["bert"]), **TINY_WIDTHS), cfg,
                    splits.scaler, splits.description)
    ids, _ = model.prompt(x)
    return ids, render(model.prompt.pieces, model.prompt.statistics(x), 0)


def test_horizon_channels_are_the_log_pred_len_steps_later_and_never_glucose():
    index = pd.date_range("2020-01-01", periods=30, freq="5min")
    grid = pd.DataFrame({"glucose": np.arange(30.0) + 100, "basal": np.nan, "bolus": np.nan, "carbs": np.nan},
                        index=index)
    grid.iloc[8, 1], grid.iloc[20, 2], grid.iloc[25, 3] = 0.9, 4.0, 60.0
    cfg = DataConfig(pred_len=6, seq_len=12, horizon_events=True, filled_channel=False)
    assert channel_names(cfg) == ("glucose", *AHEAD)
    inputs = model_inputs(grid, cfg)
    np.testing.assert_array_equal(inputs[:, 0], grid["glucose"])  # glucose is never shifted
    assert inputs[14, 2] == 4.0 and inputs[19, 3] == 60.0  # a bolus at 20 shows at 20 - 6, a meal at 25 at 19
    assert inputs[:, 2].sum() == 4.0 and inputs[:, 3].sum() == 60.0  # once each, never carried
    # the rate from its record (at 8) shows from 8 - 6 on and holds past the series' end; none before it
    assert (inputs[:2, 1] == 0).all() and (inputs[2:, 1] == 0.9).all()
    with pytest.raises(LLMTimeError, match="seq_len >= --pred_len"):
        build_splits(replace(cfg, seq_len=4, pred_len=6))


def test_horizon_text_lists_the_soonest_meals_and_boluses():
    bolus = torch.tensor([[0.0, 0.0, 5.0, 0.0], [0.0] * 4])
    carbs = torch.tensor([[0.0, 0.0, 0.0, 50.0], [1e-4, 0, 0, 0]])
    assert horizon_texts(bolus, carbs) == ["ahead: meal 50 g in 20 min; bolus 5.0 U in 15 min",
                                           "ahead: no meals or boluses"]


@pytest.mark.parametrize("glucose,events", [(True, False), (False, True), (True, True)])
def test_the_student_never_sees_anything_after_the_origin(records, cohort, tiny_backbones, glucose, events):
    cfg = replace(STUDENT, root_path=str(cohort))
    after, k = _origin(records, cfg)
    x, splits = _window(records, cfg, None, k)
    y, _ = _window(_perturbed(records, after, glucose, events), cfg, splits.scaler, k)
    assert torch.equal(x, y)
    ids, text = _prompt(tiny_backbones, cfg, splits, x)
    ids2, text2 = _prompt(tiny_backbones, cfg, splits, y)
    assert torch.equal(ids, ids2) and text == text2 and "ahead" not in text


def test_the_privileged_teacher_sees_the_horizon_events_and_never_future_glucose(records, cohort, tiny_backbones):
    cfg = replace(TEACHER, root_path=str(cohort))
    after, k = _origin(records, cfg)
    x, splits = _window(records, cfg, None, k)
    ids, text = _prompt(tiny_backbones, cfg, splits, x)
    assert "; ahead: " in text
    # future glucose: inputs and prompt unchanged
    y, _ = _window(_perturbed(records, after, True, False), cfg, splits.scaler, k)
    assert torch.equal(x, y)
    assert torch.equal(_prompt(tiny_backbones, cfg, splits, y)[0], ids)
    # future events: the horizon channels and the prompt change, and only the horizon's (history stays as it was)
    z, _ = _window(_perturbed(records, after, False, True), cfg, splits.scaler, k)
    ahead = [channel_names(cfg).index(name) for name in AHEAD]
    history = [i for i in range(x.shape[-1]) if i not in ahead]
    assert torch.equal(x[..., history], z[..., history]) and not torch.equal(x, z)
    ids3, text3 = _prompt(tiny_backbones, cfg, splits, z)
    assert "ahead: meal 55 g in 5 min" in text3 and "bolus 4.5 U in 5 min" in text3 and text3 != text
    # the student and the teacher list the same windows: the cache's window indices pair them
    student = build_splits(replace(STUDENT, root_path=str(cohort)), records=records)
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(student, name).origins, getattr(splits, name).origins)
    assert student.scaler.mean[:4].tolist() == splits.scaler.mean[:4].tolist()


def test_only_the_teacher_phase_gets_the_privileged_view(cohort):
    args = ["--teacher", "minilm", "--student", "minilm", "--root-path", str(cohort), "--patients", "1001"]
    standard = config_from_args(build_parser().parse_args(args))
    cfg = config_from_args(build_parser().parse_args([*args, "--teacher-view", "privileged"]))
    configs = phase_configs(cfg, "1001", ["1001"])
    assert configs["teacher"].data.horizon_events
    assert not configs["baseline"].data.horizon_events and not configs["distilled"].data.horizon_events
    names = run_names(configs, cfg.candidates[0], False)
    assert names["teacher"].endswith("-privileged") and "-privileged_" in names["distilled"]
    assert names["baseline"] == run_names(phase_configs(standard, "1001", ["1001"]), cfg.candidates[0],
                                          False)["baseline"]
    assert "privileged teacher view" in plan(cfg) and "standard teacher view" in plan(standard)
    with pytest.raises(LLMTimeError, match="teacher_view: invalid choice"):
        build_parser().parse_args([*args, "--teacher-view", "oracle"])


@pytest.mark.slow
def test_pipeline_with_a_privileged_teacher(cohort, tiny_backbones, tmp_path):
    args = pipeline_args(cohort, tiny_backbones, tmp_path, "--max-train-windows", "32", "--max-val-windows", "16",
                         "--int8", "0", "--grid", "0.5,0.5,0.1", "--teacher-view", "privileged")
    # the teacher cache (beta and gamma > 0) runs the teacher on its own, wider inputs: on the students' it would fail
    assert pipeline.main(args) == 0
    row = pd.read_csv(tmp_path / "distillation.csv", dtype={"patient": str}).iloc[0]
    assert row["teacher_kind"] == "privileged" and row["teacher_rmse_30"] > 0 and row["distilled_rmse_30"] > 0
    assert Path(row["teacher_run"]).name.endswith("-privileged")
    teacher_cfg = pd.read_json(Path(row["teacher_run"]) / "config.json", typ="series")
    student_cfg = pd.read_json(Path(row["distilled_run"]) / "config.json", typ="series")
    assert teacher_cfg["data"]["horizon_events"] and not student_cfg["data"]["horizon_events"]
    # timing the row again feeds each model its own view
    assert retime_csv(tmp_path / "distillation.csv", repeats=2, threads=1, int8=False) == 1
    # a privileged teacher never forecasts: its inputs would be the log after the forecast time
    with pytest.raises(LLMTimeError, match="privileged teacher"):
        forecast_file(row["teacher_run"], next(cohort.glob("1001-ws-testing.xml*")), tmp_path / "f.csv")
