"""The fast paths of Time-LLM give the same forecasts as the plain computation they replace.

Covered here: the decoder prompt-prefix key/value cache (outputs, hidden states and gradients), the cached
prototype keys/values, and the terse prompt still stating every statistic. The vectorised prompt against a plain
loop is in tests/test_time_llm.py.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from data_provider.data_factory import Scaler
from configs import DataConfig, ModelConfig
from models.backbones import FAMILIES
from models.prompt import render
from models.time_llm import TimeLLM
from transformers.models.bert.modeling_bert import BertSelfAttention

DATA = DataConfig(seq_len=24, pred_len=6, filled_channel=False)  # windows below carry glucose alone
SCALER = Scaler(np.array([140.0]), np.array([50.0]))  # glucose (mg/dL): all these models read of it
DESCRIPTION = "Virtual patients with type 1 diabetes: CGM mg/dL every 5 minutes."
TINY = dict(patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2, num_tokens=16, top_k=3, dropout=0.0)
ROW = {"gpt2": "GPT2", "opt": "OPT-125M", "llama": "LLAMA", "bert": "BERT"}
CAUSAL = sorted(name for name, family in FAMILIES.items() if family.causal)


def tiny(folders, family: str, seed: int = 0) -> TimeLLM:
    torch.manual_seed(seed)
    cfg = ModelConfig(llm_model=ROW[family], llm_path=str(folders[family]), **TINY)
    return TimeLLM(cfg, DATA, SCALER, DESCRIPTION)


def windows(batch: int, seed: int = 0, spread: bool = True) -> torch.Tensor:
    """Scaled glucose windows; with spread, levels from ~0 to ~400 mg/dL so prompts differ in token length."""
    g = torch.Generator().manual_seed(seed)
    walk = torch.randn(batch, DATA.seq_len, 1, generator=g).cumsum(1) * 0.2
    level = torch.linspace(-2.5, 4.5, batch).view(batch, 1, 1) if spread else torch.zeros(batch, 1, 1)
    return walk + level


@pytest.mark.parametrize("family", CAUSAL)
@pytest.mark.parametrize("spread", [True, False], ids=["ragged-prompts", "equal-prompts"])
def test_prefix_cache_equals_the_full_pass(tiny_backbones, family, spread):
    model = tiny(tiny_backbones, family).eval()
    assert model.cache_prompt_prefix and model.prompt.constant_length > 5
    x = windows(5, seed=1, spread=spread)
    _, lengths = model.prompt(x)
    assert (len(set(lengths.tolist())) > 1) == spread  # both the masked and the unmasked layout are exercised
    with torch.no_grad():
        cached, cached_hidden = model.forward_hidden(x)
        cached_again = model(x)  # second call: prefix states come from the cache
        model.cache_prompt_prefix = False
        full, full_hidden = model.forward_hidden(x)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(cached_again, full, atol=1e-5, rtol=0)
    assert len(cached_hidden) == len(full_hidden)
    for a, b in zip(cached_hidden, full_hidden):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", CAUSAL)
def test_prefix_cache_gives_the_same_gradients(tiny_backbones, family):
    x, grads = windows(4, seed=2), []
    for cached in (True, False):
        model = tiny(tiny_backbones, family).train()
        model.cache_prompt_prefix = cached
        model(x).square().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4, msg=name)


def test_prefix_cache_follows_backbone_weights(tiny_backbones):
    model = tiny(tiny_backbones, "gpt2").eval()
    x = windows(3, seed=3)
    with torch.no_grad():
        model(x)
        model.backbone.h[0].attn.c_attn.weight.mul_(1.5)  # e.g. a different backbone loaded in place
        changed = model(x)
        model.cache_prompt_prefix = False
        full = model(x)
    torch.testing.assert_close(changed, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("spread", [True, False], ids=["ragged-prompts", "equal-prompts"])
def test_last_layer_at_the_patches_equals_the_full_pass(tiny_backbones, attention, spread):
    """BERT computes its last layer at the patch positions only: same forecasts and same gradients as the whole
    sequence's last layer, with and without a padding mask, for either attention implementation."""
    model = tiny(tiny_backbones, "bert")
    model.backbone.config._attn_implementation = attention
    model.backbone.attn_implementation = attention
    for layer in model.backbone.encoder.layer:  # the attention class is chosen at build time: swap it
        if attention == "eager":
            state = layer.attention.self.state_dict()
            layer.attention.self = BertSelfAttention(model.backbone.config).eval()
            layer.attention.self.load_state_dict(state)
        assert (type(layer.attention.self) is BertSelfAttention) == (attention == "eager")
    assert model.read_patches_only
    x = windows(5, seed=5, spread=spread)
    outputs, grads = [], []
    for fast in (True, False):
        model.read_patches_only = fast
        model.zero_grad()
        model.train()
        out = model(x)
        out.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
        with torch.no_grad():
            outputs.append(model.eval()(x))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=0)
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4, msg=name)


def test_only_bert_encoders_with_a_prompt_read_the_patches_only(tiny_backbones):
    from models.ablations import TimeLLM_woLLM  # replaces the backbone's encoding: the whole pass is its own

    assert tiny(tiny_backbones, "bert").read_patches_only
    assert not tiny(tiny_backbones, "gpt2").read_patches_only
    cfg = ModelConfig(llm_model="BERT", llm_path=str(tiny_backbones["bert"]), **TINY)
    assert not TimeLLM(dataclasses.replace(cfg, use_prompt=False), DATA, SCALER, DESCRIPTION).read_patches_only
    assert not TimeLLM_woLLM(cfg, DATA, SCALER, DESCRIPTION).read_patches_only


