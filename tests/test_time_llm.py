"""TimeLLM: every backbone family through the real loading path, the model contract, and its building blocks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from builders import TINY
from data_provider.data_factory import Scaler
from configs import DataConfig, ModelConfig
from layers.embed import PatchEmbedding, n_patches
from layers.normalization import RevIN
from models import build_model
from models.backbones import BACKBONES, FAMILIES
from models.prompt import render
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError

DATA = DataConfig(seq_len=24, pred_len=6, filled_channel=False)  # windows below carry glucose alone
SCALER = Scaler(np.array([140.0]), np.array([50.0]))  # glucose (mg/dL): all these models read of it
DESCRIPTION = "Simulated adults with type 1 diabetes;\n CGM every 5 minutes."
# Each family runs under its first table row, with the tiny saved folder as --llm_path.
ROW_OF_FAMILY = {family: next(r.name for r in BACKBONES if r.family == family) for family in FAMILIES}


def tiny_model(folders, family: str = "bert", **overrides) -> TimeLLM:
    cfg = ModelConfig(llm_model=ROW_OF_FAMILY[family], llm_path=str(folders[family]), **{**TINY, **overrides})
    return TimeLLM(cfg, DATA, SCALER, DESCRIPTION)


def windows(batch: int, seq_len: int = 24, seed: int = 0) -> torch.Tensor:
    """Scaled random-walk windows whose mg/dL statistics span 1- to 3-digit and negative numbers."""
    g = torch.Generator().manual_seed(seed)
    walk = torch.randn(batch, seq_len, 1, generator=g).cumsum(1) * 0.4
    level = torch.linspace(-3.5, 6.0, batch).view(batch, 1, 1)
    return walk + level


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    return TimeLLM(ModelConfig(), DataConfig(filled_channel=False), SCALER, DESCRIPTION).eval()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_trains_through_the_reprogramming_only(tiny_backbones, family):
    model = tiny_model(tiny_backbones, family).train()
    assert model.weights_source == f"pretrained:{tiny_backbones[family]}"
    # ALBERT / MobileBERT: tokens enter at the 16-wide embedding width, features leave at the 32-wide hidden width.
    assert model.reprogramming.out.out_features == model.backbone.get_input_embeddings().embedding_dim
    x = windows(4)
    pred = model(x)
    assert pred.shape == (4, DATA.pred_len)
    pred.square().mean().backward()
    for trained in (model.mapping.weight, model.reprogramming.query.weight, model.patch_embedding.token.weight):
        assert trained.grad is not None and trained.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())

    model.eval()
    with torch.no_grad():
        pred, hidden = model.forward_hidden(x)
        same_pred, same_hidden = model(x, return_hidden=True)  # the call forward_hidden names
    assert len(hidden) == 2 + 1 and all(h.shape == (4, model.n_patches, 32) for h in hidden)
    assert torch.equal(pred, same_pred) and all(torch.equal(a, b) for a, b in zip(hidden, same_hidden))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_forecast_does_not_depend_on_batch_mates(tiny_backbones, family):
    model = tiny_model(tiny_backbones, family).eval()
    x = windows(5, seed=1)
    _, lengths = model.prompt(x)
    assert len(set(lengths.tolist())) > 1, "windows must have prompts of different lengths for this test"
    with torch.no_grad():
        batched = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_minilm_real_weights(minilm):
    assert minilm.weights_source.startswith("pretrained:") and minilm.backbone_row.name == "MiniLM"
    assert len(minilm.backbone.encoder.layer) == 6
    x = windows(3, seq_len=72)
    with torch.no_grad():
        pred, hidden = minilm.forward_hidden(x)
        alone = minilm(x[1:2])
    assert pred.shape == (3, 12) and torch.isfinite(pred).all()
    assert len(hidden) == 7 and all(h.shape == (3, 12, 384) for h in hidden)
    torch.testing.assert_close(pred[1:2], alone, atol=1e-5, rtol=0)


def test_minilm_cut_to_two_layers():
    model = TimeLLM(ModelConfig(llm_layers=2), DataConfig(filled_channel=False), SCALER, DESCRIPTION).eval()
    with torch.no_grad():
        _, hidden = model.forward_hidden(windows(2, seq_len=72))
    assert len(model.backbone.encoder.layer) == 2 and len(hidden) == 3


def test_backbone_stays_in_eval_mode(tiny_backbones):
    model = tiny_model(tiny_backbones, "bert").train()
    assert model.training and model.patch_embedding.training and model.head.training
    assert not any(m.training for m in model.backbone.modules())


def test_prototype_cache_matches_recomputation_and_follows_weight_changes(tiny_backbones):
    model = tiny_model(tiny_backbones, "bert").eval()
    with torch.no_grad():
        first = model.prototypes()
        assert model.prototypes() is first
        torch.testing.assert_close(first, model._compute_prototypes())
        model.mapping.weight.add_(0.5)  # what an optimizer step does
        changed = model.prototypes()
    assert changed is not first
    torch.testing.assert_close(changed, model._compute_prototypes().detach())
    assert model.prototypes().requires_grad  # grad enabled: recomputed so the mapping can learn
    model.train()
    assert model._prototype_cache is None


def test_trainable_state_dict_round_trip(tiny_backbones):
    torch.manual_seed(1)
    trained = tiny_model(tiny_backbones, "gpt2").eval()
    torch.manual_seed(2)
    fresh = tiny_model(tiny_backbones, "gpt2").eval()
    state = trained.trainable_state_dict()
    assert state and not any(k.startswith("backbone.") for k in state)
    counts = trained.parameter_counts()
    assert counts["trainable"] == sum(v.numel() for v in state.values())
    assert counts["frozen"] == sum(p.numel() for p in trained.backbone.parameters())
    fresh.load_trainable_state_dict(state)
    x = windows(3)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), trained(x))
    with pytest.raises(LLMTimeError, match="checkpoint does not fit"):
        fresh.load_trainable_state_dict({k: v for k, v in state.items() if k != "head.linear.bias"})
    with pytest.raises(LLMTimeError, match="checkpoint does not fit"):
        fresh.load_trainable_state_dict({**state, "head.linear.bias": torch.zeros(99)})


def test_random_weights_are_flagged():
    with pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        model = TimeLLM(ModelConfig(llm_model="bert-tiny", llm_weights="random", **TINY), DATA, SCALER, "")
    assert model.weights_source == "random"
    assert model(windows(2)).shape == (2, DATA.pred_len)


def test_prompt_switches(tiny_backbones):
    x = windows(2)
    no_prompt = tiny_model(tiny_backbones, use_prompt=False).eval()
    assert no_prompt.prompt is None and no_prompt(x).shape == (2, DATA.pred_len)
    no_domain = tiny_model(tiny_backbones, prompt_domain=False)
    with_domain = tiny_model(tiny_backbones)
    text = render(no_domain.prompt.pieces, no_domain.prompt.statistics(x), 0)
    assert text.startswith("Forecast next 30 minutes from past 120 minutes; mg/dL min ")
    assert render(with_domain.prompt.pieces, with_domain.prompt.statistics(x), 0).startswith(
        "Simulated adults with type 1 diabetes; CGM every 5 minutes. Forecast next")


def _reference_stats(values: list[float], top_k: int) -> tuple[int, int, int, bool, list[int]]:
    """Plain-Python statistics of one mg/dL window: the definition the vectorised version must match."""
    length = len(values)
    mean = sum(values) / length
    z = [v - mean for v in values]
    autocorr = {lag: sum(z[t] * z[(t + lag) % length] for t in range(length)) for lag in range(1, length // 2 + 1)}
    lags = sorted(autocorr, key=lambda lag: -autocorr[lag])[:top_k]
    median = sorted(values)[(length - 1) // 2]
    return round(min(values)), round(max(values)), round(median), values[-1] > values[0], lags


def test_prompt_statistics_and_tokens_match_a_plain_loop(tiny_backbones, wordpiece_tokenizer):
    model = tiny_model(tiny_backbones)
    x = torch.cat([windows(6, seed=3), torch.full((1, 24, 1), 9.0)])  # last: 590 mg/dL, grows the number table
    stats = model.prompt.statistics(x)
    ids, lengths = model.prompt(x)
    for i in range(x.shape[0]):
        mg = [float(v) for v in x[i, :, 0] * SCALER.std[0] + SCALER.mean[0]]
        lo, hi, median, upward, lags = _reference_stats(mg, TINY["top_k"])
        assert (lo, hi, median, upward) == (stats.minimum[i], stats.maximum[i], stats.median[i], stats.upward[i])
        if len(set(mg)) > 1:  # a flat window has all-zero autocorrelation: any lag order is right
            assert stats.lags[i].tolist() == lags
        expected = wordpiece_tokenizer(render(model.prompt.pieces, stats, i))["input_ids"]
        assert ids[i, : lengths[i]].tolist() == expected
        assert not ids[i, lengths[i] :].any()


def test_unusable_inputs_are_user_errors(tiny_backbones):
    model = tiny_model(tiny_backbones)
    x = windows(2)
    x[1, 3, 0] = float("nan")
    with pytest.raises(LLMTimeError, match="NaN"):
        model(x)
    with pytest.raises(LLMTimeError, match="not glucose scaled"):
        model(windows(2) * 1e5)


def test_top_k_0_states_no_lags_and_tokenises_as_the_text(tiny_backbones, wordpiece_tokenizer):
    """--top_k 0: the prompt drops its lags (they read 1 2 3 4 5 in most CGM windows), 6 or more tokens fewer."""
    model, with_lags = tiny_model(tiny_backbones, top_k=0), tiny_model(tiny_backbones, top_k=5)
    x = windows(4, seed=1)
    stats = model.prompt.statistics(x)
    ids, lengths = model.prompt(x)
    for i in range(len(x)):
        text = render(model.prompt.pieces, stats, i)
        assert "lags" not in text and ids[i, : lengths[i]].tolist() == wordpiece_tokenizer(text)["input_ids"]
    assert (with_lags.prompt(x)[1] - lengths >= 6).all()  # " lags" (a word piece or two) and five numbers
    assert model(x).shape == (4, 6)


def test_impossible_top_k_is_a_user_error(tiny_backbones):
    with pytest.raises(LLMTimeError, match="top_k 13"):
        tiny_model(tiny_backbones, top_k=13)


def test_prompt_longer_than_the_backbone_is_a_user_error(tiny_backbones):
    cfg = ModelConfig(llm_model="GPT2", llm_path=str(tiny_backbones["gpt2"]), **TINY)
    model = TimeLLM(cfg, DATA, SCALER, "glucose " * 300)
    with pytest.raises(LLMTimeError, match="shorten the dataset description"):
        model(windows(1))


def test_width_mismatches_are_user_errors(tiny_backbones):
    with pytest.raises(LLMTimeError, match="--llm_dim 768 does not match ALBERT's input-embedding width 16"):
        tiny_model(tiny_backbones, "albert", llm_dim=768)
    with pytest.raises(LLMTimeError, match="--d_ff 64 exceeds BERT's hidden width 32"):
        tiny_model(tiny_backbones, "bert", d_ff=64)
    with pytest.raises(LLMTimeError, match="multiple of --n_heads 2"):
        tiny_model(tiny_backbones, "bert", d_ff=15)


def test_patch_count():
    for seq_len, patch_len, stride in [(72, 12, 6), (24, 8, 4), (25, 8, 4), (10, 12, 6), (72, 16, 8)]:
        n = n_patches(seq_len, patch_len, stride)
        assert n == (seq_len - patch_len) // stride + 2
        assert PatchEmbedding(4, patch_len, stride, 0.0)(torch.randn(2, seq_len, 1)).shape == (2, n, 4)
    assert n_patches(72, 12, 6) == 12
    with pytest.raises(LLMTimeError, match="do not fit"):
        n_patches(4, 12, 6)


def test_revin_round_trip():
    x = torch.randn(3, 24, 2) * 40 + 120
    norm = RevIN()
    xn, stats = norm.normalize(x)
    torch.testing.assert_close(xn.mean(1), torch.zeros(3, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(xn.std(1, unbiased=False), torch.ones(3, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(norm.denormalize(xn, stats), x)


def test_model_registry(tiny_backbones):
    cfg = ModelConfig(model="timellm", llm_model="bert", llm_path=str(tiny_backbones["bert"]), **TINY)
    assert isinstance(build_model(cfg, DATA, SCALER, DESCRIPTION), TimeLLM)
    with pytest.raises(LLMTimeError, match="unknown --model 'Prophet'; choose one of: TimeLLM"):
        build_model(dataclasses.replace(cfg, model="Prophet"), DATA, SCALER, DESCRIPTION)


def _sine_windows(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sine waves of random phase, period and level: [n, 24, 1] inputs and their [n, 6] continuations."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(30, dtype=torch.float32)
    phase = torch.rand(n, 1, generator=g) * 6.28
    period = 12 + 12 * torch.rand(n, 1, generator=g)
    level = torch.randn(n, 1, generator=g)
    series = level + torch.sin(2 * 3.1416 * t / period + phase)
    return series[:, :24, None], series[:, 24:]


@pytest.mark.slow
def test_time_llm_learns_beyond_the_window_mean(tiny_backbones):
    """Briefly trained, forecasts follow each input and beat the window-mean forecast (the constant a model whose
    reprogrammed tokens ignore the input converges to)."""
    torch.manual_seed(0)
    model = tiny_model(tiny_backbones, dropout=0.0)
    x, y = _sine_windows(256, seed=0)
    x_val, y_val = _sine_windows(128, seed=1)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=3e-3)
    model.train()
    for step in range(120):
        i = torch.randint(0, 256, (32,), generator=torch.Generator().manual_seed(step))
        loss = ((model(x[i]) - y[i]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model(x_val)
    mse = float(((pred - y_val) ** 2).mean())
    window_mean = float(((x_val.mean(dim=1) - y_val) ** 2).mean())
    assert mse < 0.5 * window_mean
    residual = pred - x_val.mean(dim=1)  # the part of the forecast beyond the window mean
    assert float(residual.std(dim=0).mean()) > 0.3 * float((y_val - x_val.mean(dim=1)).std(dim=0).mean())


def test_reprogrammed_tokens_depend_on_the_input(minilm):
    """With the real MiniLM vocabulary at initialisation, reprogrammed patch tokens differ between windows by a
    sizeable share of their scale (the reference scaling gave ~2e-4: every window looked the same)."""
    x = windows(32)
    with torch.no_grad():
        glucose, _ = minilm.revin.normalize(x)
        tokens = minilm.reprogramming.attend(minilm.patch_embedding(glucose), *minilm.prototype_keys_values())
    assert float(tokens.std(dim=0).mean() / tokens.std()) > 0.3


def test_head_dropout_acts_on_features_never_on_the_forecast():
    """With the features all zero, a training-mode forecast is exactly the bias: dropout before the projection has
    nothing to drop, while dropout after it (the reference head) would zero or rescale the forecast itself."""
    from layers.heads import FlattenHead

    head = FlattenHead(8, 4, dropout=0.5).train()
    torch.nn.init.constant_(head.linear.bias, 3.0)
    torch.manual_seed(0)
    out = head(torch.zeros(64, 2, 4))
    torch.testing.assert_close(out, torch.full((64, 4), 3.0))
