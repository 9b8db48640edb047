"""The fast path's levers, switched off one at a time, so the benchmark can measure what each one buys.

A straightforward Time-LLM (the published code's way) differs from ours in seven places. ``Straightforward`` wraps
a ``TimeLLM`` and undoes the chosen ones, leaving the weights and everything else as they are:

- ``short_prompt``: the published sentence-style prompt ("Dataset description: ... Task description: forecast
  the next 12 steps given the previous 72 steps information; Input statistics: min value -1.2345678, ...") with
  full-precision floats of the normalised window and the lags as a Python list, instead of our terse template
  with mg/dL integers (``models/prompt.py``). Implies per-window strings tokenised every batch.
- ``vectorised_prompt``: our terse prompt, but its statistics computed window by window and its text rendered per
  window and tokenised by the tokenizer every batch, instead of batched statistics and cached token pieces (same
  token ids: ``tests/test_time_llm.py`` checks the two agree).
- ``sdpa``: eager attention that materialises and returns every layer's attention maps.
- ``prototype_cache``: the text prototypes (a num_tokens x vocab x width product) recomputed on every call.
- ``eval_backbone``: the frozen backbone left in train mode, so its dropout runs.
- ``prefix_cache``: decoder backbones run the constant prompt prefix in every batch instead of reusing its cached
  keys and values (encoders never cache it).
- ``patch_readout``: BERT-architecture backbones compute their last layer over the whole sequence instead of at the
  patch positions only (``models/patch_readout.py``).

Only the benchmark uses this; training and evaluation always run the fast path.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

from models.base import Forecaster
from models.prompt import render, window_stats
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError

LEVERS = ("short_prompt", "vectorised_prompt", "sdpa", "prototype_cache", "eval_backbone", "prefix_cache",
          "patch_readout")


def parse_levers(text: str) -> frozenset[str]:
    """'a,b' or 'all' -> the set of levers to switch off (a one-line error for unknown names)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return frozenset(LEVERS)
    unknown = [n for n in names if n not in LEVERS]
    if unknown:
        raise LLMTimeError(f"--levers_off: unknown lever(s) {', '.join(unknown)}; choose from {', '.join(LEVERS)}, all")
    return frozenset(names)


class Straightforward(Forecaster):
    """A TimeLLM run with some fast-path levers off (see the module docstring); forward(x) -> [B, pred_len]."""

    def __init__(self, model: TimeLLM, off: Iterable[str], description: str) -> None:
        super().__init__()
        if not isinstance(model, TimeLLM):
            raise LLMTimeError("--levers_off applies to Time-LLM models only")
        self.model, self.off, self.description = model, frozenset(off), description
        if self.off & {"short_prompt", "vectorised_prompt"} and model.prompt is None:
            raise LLMTimeError("the prompt levers need a prompt: drop --use_prompt 0")
        if "sdpa" in self.off:
            model.backbone.set_attn_implementation("eager")
            model.forward_kwargs = {**model.forward_kwargs, "output_attentions": True}
        if "prototype_cache" in self.off:
            model.cache_prototypes = False
        if "prefix_cache" in self.off:
            model.cache_prompt_prefix = False
        if "patch_readout" in self.off or "sdpa" in self.off:  # eager attention maps are read from the full pass
            model.read_patches_only = False
        # what the benchmark reports alongside (prompt() gives the ids actually fed, for the token count)
        self.uses_llm, self.backbone_row, self.weights_source = True, model.backbone_row, model.weights_source
        self.n_patches = model.n_patches

    def trainable_state_dict(self) -> dict[str, Tensor]:
        return self.model.trainable_state_dict()

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        self.model.load_trainable_state_dict(state)

    def prompt(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """(ids, lengths) of the prompt this variant feeds: rendered and tokenised per window when a prompt lever
        is off, else the fast builder's."""
        if "short_prompt" in self.off:
            return self._tokenise(self._published_texts(x), x.device)
        if "vectorised_prompt" in self.off:
            return self._tokenise(self._terse_texts(x), x.device)
        return self.model.prompt(x) if self.model.prompt is not None else None

    def forward(self, x: Tensor) -> Tensor:
        if "eval_backbone" in self.off:
            self.model.backbone.train()
        prompt = self.prompt(x) if self.off & {"short_prompt", "vectorised_prompt"} else None
        return self.model(x, prompt=prompt)

    def _terse_texts(self, x: Tensor) -> list[str]:
        builder = self.model.prompt
        mgdl = x[..., 0].detach().float().cpu() * builder.std + builder.mean
        return [render(builder.pieces, window_stats(mgdl[i : i + 1], builder.top_k), 0) for i in range(len(x))]

    def _published_texts(self, x: Tensor) -> list[str]:
        m = self.model
        normed = x[..., 0].detach().float().cpu()
        normed = (normed - normed.mean(1, keepdim=True)) / (normed.std(1, keepdim=True) + 1e-5)
        texts = []
        for i in range(len(x)):
            w = normed[i]
            spectrum = torch.fft.rfft(w - w.mean())
            corr = torch.fft.irfft(spectrum * torch.conj(spectrum), n=len(w))
            lags = (torch.topk(corr[1 : len(w) // 2 + 1], m.prompt.top_k).indices + 1).tolist()
            texts.append(
                f"<|start_prompt|>Dataset description: {self.description}"
                f"Task description: forecast the next {m.pred_len} steps given the previous {m.seq_len} steps "
                f"information; Input statistics: min value {w.min().item()}, max value {w.max().item()}, median "
                f"value {w.median().item()}, the trend of input is {'upward' if w.diff().sum() > 0 else 'downward'}, "
                f"top {m.prompt.top_k} lags are : {lags}<|<end_prompt>|>"
            )
        return texts

    def _tokenise(self, texts: list[str], device: torch.device) -> tuple[Tensor, Tensor]:
        tokenizer = self.model.prompt.tokenizer
        if tokenizer.pad_token is None:  # GPT-2 / OPT-style tokenizers: pad with EOS (masked out by the lengths)
            tokenizer.pad_token = tokenizer.eos_token
        enc = tokenizer(texts, return_tensors="pt", padding=True, padding_side="right")
        return enc["input_ids"].to(device), enc["attention_mask"].sum(1).to(device)
