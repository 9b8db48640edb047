"""Input channels of a run's windows, for the baselines that size their layers from them and flatten them.

Channel 0 is glucose; ``--features MS`` (``DataConfig.covariates``) appends the insulin and carbohydrate channels
and ``filled_channel`` the filled-input marker (``data_provider.data_factory.channel_names``). Sizing from that one
function keeps the models in step with the data.
"""

from __future__ import annotations

from torch import Tensor

from data_provider.data_factory import channel_names
from configs import DataConfig


def input_channels(data_cfg: DataConfig) -> int:
    """Channels per time step of the scaled inputs: glucose, the covariates with MS, the filled marker."""
    return len(channel_names(data_cfg))


def channel_major(x: Tensor) -> Tensor:
    """[B, L, C] -> [B, C * L] with each channel's window one contiguous block (glucose first)."""
    return x.transpose(1, 2).reshape(x.shape[0], -1)
