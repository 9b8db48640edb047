"""The run configuration schema (``configs/schema.py``): a leaf module every layer may import.

``configs/ds_config_zero2.json`` beside it is the default DeepSpeed ZeRO-2 configuration.
"""

from configs.schema import DataConfig, ModelConfig, RunConfig, TrainConfig

__all__ = ["DataConfig", "ModelConfig", "RunConfig", "TrainConfig"]
