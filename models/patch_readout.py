"""The frozen encoder's last layer computed only where Time-LLM reads it: at the patch positions.

Time-LLM keeps the backbone's last hidden states at the patch positions and discards the prompt's. In an encoder
every position attends to every other, so all layers but the last must run over the whole sequence; the last one's
queries, attention output and feed-forward block, however, are needed at the patch positions only, while its keys
and values still come from every position. With ~65 prompt tokens and 12 patches that skips most of the last
layer's work (about a sixth of MiniLM's six layers, half of a two-layer cut), for the same numbers: the
computation is the layer's own modules applied to fewer rows (tests/test_fast_path.py checks it against the full
pass). BERT-architecture backbones (BERT, MiniLM, TinyBERT, the BERT-tiny..medium rows) take this path; the others,
and any call that wants every layer's states (distillation), run the backbone whole.
"""

from __future__ import annotations

from torch import Tensor, nn
from transformers import BertModel


def supports(backbone: nn.Module) -> bool:
    """Whether ``encode_at`` can serve this backbone: a bidirectional BERT with absolute positions."""
    config = getattr(backbone, "config", None)
    return (isinstance(backbone, BertModel) and not config.is_decoder
            and getattr(config, "position_embedding_type", "absolute") == "absolute"
            and len(backbone.encoder.layer) > 0)


def encode_at(backbone: BertModel, inputs: Tensor, mask: Tensor | None, positions: Tensor) -> Tensor:
    """The last hidden states at ``positions`` ([B, N]) of [B, T, width] ``inputs_embeds`` with an optional [B, T]
    attention mask: [B, N, width], as ``backbone(...).last_hidden_state`` gathered at those positions."""
    hidden = backbone.embeddings(inputs_embeds=inputs)
    # Additive [B, 1, 1, T] mask: broadcasts over heads and query rows, for the eager and SDPA attention alike.
    extended = None if mask is None else backbone.get_extended_attention_mask(mask, mask.shape).to(hidden.dtype)
    *first, last = backbone.encoder.layer
    for layer in first:
        hidden = layer(hidden, attention_mask=extended)[0]
    queries = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    # The self-attention module with separate key/value states: queries at the patches, keys and values everywhere.
    context = last.attention.self(queries, attention_mask=extended, encoder_hidden_states=hidden)[0]
    attended = last.attention.output(context, queries)
    return last.output(last.intermediate(attended), attended)

