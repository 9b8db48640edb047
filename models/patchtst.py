"""PatchTST (Nie et al., ICLR 2023): channel-independent patches through a small Transformer encoder.

Per window: RevIN on every channel -> each channel cut into patches exactly as Time-LLM cuts glucose (``patch_len``,
``stride``, the last value repeated ``stride`` times so the newest readings fill a patch of their own) -> linear
patch embedding plus a learned position embedding -> ``e_layers`` pre-norm Transformer encoder layers shared by all
channels -> every channel's patch features flattened into one linear head -> glucose RevIN inverse.

The only difference from the published model is the head with ``--features MS``: it reads all channels' features
so insulin and carbohydrates can move the glucose forecast (with glucose alone it is the published flatten head).
LayerNorm stands in for the paper's BatchNorm, which couples a window's output to its batch-mates.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from data_provider.data_factory import Scaler
from configs import DataConfig, ModelConfig
from models.base import Forecaster
from layers.embed import n_patches, patchify
from layers.heads import FlattenHead
from layers.normalization import RevIN
from models.inputs import input_channels
from utils.errors import LLMTimeError


class PatchTST(Forecaster):
    """[B, seq_len, C] -> [B, pred_len] scaled glucose."""

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        super().__init__()
        m = model_cfg
        self.n_patches = n_patches(data_cfg.seq_len, m.patch_len, m.stride)
        if m.d_model < 1 or m.d_model % m.n_heads:
            raise LLMTimeError(f"--d_model {m.d_model} must be a positive multiple of --n_heads {m.n_heads}")
        if m.e_layers < 1:
            raise LLMTimeError(f"--e_layers must be >= 1, got {m.e_layers}")
        self.channels, self.d_model = input_channels(data_cfg), m.d_model
        self.patch_len, self.stride = m.patch_len, m.stride
        self.revin = RevIN()
        self.embed = nn.Linear(m.patch_len, m.d_model)
        self.position = nn.Parameter(torch.empty(1, self.n_patches, m.d_model).uniform_(-0.02, 0.02))
        self.dropout = nn.Dropout(m.dropout)
        layer = nn.TransformerEncoderLayer(m.d_model, m.n_heads, m.d_ff, m.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, m.e_layers, norm=nn.LayerNorm(m.d_model),
                                             enable_nested_tensor=False)
        self.head = FlattenHead(self.channels * self.n_patches * m.d_model, data_cfg.pred_len, m.dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, channels = x.shape
        z, (mean, std) = self.revin.normalize(x)
        series = z.transpose(1, 2).reshape(batch * channels, length)
        patches = patchify(series, self.patch_len, self.stride)  # [B * C, N, patch_len]
        hidden = self.encoder(self.dropout(self.embed(patches) + self.position))  # [B * C, N, d_model]
        out = self.head(hidden.reshape(batch, channels * self.n_patches * self.d_model))
        return self.revin.denormalize(out.unsqueeze(-1), (mean[..., :1], std[..., :1])).squeeze(-1)
