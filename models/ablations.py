"""Time-LLM with its language model removed or replaced (Tan et al., NeurIPS 2024, "Are Language Models Actually
Useful for Time Series Forecasting?").

Each ablation keeps the whole Time-LLM pipeline (RevIN, patching, reprogramming onto text prototypes, the d_ff
feature slice, the flatten head, the same training) and changes only ``encode``, the one place the backbone runs:

* ``TimeLLM_woLLM`` ("w/o LLM"): the reprogrammed patch tokens go straight to the head. The prompt prefix is
  dropped because no layer after the reprogramming could read it; the forecast would be identical with it.
* ``TimeLLM_LLM2Attn``: one trainable multi-head self-attention layer (``n_heads`` heads, the backbone's
  input-embedding width) replaces the backbone. The prompt prefix is kept (unless ``--no_prompt``), as Tan et al.
  kept the rest of the pipeline, so patch tokens can attend to it as they would inside the language model.
* ``TimeLLM_LLM2Trsf``: one trainable Transformer encoder block (post-norm, feed-forward 4x wide) replaces it,
  prompt kept likewise.

Scale: the reprogrammed tokens (and prompt embeddings) sit at the backbone's word-embedding scale (MiniLM: RMS
~0.06), which a language model's first LayerNorm expects but a bare head or a fresh attention layer does not. The
ablations therefore divide their input sequence by that scale (``Reprogramming.embed_rms``), so what replaces the
backbone starts from unit-scale tokens instead of spending its training growing its weights twentyfold.

The replacement layers have no position encoding: each patch keeps its identity through its fixed slot in the
flatten head, and the prompt's token order carries little for a single layer. Padding positions are masked.

What is loaded and counted: the prototypes (and the prompt) still need the backbone's frozen word embeddings and
tokenizer, so the backbone is loaded cut to one layer, its embedding matrix kept, and the rest discarded. The
model's parameters, and so the trainable/total counts in results, are exactly what the forward pass uses: the
Time-LLM trainable parts, the replacement layer, and the frozen embedding matrix. ``--llm_layers`` is ignored;
``--llm_weights random`` gives random word embeddings (the random-backbone Time-LLM is ``TimeLLM`` with that flag).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Optional

from torch import Tensor, nn

from data_provider.data_factory import Scaler
from configs import DataConfig, ModelConfig
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError

Encoded = tuple[Tensor, Optional[list[Tensor]]]  # (last hidden states, [inputs, layer output] when asked)


class WordEmbeddings(nn.Module):
    """Stands in for the backbone (same attribute name, so checkpoints still leave it out): embeddings only."""

    def __init__(self, embeddings: nn.Embedding) -> None:
        super().__init__()
        self.embeddings = embeddings

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings


class _Ablation(TimeLLM):
    """Time-LLM whose backbone is reduced to its frozen word embeddings; subclasses define ``replace_backbone``."""

    backbone_layers_used = 0  # reported in place of the backbone depth: no language-model layer runs

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        if model_cfg.llm_layers is not None:
            warnings.warn(f"{type(self).__name__} runs no backbone layer; --llm_layers is ignored", stacklevel=2)
        # One layer is the least load_backbone can build; it is discarded below, only the embeddings stay.
        super().__init__(dataclasses.replace(model_cfg, llm_layers=1), data_cfg, scaler, description)
        embeddings = self.backbone.get_input_embeddings()
        self.width = embeddings.embedding_dim
        if model_cfg.d_ff > self.width:
            raise LLMTimeError(
                f"--d_ff {model_cfg.d_ff} exceeds {self.backbone_row.name}'s input-embedding width {self.width}, "
                f"the width {type(self).__name__} forecasts from; pass --d_ff <= {self.width}"
            )
        if self.width % model_cfg.n_heads:
            raise LLMTimeError(
                f"{self.backbone_row.name}'s input-embedding width {self.width} is not a multiple of --n_heads "
                f"{model_cfg.n_heads}; pick --n_heads dividing it"
            )
        self.backbone = WordEmbeddings(embeddings)

    def encode(self, inputs: Tensor, mask: Optional[Tensor], return_hidden: bool) -> Encoded:
        return self.replace_backbone(inputs / self.reprogramming.embed_rms, mask, return_hidden)

    def replace_backbone(self, inputs: Tensor, mask: Optional[Tensor], return_hidden: bool) -> Encoded:
        """What runs in the backbone's place, on unit-scale inputs."""
        raise NotImplementedError

    @staticmethod
    def _padding(mask: Optional[Tensor]) -> Optional[Tensor]:
        """The layout's attention mask (1 = real token) as PyTorch's key-padding mask (True = ignore)."""
        return None if mask is None else mask == 0


class TimeLLM_woLLM(_Ablation):
    """Reprogrammed patches straight to the head: no backbone, no replacement, no prompt."""

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        super().__init__(model_cfg, data_cfg, scaler, description)
        self.prompt = None

    def replace_backbone(self, inputs: Tensor, mask: Optional[Tensor], return_hidden: bool) -> Encoded:
        return inputs, ([inputs] if return_hidden else None)


class TimeLLM_LLM2Attn(_Ablation):
    """One trainable multi-head self-attention layer in place of the backbone."""

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        super().__init__(model_cfg, data_cfg, scaler, description)
        self.attention = nn.MultiheadAttention(self.width, model_cfg.n_heads, dropout=model_cfg.dropout,
                                               batch_first=True)

    def replace_backbone(self, inputs: Tensor, mask: Optional[Tensor], return_hidden: bool) -> Encoded:
        out, _ = self.attention(inputs, inputs, inputs, key_padding_mask=self._padding(mask), need_weights=False)
        return out, ([inputs, out] if return_hidden else None)


class TimeLLM_LLM2Trsf(_Ablation):
    """One trainable Transformer encoder block in place of the backbone."""

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        super().__init__(model_cfg, data_cfg, scaler, description)
        self.block = nn.TransformerEncoderLayer(self.width, model_cfg.n_heads, 4 * self.width, model_cfg.dropout,
                                                batch_first=True)

    def replace_backbone(self, inputs: Tensor, mask: Optional[Tensor], return_hidden: bool) -> Encoded:
        out = self.block(inputs, src_key_padding_mask=self._padding(mask))
        return out, ([inputs, out] if return_hidden else None)
