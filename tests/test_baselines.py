"""Baselines and Time-LLM ablations: each obeys the model contract and does what its name promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from builders import TINY
from data_provider.data_factory import Scaler, WindowDataset, make_loader
from configs import DataConfig, ModelConfig, TrainConfig
from exp.trainer import Trainer, count_parameters
from layers.embed import n_patches
from models import MODELS, build_model, model_spec, model_uses_llm, resolve_model
from models.ablations import TimeLLM_LLM2Attn, TimeLLM_LLM2Trsf, TimeLLM_woLLM
from models.base import Forecaster
from models.backbones import BACKBONES
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError
from utils.seed import seed_everything

L, H = 24, 6
DATA = DataConfig(seq_len=L, pred_len=H, filled_channel=False)  # the hand-made windows carry no filled marker
SCALER = Scaler(np.array([140.0]), np.array([50.0]))  # glucose (mg/dL): all these models read of it
BASELINES = [name for name, spec in MODELS.items() if not spec.uses_llm]  # every model without a language model
ABLATIONS = (TimeLLM_woLLM, TimeLLM_LLM2Attn, TimeLLM_LLM2Trsf)
BERT_ROW = next(r.name for r in BACKBONES if r.family == "bert")


def series_dataset(series: np.ndarray, channels: np.ndarray | None = None) -> WindowDataset:
    """Every window of one series (channel 0 = the target); extra input channels optional."""
    inputs = series[:, None] if channels is None else np.column_stack([series, channels])
    origins = np.arange(L - 1, len(series) - H)
    return WindowDataset(
        inputs, series, origins, np.ones((len(origins), H), bool), np.array(["p"] * len(origins), dtype=object),
        pd.date_range("2022-01-01", periods=len(series), freq="5min").to_numpy()[origins], L, H,
    )


def wave(n: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Two sinusoids (an exact AR(4) process when noiseless), roughly unit scale."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sin(t / 7.0) + 0.5 * np.sin(t / 3.1 + 1.0) + noise * rng.normal(size=n)


def batch_of(ds: WindowDataset, n: int) -> dict[str, torch.Tensor]:
    return ds.__getitems__(list(range(n)))


def test_registry_resolves_every_name_case_insensitively():
    for name, spec in MODELS.items():
        assert resolve_model(name.lower()) is spec.cls and model_spec(name.upper()) is spec
        assert model_uses_llm(name.upper()) == spec.cls.uses_llm
    with pytest.raises(LLMTimeError, match="unknown --model 'Arima'"):
        resolve_model("Arima")


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_keep_the_forecaster_defaults(name):
    """Every registered model declares itself against the contract; a baseline has no language model, prompt or
    patch tokens to report, and checkpoints (and reloads) every weight it has."""
    assert all(issubclass(spec.cls, Forecaster) for spec in MODELS.values())
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=name, patch_len=8, stride=4, d_model=8, n_heads=2, d_ff=16), DATA,
                        SCALER, "")
    assert not model.uses_llm and model.weights_source == "none" and model.backbone_row is None
    assert model.prompt is None and not model.cache_prompt_prefix and model.backbone_layers_used is None
    assert model.n_patches == (n_patches(L, 8, 4) if name == "PatchTST" else 0)
    state = model.trainable_state_dict()
    assert state.keys() == model.state_dict().keys()
    model.load_trainable_state_dict(state)


def test_persistence_is_the_last_input_exactly():
    model = build_model(ModelConfig(model="Persistence"), DATA, SCALER, "")
    x = torch.randn(5, L, 1)
    pred = model(x)
    assert pred.shape == (5, H) and torch.equal(pred, x[:, -1, :1].expand(5, H))
    assert count_parameters(model) == (0, 0)


def test_ridge_fits_a_noiseless_autoregression_exactly_and_checkpoints():
    train, test = series_dataset(wave(600)), series_dataset(wave(900)[600:])
    model = build_model(ModelConfig(model="Ridge"), DATA, SCALER, "")
    model.fit_closed_form(train)
    batch = batch_of(test, len(test))
    torch.testing.assert_close(model(batch["x"]), batch["y"], atol=1e-3, rtol=0)
    assert count_parameters(model) == (0, H * L + H)
    fresh = build_model(ModelConfig(model="Ridge"), DATA, SCALER, "")
    with pytest.raises(RuntimeError, match="fit"):
        fresh(batch["x"])
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh(batch["x"]), model(batch["x"])) and float(fresh.alpha) == float(model.alpha)


def test_ridge_reads_covariates_with_ms_features():
    rng = np.random.default_rng(0)
    drive = rng.normal(size=(700, 3))
    target = np.convolve(drive[:, 0], np.ones(3) / 3, mode="same")  # glucose that follows an input channel
    ds = series_dataset(target, drive)
    data = DataConfig(seq_len=L, pred_len=H, covariates=True, filled_channel=False, basal_logged=False)
    model = build_model(ModelConfig(model="Ridge"), data, SCALER, "")
    model.fit_closed_form(ds)
    assert model.weight.shape == (H, 4 * L)
    with pytest.raises(LLMTimeError, match="channels"):
        build_model(ModelConfig(model="Ridge"), DATA, SCALER, "").fit_closed_form(ds)


@pytest.mark.slow
@pytest.mark.parametrize("name, covariates", [("DLinear", False), ("DLinear", True), ("PatchTST", False)])
def test_trained_baselines_lower_the_loss(name, covariates):
    seed_everything(0)
    n = 300
    extra = np.random.default_rng(1).normal(size=(n, 3)) if covariates else None
    train, val = series_dataset(wave(n, 0.02), extra), series_dataset(wave(n, 0.02, seed=1), extra)
    data = DataConfig(seq_len=L, pred_len=H, covariates=covariates, filled_channel=False, basal_logged=False)
    model = build_model(ModelConfig(model=name, **TINY), data, SCALER, "")
    trainer = Trainer(TrainConfig(batch_size=32, learning_rate=3e-3, train_epochs=3, lradj="constant"), model)
    before = trainer.evaluate_loss(make_loader(val, 128, False, 0))
    fit = trainer.fit(make_loader(train, 32, True, 0), make_loader(val, 128, False, 0))
    assert fit.best_val_loss < 0.5 * before
    pred, idx = trainer.predict(make_loader(val, 128, False, 0))
    assert pred.shape == (len(val), H) and np.isfinite(pred).all()


def test_dlinear_moving_average_keeps_length_and_level():
    model = build_model(ModelConfig(model="DLinear", moving_avg=4), DATA, SCALER, "")
    flat = torch.full((2, L, 1), 3.0)
    torch.testing.assert_close(model.trend(flat), flat)
    with pytest.raises(LLMTimeError, match="moving_avg"):
        build_model(ModelConfig(model="DLinear", moving_avg=0), DATA, SCALER, "")


def test_patchtst_reads_every_channel_with_ms_features():
    data = DataConfig(seq_len=L, pred_len=H, covariates=True, filled_channel=False, basal_logged=False)
    model = build_model(ModelConfig(model="PatchTST", **TINY), data, SCALER, "").eval()
    x = torch.randn(3, L, 4)
    moved = x.clone()
    moved[..., 3] += torch.randn(3, L)  # a different carbohydrate history must change the glucose forecast
    with torch.no_grad():
        assert model(x).shape == (3, H) and not torch.allclose(model(x), model(moved))


def test_patchtst_rejects_heads_that_do_not_divide_d_model():
    with pytest.raises(LLMTimeError, match="d_model"):
        build_model(ModelConfig(model="PatchTST", d_model=10, n_heads=4), DATA, SCALER, "")


def ablation(cls, folders, **overrides) -> TimeLLM:
    cfg = ModelConfig(llm_model=BERT_ROW, llm_path=str(folders["bert"]), **{**TINY, **overrides})
    return cls(cfg, DATA, SCALER, "Simulated adults with type 1 diabetes.")


@pytest.mark.parametrize("cls", ABLATIONS)
def test_ablations_train_without_the_backbone(tiny_backbones, cls, monkeypatch):
    model = ablation(cls, tiny_backbones).train()
    assert model.uses_llm and isinstance(model, TimeLLM) and model.backbone_layers_used == 0
    # Only the frozen word embeddings remain of the backbone; nothing else of it is counted or run.
    embeddings = model.backbone.get_input_embeddings()
    assert [n for n, _ in model.backbone.named_parameters()] == ["embeddings.weight"]
    trainable, total = count_parameters(model)
    assert total - trainable == embeddings.weight.numel()
    calls = []
    monkeypatch.setattr(TimeLLM, "encode", lambda *a, **k: calls.append(1))  # the backbone path must not run
    x = torch.randn(4, L, 1).cumsum(1) * 0.3
    pred = model(x)
    assert pred.shape == (4, H) and not calls
    pred.square().mean().backward()
    assert model.mapping.weight.grad.abs().sum() > 0 and model.head.linear.weight.grad.abs().sum() > 0
    assert embeddings.weight.grad is None
    with torch.no_grad():
        _, hidden = model.eval().forward_hidden(x)
    assert all(h.shape == (4, model.n_patches, model.width) for h in hidden)


def test_without_llm_drops_the_prompt_and_the_replacements_keep_it(tiny_backbones):
    assert ablation(TimeLLM_woLLM, tiny_backbones).prompt is None
    model = ablation(TimeLLM_LLM2Trsf, tiny_backbones).eval()
    assert model.prompt is not None
    x = torch.randn(5, L, 1).cumsum(1) * 0.4 + torch.linspace(-2, 4, 5).view(5, 1, 1)
    with torch.no_grad():  # prompts differ in length, so padding is masked: batch-mates must not matter
        torch.testing.assert_close(model(x), torch.cat([model(x[i : i + 1]) for i in range(5)]), atol=1e-5, rtol=0)


def test_ablation_checkpoint_leaves_out_the_embeddings(tiny_backbones):
    torch.manual_seed(0)
    trained = ablation(TimeLLM_LLM2Attn, tiny_backbones).eval()
    torch.manual_seed(1)
    fresh = ablation(TimeLLM_LLM2Attn, tiny_backbones).eval()
    state = trained.trainable_state_dict()
    assert any(k.startswith("attention.") for k in state) and not any(k.startswith("backbone.") for k in state)
    fresh.load_trainable_state_dict(state)
    x = torch.randn(3, L, 1)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), trained(x))


def test_ablation_width_errors_are_user_errors(tiny_backbones):
    with pytest.raises(LLMTimeError, match="d_ff 48 exceeds"):
        ablation(TimeLLM_woLLM, tiny_backbones, d_ff=48, n_heads=2)
    with pytest.warns(UserWarning, match="llm_layers is ignored"):
        ablation(TimeLLM_woLLM, tiny_backbones, llm_layers=2)
