"""Reprogramming: patch tokens attend over text prototypes and come out as word-embedding-like vectors.

The frozen language model only understands its own input-embedding space. Time-LLM bridges the gap with
multi-head cross-attention whose queries are the patch tokens and whose keys/values are a small set of "text
prototypes" (learned linear combinations of the vocabulary's embeddings), so every reprogrammed patch is a mix of
word-like vectors. Per-head width is ``d_ff // n_heads`` here (the published code uses ``d_ff`` per head, i.e.
n_heads times wider): with the default d_ff 128 and 8 heads the attention then stays 128 wide in total, which
keeps the prototype key/value projections cheap without changing the mechanism.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Reprogramming(nn.Module):
    """[B, N, d_model] patches x [S, d_llm] prototypes -> [B, N, d_llm] backbone input tokens."""

    def __init__(self, d_model: int, n_heads: int, d_keys: int, d_llm: int, dropout: float) -> None:
        super().__init__()
        inner = d_keys * n_heads
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, inner)
        self.key = nn.Linear(d_llm, inner)
        self.value = nn.Linear(d_llm, inner)
        self.out = nn.Linear(inner, d_llm)
        self.dropout = nn.Dropout(dropout)

    def forward(self, patches: Tensor, prototypes: Tensor) -> Tensor:
        return self.attend(patches, *self.project(prototypes))

    def project(self, prototypes: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values [S, H, E] of the prototypes: shared by the whole batch, so a caller that holds the
        prototypes fixed (inference) can compute them once instead of once per batch."""
        s = prototypes.shape[0]
        return self.key(prototypes).view(s, self.n_heads, -1), self.value(prototypes).view(s, self.n_heads, -1)

    def attend(self, patches: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """[B, N, d_model] patches over prototype keys/values from ``project`` -> [B, N, d_llm]."""
        b, n, _ = patches.shape
        q = self.query(patches).view(b, n, self.n_heads, -1)  # [B, N, H, E]
        scores = torch.einsum("bnhe,she->bhns", q, k) / math.sqrt(q.shape[-1])
        weights = self.dropout(torch.softmax(scores, dim=-1))
        mixed = torch.einsum("bhns,she->bnhe", weights, v).reshape(b, n, -1)
        return self.out(mixed)
