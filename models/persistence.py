"""Persistence: the last observed glucose value, repeated over the whole horizon.

The floor every forecaster must beat. It has no parameters, so the runner skips gradient training and the
"trainable parameters" column reads 0. Working in scaled units keeps the forecast bit-identical to the last input;
the evaluator's mg/dL conversion is the same affine map it applies to every model.
"""

from __future__ import annotations

from torch import Tensor

from data_provider.data_factory import Scaler
from configs import DataConfig, ModelConfig
from models.base import Forecaster


class Persistence(Forecaster):
    """[B, seq_len, C] -> [B, pred_len]: channel 0's last value at every step."""

    gradient_trained = False

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        super().__init__()
        self.pred_len = data_cfg.pred_len

    def forward(self, x: Tensor) -> Tensor:
        return x[:, -1, :1].repeat(1, self.pred_len)
