"""Time-LLM (Jin et al., ICLR 2024) for glucose: CGM patches reprogrammed into a frozen language model.

Pipeline per window: RevIN -> patches -> conv token embedding -> cross-attention onto text prototypes (projected to
the backbone's input-embedding width) -> [prompt tokens][patch tokens] through the frozen backbone -> the patch
positions' last hidden states (first d_ff features) -> flatten head -> RevIN inverse.

Meals, insulin and basal (``--features MS``) reach the model two ways, switched separately: as language
(``event_text``: the prompt states the window's meals and boluses, the basal rate, insulin and carbs on board, see
``data_provider/events.py``) and as numbers (``event_channels``: the basal, bolus and carbs channels are cut into
the same patches as glucose and embedded into the same token, one reprogrammed stream per window). The published
model is channel-independent and has no path for exogenous inputs. Glucose alone is RevIN-normalised; the other
channels arrive standardised by the training scaler (and the filled-input marker as 0/1), so an event's size keeps
its meaning across windows.

Batch invariance: prompts differ in token length, and left-padding them to the batch maximum would move every
window's patches to other positions (so a forecast would depend on its batch-mates). Each window's sequence is
therefore laid out as [its prompt][its patches][padding] with an attention mask over the padding. Real tokens
then sit at positions 0..len-1 exactly as if the window ran alone, for absolute, learned and rotary positions
alike, and padding embeddings are zero so MobileBERT's trigram input (which looks one token ahead) sees the same
zeros past the last patch as an unpadded sequence does.

Speed, with outputs unchanged (each checked against the plain computation in tests/test_fast_path.py):

* Outside training the prototypes and their reprogramming keys/values (a 1000 x vocab x width product and two
  1000-row projections) are computed once and reused until a tensor they depend on changes; at batch 1 these
  would otherwise cost more than a small backbone.
* Decoder backbones (GPT-2, OPT, LLaMA) attend causally, so the prompt's constant prefix (description and task,
  up to the first per-window number) never sees what follows it: its per-layer keys/values and hidden states are
  computed once and every batch runs only the rest of its sequence against them (``cache_prompt_prefix``).
  Encoders attend both ways, so their prefix changes with each window and is not cached.
* Only the patch positions' last hidden states are read, so a BERT-architecture backbone computes its last layer
  at those positions only (``read_patches_only``, ``models/patch_readout.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import DynamicCache

from data_provider.channels import EVENT_INPUTS
from data_provider.data_factory import Scaler, channel_names
from configs import DataConfig, ModelConfig
from layers.embed import PatchEmbedding, n_patches
from layers.heads import FlattenHead
from layers.normalization import RevIN
from layers.reprogramming import Reprogramming
from models import patch_readout
from models.backbones import FAMILIES, load_backbone, resolve_backbone
from models.base import Forecaster
from models.prompt import PromptBuilder
from utils.errors import LLMTimeError

BACKBONE_PREFIX = "backbone."


class TimeLLM(Forecaster):
    """Forecast [B, pred_len] scaled glucose from [B, seq_len, C] scaled inputs (channel 0 = glucose)."""

    uses_llm = True
    has_hidden_states = True

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler, description: str) -> None:
        super().__init__()
        m = model_cfg
        # Checks that need no backbone come first, so a bad flag fails before a large model is read from disk.
        self.n_patches = n_patches(data_cfg.seq_len, m.patch_len, m.stride)
        if m.d_ff < 1 or m.d_ff % m.n_heads:
            raise LLMTimeError(f"--d_ff {m.d_ff} must be a positive multiple of --n_heads {m.n_heads}")
        self.backbone_row = resolve_backbone(m.llm_model)
        fam = FAMILIES[self.backbone_row.family]
        backbone, tokenizer, self.weights_source = load_backbone(
            self.backbone_row, m.llm_path, m.llm_weights, m.llm_layers
        )
        embeddings = backbone.get_input_embeddings()
        embed_dim, hidden_dim = embeddings.embedding_dim, fam.hidden_width(backbone.config)
        if m.llm_dim is not None and m.llm_dim != embed_dim:
            raise LLMTimeError(
                f"--llm_dim {m.llm_dim} does not match {self.backbone_row.name}'s input-embedding width {embed_dim}; "
                "leave --llm_dim unset"
            )
        if m.d_ff > hidden_dim:
            raise LLMTimeError(f"--d_ff {m.d_ff} exceeds {self.backbone_row.name}'s hidden width {hidden_dim}")
        channels = channel_names(data_cfg)
        # Channels the patch embedding reads: all but the pump and meal logs when event channels are switched off.
        skip = () if m.event_channels else EVENT_INPUTS
        self.channel_index = [i for i, name in enumerate(channels) if name not in skip]

        self.seq_len, self.pred_len, self.d_ff = data_cfg.seq_len, data_cfg.pred_len, m.d_ff
        self.backbone = backbone
        self.forward_kwargs = dict(fam.forward_kwargs)
        self.max_positions = int(getattr(backbone.config, fam.positions_key))
        self.revin = RevIN()
        self.patch_embedding = PatchEmbedding(m.d_model, m.patch_len, m.stride, m.dropout, len(self.channel_index))
        self.mapping = nn.Linear(embeddings.num_embeddings, m.num_tokens)
        embed_rms = float(embeddings.weight.detach().float().pow(2).mean(dim=1).sqrt().mean())
        self.reprogramming = Reprogramming(m.d_model, m.n_heads, m.d_ff // m.n_heads, embed_dim, m.dropout, embed_rms)
        self.head = FlattenHead(self.n_patches * m.d_ff, data_cfg.pred_len, m.dropout)
        self.prompt = (
            PromptBuilder(tokenizer, description if m.prompt_domain else None, data_cfg.seq_len,
                          data_cfg.pred_len, m.top_k, scaler.glucose, events=data_cfg.covariates and m.event_text,
                          channels=channels, scaler_mean=scaler.mean, scaler_std=scaler.std,
                          event_words=m.event_words)
            if m.use_prompt else None
        )
        self._prototype_cache: tuple[tuple, dict[str, object]] | None = None
        self.cache_prototypes = True  # public switch: the benchmark measures recomputing them (bench/levers.py)
        # Public switch (the benchmark measures both ways; export turns it off to keep the graph a single pass).
        self.cache_prompt_prefix = fam.causal and self.prompt is not None
        self._prefix_cache: tuple[tuple, _PrefixStates] | None = None
        # Public switch: the last layer only at the patch positions (models/patch_readout.py), where the backbone
        # allows it, a prompt precedes the patches, and no subclass (an ablation) replaces the backbone's encoding.
        self.read_patches_only = (patch_readout.supports(backbone) and self.prompt is not None
                                  and type(self).encode is TimeLLM.encode)

    # --- parameters and checkpoints -------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> "TimeLLM":
        """Switch the trainable parts; the frozen backbone stays in eval mode (no dropout) whatever the mode."""
        super().train(mode)
        self.backbone.eval()
        if mode:
            self._prototype_cache = None
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """What an optimizer should update (everything outside the frozen backbone)."""
        return (p for p in self.parameters() if p.requires_grad)

    def parameter_counts(self) -> dict[str, int]:
        """{'trainable': n, 'frozen': n} parameter counts."""
        counts = {"trainable": 0, "frozen": 0}
        for p in self.parameters():
            counts["trainable" if p.requires_grad else "frozen"] += p.numel()
        return counts

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The state a checkpoint needs: everything but the frozen backbone (which is reloaded from its source)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(BACKBONE_PREFIX)}

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Put back a ``trainable_state_dict``; a state of another shape is a user error naming what differs."""
        expected = set(self.trainable_state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise LLMTimeError(
                f"checkpoint does not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]}); "
                "rebuild the model from the run's config.json"
            )
        try:
            self.load_state_dict(state, strict=False)
        except RuntimeError as err:
            raise LLMTimeError(
                f"checkpoint does not fit this model ({str(err).splitlines()[-1].strip()}); "
                "rebuild the model from the run's config.json"
            ) from err

    # --- forward ----------------------------------------------------------------------------------------------------

    def forward(self, x: Tensor, return_hidden: bool = False,
                prompt: tuple[Tensor, Tensor] | None = None) -> Union[Tensor, tuple[Tensor, list[Tensor]]]:
        """[B, seq_len, C] -> [B, pred_len]; with return_hidden also the patch positions' hidden states per layer
        (callers ask ``forward_hidden``, the contract's name for it).

        The hidden list has the embedding output first, then one [B, n_patches, hidden_width] tensor per layer.
        ``prompt`` takes the (ids, lengths) that ``self.prompt(x)`` would build (ids may carry extra zero columns):
        exported graphs (bench/export.py) get them as inputs because the prompt is assembled outside the graph.
        """
        if x.dim() != 3 or x.shape[1] != self.seq_len:
            raise ValueError(f"expected [B, {self.seq_len}, C] inputs, got {list(x.shape)}")
        glucose, stats = self.revin.normalize(x[..., :1])
        patches = self.patch_embedding(torch.cat([glucose, x[..., self.channel_index[1:]]], dim=-1))
        tokens = self.reprogramming.attend(patches, *self.prototype_keys_values())
        inputs, mask, positions = self._layout(x, tokens, prompt)
        if self.read_patches_only and not return_hidden:
            features = patch_readout.encode_at(self.backbone, inputs, mask, positions)[..., : self.d_ff]
        else:
            last, hidden = self.encode(inputs, mask, return_hidden)
            features = _take(last, positions)[..., : self.d_ff]
        pred = self.revin.denormalize(self.head(features).unsqueeze(-1), stats).squeeze(-1)
        if not return_hidden:
            return pred
        return pred, [_take(h, positions) for h in hidden]

    def encode(self, inputs: Tensor, mask: Tensor | None,
               return_hidden: bool) -> tuple[Tensor, Union[tuple[Tensor, ...], list[Tensor], None]]:
        """The backbone over [B, T, embed_dim] tokens: (last hidden states, every layer's states or None).

        The only place the language model runs, so the ablations (models/ablations.py) swap it out by overriding
        this method while the rest of the pipeline stays identical.
        """
        if self.cache_prompt_prefix:
            return self._encode_after_prefix(inputs, mask, return_hidden)
        out = self.backbone(inputs_embeds=inputs, attention_mask=mask, output_hidden_states=return_hidden,
                            **self.forward_kwargs)
        return out.last_hidden_state, (out.hidden_states if return_hidden else None)

    def _encode_after_prefix(self, inputs: Tensor, mask: Tensor | None,
                             return_hidden: bool) -> tuple[Tensor, Union[list[Tensor], None]]:
        """``encode`` for causal backbones: the constant prompt prefix comes from cache, the rest of each sequence
        runs against its keys/values. The prefix states are concatenated back, so callers see every position."""
        c = self.prompt.constant_length
        prefix = self._prefix_states(inputs[:1, :c])
        batch = inputs.shape[0]
        cache = DynamicCache([(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in prefix.kv])
        # The layout's mask already spans prefix + rest (the prefix is all real tokens); positions continue at c.
        out = self.backbone(inputs_embeds=inputs[:, c:], attention_mask=mask, past_key_values=cache,
                            output_hidden_states=return_hidden, **{**self.forward_kwargs, "use_cache": True})
        last = torch.cat([prefix.last.expand(batch, -1, -1), out.last_hidden_state], dim=1)
        if not return_hidden:
            return last, None
        return last, [torch.cat([p.expand(batch, -1, -1), h], dim=1) for p, h in zip(prefix.hidden, out.hidden_states)]

    def _prefix_states(self, prefix: Tensor) -> "_PrefixStates":
        """The backbone's states for the [1, c, width] constant prompt prefix, computed once per backbone weights,
        precision and device (the prefix tokens themselves never change)."""
        device = prefix.device.type
        autocast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        key = (autocast, prefix.dtype, prefix.device, prefix.shape[1],
               *((p.data_ptr(), p._version) for p in self.backbone.parameters()))
        if self._prefix_cache is None or self._prefix_cache[0] != key:
            with torch.no_grad():
                out = self.backbone(inputs_embeds=prefix, output_hidden_states=True,
                                    **{**self.forward_kwargs, "use_cache": True})
            kv = tuple((layer.keys, layer.values) for layer in out.past_key_values.layers)
            self._prefix_cache = (key, _PrefixStates(kv, out.last_hidden_state, tuple(out.hidden_states)))
        return self._prefix_cache[1]

    def prototypes(self) -> Tensor:
        """[num_tokens, embed_dim] text prototypes: a learned linear mix of the frozen vocabulary embeddings."""
        return self._cached("prototypes", self._compute_prototypes)

    def prototype_keys_values(self) -> tuple[Tensor, Tensor]:
        """The reprogramming's keys and values of the prototypes ([num_tokens, heads, d_keys] each)."""
        return self._cached("keys_values", lambda: self._prototype_sources().reprogramming.project(self.prototypes()))

    def _prototype_sources(self) -> "_PrototypeSources":
        """The modules the prototypes and their keys/values are computed from. Both computations reach their
        weights only through this, and the cache is keyed on every parameter and buffer of these modules, so no
        tensor they read (one added later included) can change without the cache noticing."""
        return _PrototypeSources(self.backbone.get_input_embeddings(), self.mapping, self.reprogramming)

    def _cached(self, name: str, compute):
        """``compute()``, reused outside training until a tensor it depends on changes.

        The prototypes cost a (num_tokens x vocab x embed_dim) product, so outside training they (and their keys
        and values) are computed once and reused until any tensor of ``_prototype_sources`` changes (in place,
        as an optimizer step or load_state_dict does, or replaced, as .to() does) or autocast's precision does.
        Where gradients could flow into them, they are always recomputed so autograd sees them.
        """
        tensors = self._prototype_sources().tensors()
        if not self.cache_prototypes or self.training or (
            torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
        ):
            self._prototype_cache = None
            return compute()
        device = self.mapping.weight.device.type
        autocast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        key = (autocast, *((id(t), t._version, t.data_ptr(), t.dtype, t.device) for t in tensors))
        if self._prototype_cache is None or self._prototype_cache[0] != key:
            self._prototype_cache = (key, {})
        values = self._prototype_cache[1]
        if name not in values:
            with torch.no_grad():
                values[name] = compute()
        return values[name]

    def _compute_prototypes(self) -> Tensor:
        sources = self._prototype_sources()
        vocab, mapping = sources.vocab.weight, sources.mapping  # vocab: [V, E]
        return F.linear(vocab.t(), mapping.weight, mapping.bias).t()

    def _layout(self, x: Tensor, tokens: Tensor,
                prompt: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
        """Per window [prompt][patches][zero padding]: (inputs_embeds, attention mask or None, patch positions)."""
        batch, n, width = tokens.shape
        steps = torch.arange(n, device=tokens.device)
        if self.prompt is None:
            return tokens, None, steps.expand(batch, n)
        ids, lengths = self.prompt(x) if prompt is None else prompt
        with torch.no_grad():
            embedded = self.backbone.get_input_embeddings()(ids).to(tokens.dtype)
        p_max = ids.shape[1]
        total = p_max + n
        if total > self.max_positions:
            raise LLMTimeError(
                f"prompt plus patches need {total} positions but {self.backbone_row.name} has {self.max_positions}; "
                "shorten the dataset description, pass --prompt_domain 0 or --no_prompt"
            )
        source = torch.cat([embedded, tokens, tokens.new_zeros(batch, 1, width)], dim=1)  # last row: padding
        t = torch.arange(total, device=tokens.device)[None]
        start = lengths[:, None]
        index = torch.where(t < start, t, torch.where(t < start + n, p_max + t - start, p_max + n))
        inputs = source.gather(1, index.unsqueeze(-1).expand(batch, total, width))
        # A mask only where some window is shorter than the widest prompt slot (a given prompt may be wider still).
        mask = (t < start + n).long() if bool((lengths != p_max).any()) else None
        return inputs, mask, start + steps


class _PrototypeSources(NamedTuple):
    """What the prototypes are computed from: the frozen word embeddings, the learned vocabulary-to-prototype
    mapping, and the reprogramming layer whose key/value projections read them."""

    vocab: nn.Embedding
    mapping: nn.Linear
    reprogramming: Reprogramming

    def tensors(self) -> list[Tensor]:
        """Every parameter and buffer of the three modules: what the prototype cache is keyed on."""
        return [t for module in self for t in (*module.parameters(), *module.buffers())]


@dataclass(frozen=True)
class _PrefixStates:
    """A causal backbone's states for the constant prompt prefix ([1, ...] each): per-layer (keys, values), the
    last hidden state and every layer's hidden states."""

    kv: tuple[tuple[Tensor, Tensor], ...]
    last: Tensor
    hidden: tuple[Tensor, ...]


def _take(hidden: Tensor, positions: Tensor) -> Tensor:
    """hidden [B, T, W] at per-window positions [B, N] -> [B, N, W]."""
    return hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
