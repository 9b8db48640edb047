"""Output head: every patch's features, flattened, mapped linearly to the forecast horizon."""

from __future__ import annotations

from torch import Tensor, nn


class FlattenHead(nn.Module):
    """[B, N, F] -> [B, pred_len].

    Dropout follows the linear layer, as in the published Time-LLM head, so it perturbs the training forecast
    itself; kept for faithfulness to the reference model.
    """

    def __init__(self, n_features: int, pred_len: int, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, pred_len)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.linear(x.flatten(start_dim=1)))
