"""Output head: every patch's features, flattened, mapped linearly to the forecast horizon."""

from __future__ import annotations

from torch import Tensor, nn


class FlattenHead(nn.Module):
    """[B, N, F] -> [B, pred_len].

    Dropout acts on the flattened features, before the linear projection. The published Time-LLM head applies it
    after the projection, i.e. to the forecast itself: under MSE that teaches the head to overshoot by 1/(1-p) so
    that the dropped-out training forecast is right on average, and evaluation forecasts (no dropout) then shrink
    ~10% (p = 0.1) toward the window mean. A forecast is never dropped out here.
    """

    def __init__(self, n_features: int, pred_len: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(n_features, pred_len)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.dropout(x.flatten(start_dim=1)))
