"""``--base ridge``: a gradient-trained model forecasting the correction to a closed-form ridge (models/residual.py).

Hand-made windows of one series for the model-level checks; a one-patient simulated cohort and one epoch for the
checkpoint round trip and config.json (slow: a whole run).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from bench.export import export_onnx
from builders import TINY
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from data_provider.cohort_files import generate_patient
from data_provider.data_factory import Scaler, WindowDataset, window_inputs
from data_provider.simulate import cohort_specs
from exp.checkpoint import rebuild_model
from exp.run import run_name, train_and_test
from models import build_model
from models.residual import OnRidge
from models.ridge import Ridge
from utils.errors import LLMTimeError

L, H = 24, 6
DATA = DataConfig(seq_len=L, pred_len=H, filled_channel=False)  # the hand-made windows carry glucose only
SCALER = Scaler(np.array([140.0]), np.array([50.0]))


@pytest.fixture(scope="module")
def windows() -> WindowDataset:
    """Every window of a noisy two-sine series (roughly unit scale, as scaled glucose is)."""
    t = np.arange(400)
    series = np.sin(t / 7.0) + 0.5 * np.sin(t / 3.1 + 1.0) + 0.1 * np.random.default_rng(0).normal(size=len(t))
    origins = np.arange(L - 1, len(series) - H)
    return WindowDataset(series[:, None], series, origins, np.ones((len(origins), H), bool),
                         np.array(["p"] * len(origins), dtype=object),
                         pd.date_range("2022-01-01", periods=len(series), freq="5min").to_numpy()[origins], L, H)


def based(name: str, windows: WindowDataset, tiny_backbones=None) -> OnRidge:
    torch.manual_seed(0)
    llm = dict(llm_model="BERT", llm_path=str(tiny_backbones["bert"])) if name == "TimeLLM" else {}
    model = build_model(ModelConfig(model=name, base="ridge", **TINY, **llm), DATA, SCALER, "a test cohort")
    model.fit_closed_form(windows)
    return model.eval()


@pytest.mark.parametrize("name", ["DLinear", "PatchTST", "MLP", "TimeLLM"])
def test_at_initialisation_the_forecast_is_ridges_exactly(windows, tiny_backbones, name):
    model = based(name, windows, tiny_backbones)
    ridge = Ridge(ModelConfig(), DATA, SCALER, "")
    ridge.fit_closed_form(windows)
    x = window_inputs(windows, 32)
    with torch.no_grad():
        expected = ridge(x)
        assert torch.equal(model(x), expected)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # as bf16 runs train and predict: ridge stays float32
            assert torch.equal(model(x), expected)
    # the gate is what trains first; ridge's coefficients are frozen but checkpointed with the model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "gate" in trainable and not trainable & {"ridge.weight", "ridge.bias"}
    assert {"gate", "ridge.weight", "ridge.bias", "ridge.alpha"} <= set(model.trainable_state_dict())
    assert not any(k.startswith("model.backbone.") for k in model.trainable_state_dict())  # never the frozen LM


def test_a_based_time_llm_is_reported_and_distilled_like_one(windows, tiny_backbones):
    """The wrapper reports the inner Time-LLM's backbone and weights source and passes hidden states through, so the
    distillation pipeline's hidden-state loss and the results rows treat it as a Time-LLM."""
    model = based("TimeLLM", windows, tiny_backbones)
    assert model.uses_llm and model.backbone_row.family == "bert" and model.weights_source.startswith("pretrained")
    assert model.backbone is model.model.backbone and model.prompt is model.model.prompt
    x = window_inputs(windows, 4)
    with torch.no_grad():
        pred, hidden = model.forward_hidden(x)
        assert torch.equal(pred, model(x)) and len(hidden) == 3  # embedding output + 2 layers
    # a model without a language model has no hidden states on a ridge base either, and says so in one line
    with pytest.raises(LLMTimeError, match=r"^OnRidge has no hidden states to match: distil it with --gamma 0$"):
        based("DLinear", windows).forward_hidden(x)


@pytest.mark.parametrize("name", ["Ridge", "Persistence"])
def test_a_base_under_a_model_with_nothing_to_train_is_refused(name):
    with pytest.raises(LLMTimeError, match=f"--base ridge goes under a gradient-trained model; {name} has nothing"):
        build_model(ModelConfig(model=name, base="ridge"), DATA, SCALER, "")


@pytest.mark.parametrize("name", ["MLP", "TimeLLM"])
def test_based_students_export_to_onnx(windows, tiny_backbones, tmp_path, name):
    model = based(name, windows, tiny_backbones)
    with torch.no_grad():
        model.gate.fill_(0.5)  # a trained correction, so the graph must carry the inner model too
    x = window_inputs(windows, 16)
    runner = export_onnx(model, x[:4], tmp_path / f"{name}.onnx")
    with torch.no_grad():
        torch.testing.assert_close(runner(x), model(x), atol=1e-4, rtol=1e-4)


def test_a_based_decoder_is_refused_by_the_export_as_a_plain_one(windows, tiny_backbones, tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(base="ridge", llm_model="GPT2", llm_path=str(tiny_backbones["gpt2"]), **TINY)
    model = build_model(cfg, DATA, SCALER, "a test cohort")
    with pytest.raises(LLMTimeError, match="encoder backbones"):
        export_onnx(model, window_inputs(windows, 4), tmp_path / "gpt2.onnx")


@pytest.fixture(scope="module")
def based_run(tmp_path_factory):
    """(config, result) of a one-epoch MLP-on-ridge run on a one-patient simulated cohort, events included."""
    root = tmp_path_factory.mktemp("ridge_base")
    generate_patient(cohort_specs(1, 1.0, 0.25, seed=1)[0], root / "data")
    cfg = RunConfig(checkpoints=str(root / "runs"),
                    data=DataConfig(root_path=str(root / "data"), max_train_windows=48, max_val_windows=24,
                                    covariates=True),
                    model=ModelConfig(model="MLP", base="ridge", d_ff=16), train=TrainConfig(train_epochs=1))
    return cfg, train_and_test(cfg)


@pytest.mark.slow
def test_a_trained_based_run_reloads_to_the_same_forecasts(based_run):
    cfg, result = based_run
    assert result.run_dir.name == run_name(cfg)
    assert float(result.model.gate.detach()) != 0.0  # trained: a reload must bring the inner model back
    saved_cfg, _, model, _ = rebuild_model(result.run_dir)
    assert saved_cfg.model.base == "ridge" and isinstance(model, OnRidge)
    x = window_inputs(result.splits.test, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), result.model.eval()(x), atol=1e-6, rtol=0)
    assert json.loads((result.run_dir / "config.json").read_text())["model"]["base"] == "ridge"


def test_the_base_is_in_the_run_name():
    cfg = RunConfig(model=ModelConfig(model="MLP", base="ridge"))
    alone = replace(cfg, model=replace(cfg.model, base="none"))
    assert "_MLP-on-ridge_" in run_name(cfg) and "-on-" not in run_name(alone)
    assert run_name(alone).split("_")[1] == "MLP" and run_name(alone) != run_name(cfg)
