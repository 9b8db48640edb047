"""Reprogramming: patch tokens attend over text prototypes and come out as word-embedding-like vectors.

The frozen language model only understands its own input-embedding space. Time-LLM bridges the gap with
multi-head cross-attention whose queries are the patch tokens and whose keys/values are a small set of "text
prototypes" (learned linear combinations of the vocabulary's embeddings), so every reprogrammed patch is a mix of
word-like vectors. Per-head width is ``d_ff // n_heads`` here (the published code uses ``d_ff`` per head, i.e.
n_heads times wider): with the default d_ff 128 and 8 heads the attention then stays 128 wide in total, which
keeps the prototype key/value projections cheap without changing the mechanism.

Scale (a deviation from the reference code, which feeds raw prototypes to default-initialised projections): word
embeddings are small (MiniLM: ~0.056 per dimension) and the prototypes, random mixes of 30,522 of them, smaller
still, so the reference keys come out ~0.04 wide against ~0.7 for the queries, every attention score is ~0.02,
the softmax over 1,000 prototypes is uniform (entropy = log 1000), and every patch receives the same average
value vector plus the output bias: measured on the bundled cohort, the reprogrammed tokens varied across windows
by ~1e-5 against a token scale of ~0.05, so the backbone saw the same input whatever the glucose did and the
forecast could only be the window mean. Three scale-only changes make the tokens depend on the input from the
first step, without adding a path around the attention:

* prototypes are RMS-normalised before the key/value projections (the projections' default initialisation
  assumes unit-scale inputs);
* queries and keys are RMS-normalised per head and their dot product scaled by a learned temperature (initial 2),
  the QK-normalisation of Dehghani et al. (2023), so scores start at a spread where the softmax is selective
  (measured: ~220 effective prototypes of 1,000 instead of all of them);
* each output token is RMS-normalised and scaled to the vocabulary's mean embedding RMS, with the output bias at
  zero, so reprogrammed patches sit at exactly the scale of the prompt's word embeddings.

Measured with real MiniLM weights at initialisation: token spread across windows / token scale went from ~2e-4
to ~0.85.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

INITIAL_TEMPERATURE = 2.0


def rms_normalize(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Scale the last axis to unit root-mean-square (RMSNorm without a gain)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


class Reprogramming(nn.Module):
    """[B, N, d_model] patches x [S, d_llm] prototypes -> [B, N, d_llm] backbone input tokens.

    ``embed_rms`` is the mean root-mean-square of the backbone's word embeddings: the scale output tokens are put at.
    """

    def __init__(self, d_model: int, n_heads: int, d_keys: int, d_llm: int, dropout: float,
                 embed_rms: float) -> None:
        super().__init__()
        inner = d_keys * n_heads
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, inner)
        self.key = nn.Linear(d_llm, inner)
        self.value = nn.Linear(d_llm, inner)
        self.out = nn.Linear(inner, d_llm)
        nn.init.zeros_(self.out.bias)
        # shape (1,), not a 0-d scalar: DeepSpeed ZeRO flattens parameters and rejects 0-d ones
        self.log_temperature = nn.Parameter(torch.full((1,), math.log(INITIAL_TEMPERATURE)))
        self.embed_rms = float(embed_rms)  # fixed by the frozen vocabulary, so not a parameter or a saved buffer
        self.dropout = nn.Dropout(dropout)

    def forward(self, patches: Tensor, prototypes: Tensor) -> Tensor:
        return self.attend(patches, *self.project(prototypes))

    def project(self, prototypes: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values [S, H, E] of the prototypes: shared by the whole batch, so a caller that holds the
        prototypes fixed (inference) can compute them once instead of once per batch."""
        s = prototypes.shape[0]
        unit = rms_normalize(prototypes)
        keys = rms_normalize(self.key(unit).view(s, self.n_heads, -1))
        return keys, self.value(unit).view(s, self.n_heads, -1)

    def attend(self, patches: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """[B, N, d_model] patches over prototype keys/values from ``project`` -> [B, N, d_llm]."""
        b, n, _ = patches.shape
        q = rms_normalize(self.query(patches).view(b, n, self.n_heads, -1))  # [B, N, H, E]
        scale = self.log_temperature.exp() / math.sqrt(q.shape[-1])
        scores = torch.einsum("bnhe,she->bhns", q, k) * scale
        weights = self.dropout(torch.softmax(scores, dim=-1))
        mixed = torch.einsum("bhns,she->bnhe", weights, v).reshape(b, n, -1)
        return rms_normalize(self.out(mixed)) * self.embed_rms
