"""Input channels of a run's windows, for the baselines that size their layers from them and flatten them.

Channel 0 is glucose; ``--features MS`` (``DataConfig.covariates``) appends the insulin and carbohydrate channels
listed in ``data_provider.data_factory.COVARIATES``. Sizing from that tuple keeps the models in step with the data.
"""

from __future__ import annotations

from torch import Tensor

from data_provider.data_factory import COVARIATES
from exp.config import DataConfig


def input_channels(data_cfg: DataConfig) -> int:
    """Channels per time step of the scaled inputs: 1 (glucose) or 1 + the covariates."""
    return 1 + len(COVARIATES) if data_cfg.covariates else 1


def channel_major(x: Tensor) -> Tensor:
    """[B, L, C] -> [B, C * L] with each channel's window one contiguous block (glucose first)."""
    return x.transpose(1, 2).reshape(x.shape[0], -1)
