"""DLinear (Zeng et al., AAAI 2023, "Are Transformers Effective for Time Series Forecasting?").

Each input channel is split into a trend (moving average, kernel ``--moving_avg``, edges padded by repeating the
first and last values so the trend has the window's length) and a seasonal remainder; one linear layer maps the
seasonal parts and another the trends to the horizon, and the two forecasts are summed.

With glucose alone (``--features S``) this is DLinear exactly (one shared linear map per component). With
``--features MS`` both layers read every channel's component, so insulin and carbohydrates can move the glucose
forecast; the published model would instead forecast each channel on its own and could not use them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from data_provider.data_factory import Scaler
from configs import DataConfig, ModelConfig
from models.base import Forecaster
from models.inputs import channel_major, input_channels
from utils.errors import LLMTimeError


class MovingAverage(nn.Module):
    """[B, L, C] -> [B, L, C] centred moving average with edge replication."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        if kernel < 1:
            raise LLMTimeError(f"--moving_avg must be >= 1, got {kernel}")
        self.kernel = kernel

    def forward(self, x: Tensor) -> Tensor:
        series = x.transpose(1, 2)  # [B, C, L]
        front, back = (self.kernel - 1) // 2, self.kernel // 2
        padded = F.pad(series, (front, back), mode="replicate") if self.kernel > 1 else series
        return F.avg_pool1d(padded, self.kernel, stride=1).transpose(1, 2)


class DLinear(Forecaster):
    """[B, seq_len, C] -> [B, pred_len] scaled glucose: seasonal and trend linear forecasts summed."""

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        super().__init__()
        n_inputs = data_cfg.seq_len * input_channels(data_cfg)
        self.trend = MovingAverage(model_cfg.moving_avg)
        self.seasonal_linear = nn.Linear(n_inputs, data_cfg.pred_len)
        self.trend_linear = nn.Linear(n_inputs, data_cfg.pred_len)

    def forward(self, x: Tensor) -> Tensor:
        trend = self.trend(x)
        seasonal = x - trend
        return self.seasonal_linear(channel_major(seasonal)) + self.trend_linear(channel_major(trend))
