"""Typed run configuration: one dataclass tree built from the CLI and passed (or its parts) everywhere downstream.

Nothing below ``run_main.py`` reads argparse; distillation and the comparison runners build the same objects, so a
run folder's ``config.json`` fully describes how to rebuild its model and data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class DataConfig:
    """What data, which patients, and how windows are cut."""

    data: str = "simulated"  # 'simulated' (bundled cohort) or 'ohio' (OhioT1DM XML under root_path)
    root_path: Optional[str] = None  # folder of <id>-ws-{training,testing}.xml[.gz]; None = the bundled cohort
    patients: Optional[list[str]] = None  # training patients; None = all found
    test_patients: Optional[list[str]] = None  # None = the training patients
    seq_len: int = 72  # 6 h of 5-min history
    label_len: int = 0  # accepted for Time-LLM CLI compatibility; no model here uses a decoder start token
    pred_len: int = 12  # 1 h ahead; scored at 30 and 60 min
    max_gap_fill_min: int = 30  # training/validation inputs: gaps up to this long are filled linearly
    val_fraction: float = 0.2  # chronological tail of each patient's training part used for validation
    max_train_windows: Optional[int] = None  # cap (evenly spaced subsample) for quick runs
    max_val_windows: Optional[int] = None  # same for validation; the test split is never capped
    percent: int = 100  # Time-LLM's few-shot knob: keep the first percent% of each patient's training windows
    covariates: bool = False  # add basal, bolus and carbs channels to the inputs
    input_fill: str = "carry"  # training/validation input gaps: 'carry' forward as test inputs are, or 'linear'
    filled_channel: bool = True  # add a channel marking inputs that were filled (1) rather than read (0)
    missing: str = "none"  # input scenario: 'none', 'random', 'periodic'
    missing_rate: float = 0.0  # share of input points removed (random) or block duty cycle (periodic)
    noise_std: float = 0.0  # Gaussian sensor noise added to inputs, mg/dL
    scenario_seed: int = 0


@dataclass
class ModelConfig:
    """Which forecaster and its hyper-parameters (Time-LLM names kept)."""

    model: str = "TimeLLM"
    llm_model: str = "MiniLM"  # a row (short name, alias or Hugging Face id) of models/backbones.py
    llm_path: Optional[str] = None  # local folder with config + weights + tokenizer
    llm_weights: str = "pretrained"  # 'pretrained' or 'random' (architecture from the row's config)
    llm_layers: Optional[int] = None  # None = the row's depth; fewer cuts the backbone
    llm_dim: Optional[int] = None  # None = the row's input-embedding width; a different value is an error
    patch_len: int = 12
    stride: int = 6
    d_model: int = 32
    d_ff: int = 128
    n_heads: int = 8
    dropout: float = 0.1
    num_tokens: int = 1000  # text prototypes
    top_k: int = 5  # autocorrelation lags in the prompt
    prompt_domain: bool = True  # use the dataset description from dataset/prompt_bank
    use_prompt: bool = True  # False drops the prompt prefix (ablation)
    event_text: bool = True  # with --features MS: Time-LLM's prompt states meals, boluses, basal, IOB and COB
    event_channels: bool = True  # with --features MS: basal, bolus and carbs enter Time-LLM's patch embedding
    e_layers: int = 2  # encoder layers of the PatchTST baseline
    moving_avg: int = 25  # DLinear's trend kernel (points)


@dataclass
class TrainConfig:
    """Optimisation and the engine (accelerate, DeepSpeed, precision)."""

    batch_size: int = 32
    eval_batch_size: int = 64  # windows per validation/test pass: on 2 CPU cores 64 beats 256 by ~20% (MiniLM)
    learning_rate: float = 1e-3
    train_epochs: int = 10
    patience: int = 3
    lradj: str = "COS"  # 'type1' (halve each epoch), 'type2'/'type3' (Time-LLM's), 'COS', 'TST' (OneCycle), 'constant'
    pct_start: float = 0.2
    warmup_steps: int = 0  # linear learning-rate warm-up (optimiser steps) before the schedule (not with TST)
    weight_decay: float = 0.0
    mixed_precision: str = "no"  # 'no', 'bf16', 'fp16'
    use_deepspeed: bool = False
    deepspeed_config: Optional[str] = None  # default configs/ds_config_zero2.json
    num_workers: int = 0
    seed: int = 2021
    max_steps_per_epoch: Optional[int] = None
    resume: bool = False  # continue from the run folder's last completed epoch
    report_to: str = "none"  # 'tensorboard': losses and learning rate logged under <run folder>/tensorboard
    recipe: str = ""  # which recipe (exp/recipes.py) the training settings started from; flags override it


@dataclass
class RunConfig:
    """A whole run: identity, data, model, training and where outputs go."""

    task_name: str = "long_term_forecast"
    is_training: int = 1
    model_id: str = "glucose"
    des: str = "Exp"
    checkpoints: str = "./checkpoints/"
    results_csv: Optional[str] = None  # default <checkpoints>/results.csv
    checkpoint: Optional[str] = None  # run folder to evaluate / forecast with (is_training 0)
    input: Optional[str] = None  # file to forecast (is_training 0)
    output: Optional[str] = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_comment: Optional[str] = None  # Time-LLM's --model_comment: appended to the run folder name as '-<comment>'

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        top = {k: v for k, v in d.items() if k not in ("data", "model", "train")}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{k: v for k, v in top.items() if k in known},
            data=_sub(DataConfig, d.get("data", {})),
            model=_sub(ModelConfig, d.get("model", {})),
            train=_sub(TrainConfig, d.get("train", {})),
        )


def _sub(cls, d: dict[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in known})