def test_encoders_do_not_cache_the_prefix(tiny_backbones):
    assert CAUSAL == ["gpt2", "llama", "opt"]  # the decoders; every other family attends both ways
    assert not tiny(tiny_backbones, "bert").cache_prompt_prefix  # bidirectional: the prefix sees every window


def test_cached_prototype_keys_values_equal_recomputation(tiny_backbones):
    model = tiny(tiny_backbones, "bert").eval()
    x = windows(3, seed=4)
    with torch.no_grad():
        k, v = model.prototype_keys_values()
        assert model.prototype_keys_values()[0] is k  # reused
        k_ref, v_ref = model.reprogramming.project(model._compute_prototypes())
        torch.testing.assert_close(k, k_ref)
        torch.testing.assert_close(v, v_ref)
        cached = model(x)
        model.reprogramming.value.weight.mul_(2.0)  # a tensor only the keys/values depend on
        assert model.prototype_keys_values()[1] is not v
        plain = model.reprogramming(model.patch_embedding(model.revin.normalize(x)[0]),
                                    model._compute_prototypes())
        fast = model.reprogramming.attend(model.patch_embedding(model.revin.normalize(x)[0]),
                                          *model.prototype_keys_values())
    torch.testing.assert_close(fast, plain)
    assert cached.shape == (3, DATA.pred_len)
    model.train()
    assert model.prototype_keys_values()[0].requires_grad  # training: recomputed so autograd reaches the weights


def test_prototype_cache_is_reused_until_a_tensor_it_reads_changes(tiny_backbones, monkeypatch):
    """Eval forwards share one prototype computation until a parameter of the modules it reads changes in place,
    including a parameter added to one of them after the fact: the cache then holds what recomputation gives."""
    model = tiny(tiny_backbones, "bert").eval()
    x = windows(3, seed=7)
    computed = []
    compute = model._compute_prototypes
    monkeypatch.setattr(model, "_compute_prototypes", lambda: computed.append(1) or compute())

    def recomputed() -> torch.Tensor:
        model.cache_prototypes = False
        try:
            return model(x)
        finally:
            model.cache_prototypes = True

    with torch.no_grad():
        first = model(x)
        assert torch.equal(model(x), first) and len(computed) == 1  # second forward: reused
        model.mapping.weight.add_(torch.randn(model.mapping.weight.shape, generator=torch.Generator().manual_seed(0)))
        after_mapping = model(x)
        assert torch.equal(model(x), after_mapping) and len(computed) == 2
        assert not torch.allclose(after_mapping, first)
        torch.testing.assert_close(after_mapping, recomputed())
        # A parameter the key/value projection starts reading (here an offset added to the prototypes): no list
        # names it, yet changing it in place must reach the forecast.
        reprogramming = model.reprogramming
        reprogramming.offset = torch.nn.Parameter(torch.zeros(reprogramming.key.in_features))
        project = reprogramming.project
        monkeypatch.setattr(reprogramming, "project", lambda p: project(p + reprogramming.offset))
        before = model(x)
        computed.clear()
        reprogramming.offset.add_(0.05)
        after_offset = model(x)
        assert torch.equal(model(x), after_offset) and len(computed) == 1
        assert not torch.allclose(after_offset, before)
        torch.testing.assert_close(after_offset, recomputed())


def test_terse_prompt_states_every_statistic(tiny_backbones, wordpiece_tokenizer):
    from data_provider.data_factory import Scaler, description

    model = tiny(tiny_backbones, "bert")
    x = windows(4, seed=5)
    stats = model.prompt.statistics(x)
    for i in range(4):
        text = render(model.prompt.pieces, stats, i)
        found = re.search(r"Forecast next 30 minutes from past 120 minutes; mg/dL min (-?\d+) max (-?\d+) "
                          r"median (-?\d+) (rising|falling) lags (\d+) (\d+) (\d+)$", text)
        assert found, text
        lo, hi, median, trend, *lags = found.groups()
        assert (int(lo), int(hi), int(median)) == (stats.minimum[i], stats.maximum[i], stats.median[i])
        assert (trend == "rising") == bool(stats.upward[i])
        assert [int(lag) for lag in lags] == stats.lags[i].tolist()
    # The bundled cohort's whole prompt (description + task + statistics) stays short for MiniLM's WordPiece.
    sim = TimeLLM(ModelConfig(llm_model="BERT", llm_path=str(tiny_backbones["bert"]), **{**TINY, "top_k": 5}),
                  DataConfig(filled_channel=False), SCALER, description(DataConfig()))
    _, lengths = sim.prompt(windows(8, seed=6)[:, :1].expand(8, 72, 1).contiguous())
    assert int(lengths.max()) <= 62


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_benchmark_levers_switched_off_give_the_same_forecasts(tiny_backbones, family):
    """The benchmark's straightforward variants (bench/levers.py) measure the same computation done slowly: with
    the per-window tokenised prompt, eager attention, recomputed prototypes or no prefix cache the forecasts equal
    the fast path's; the published long prompt changes the input, so it only has to run and be longer."""
    from bench.levers import LEVERS, Straightforward

    x = windows(6, seed=3)
    with torch.no_grad():
        fast = tiny(tiny_backbones, family).eval()(x)
        for lever in ("vectorised_prompt", "sdpa", "prototype_cache", "prefix_cache"):
            slow = Straightforward(tiny(tiny_backbones, family), [lever], DESCRIPTION).eval()
            torch.testing.assert_close(slow(x), fast, rtol=1e-4, atol=1e-4, msg=lever)
        everything = Straightforward(tiny(tiny_backbones, family), LEVERS, DESCRIPTION).eval()
        assert everything(x).shape == fast.shape
        assert everything.prompt(x)[1].float().mean() > tiny(tiny_backbones, family).prompt(x)[1].float().mean()
        assert everything.model.backbone.training  # eval_backbone off: the backbone's dropout runs
