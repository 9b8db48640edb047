"""A two-layer perceptron over the whole input window: a student with no language model, small enough to deploy.

Per window: RevIN on glucose (as Time-LLM and PatchTST normalise it) -> every channel's window flattened into one
vector, glucose first (the other channels as the training scaler left them, so an event keeps its size across
windows) -> ``Linear(seq_len * C, d_ff)`` -> GELU -> dropout -> ``Linear(d_ff, pred_len)`` -> glucose RevIN inverse.

Why it exists: distilling strong forecasters into small MLPs works for time series (TimeDistill, KDD 2026: up to
18.6% better than the MLP trained alone), and a student without a language model has no backbone to ship: with the
default sizes it is a few tens of thousands of parameters and forecasts a window in microseconds, as ONNX too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from configs import DataConfig, ModelConfig
from data_provider.data_factory import Scaler
from layers.normalization import RevIN
from models.base import Forecaster
from models.inputs import channel_major, input_channels


class MLP(Forecaster):
    """[B, seq_len, C] -> [B, pred_len] scaled glucose; ``--d_ff`` hidden units, ``--dropout`` between the layers."""

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        super().__init__()
        self.revin = RevIN()
        self.layers = nn.Sequential(
            nn.Linear(data_cfg.seq_len * input_channels(data_cfg), model_cfg.d_ff), nn.GELU(),
            nn.Dropout(model_cfg.dropout), nn.Linear(model_cfg.d_ff, data_cfg.pred_len),
        )

    def forward(self, x: Tensor) -> Tensor:
        glucose, stats = self.revin.normalize(x[..., :1])
        out = self.layers(channel_major(torch.cat([glucose, x[..., 1:]], dim=-1)))
        return self.revin.denormalize(out.unsqueeze(-1), stats).squeeze(-1)
