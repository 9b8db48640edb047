"""Typed run configuration: one dataclass tree built from the CLI and passed (or its parts) everywhere downstream.

Nothing below ``run_main.py`` reads argparse; distillation and the comparison runners build the same objects, so a
run folder's ``config.json`` fully describes how to rebuild its model and data. Each field a user sets from a command
line declares its help, choices, other spellings and bounds once, in its metadata (``flag``); ``configs/flags.py``
turns those into every entry point's flags and checks. A field that never changes what a run computes (where outputs
go, what a run is called, how fast it goes) says so there too (``OUTSIDE_IDENTITY``), so no run identity counts it
(``configs/identity.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from configs.flags import flag, internal
from configs.identity import OUTSIDE_IDENTITY

# Seeds are NumPy's range: utils.seed folds a larger one modulo 2**32 for NumPy (two seeds, one NumPy stream), and
# torch refuses one past 2**64 after the data have loaded; a negative seed is a typo.
SEED_RANGE = dict(minimum=0, maximum=2**32 - 1, why="NumPy's seed range")
NO_CAP = "0 on the command line = no cap"
# The wordings of Time-LLM's event text (data_provider/events.py writes them)
EVENT_WORDS = ("full", "terse")


@dataclass
class DataConfig:
    """What data, which patients, and how windows are cut."""

    data: str = field(default="simulated", metadata=flag(
        "'simulated' (the bundled cohort) or 'ohio' / 'ohiot1dm' (OhioT1DM XML files, with --root_path)",
        aliases=("dataset",)))
    root_path: Optional[str] = field(default=None, metadata=flag(
        "folder of <id>-ws-{training,testing}.xml[.gz] files (default: the bundled cohort)"))
    patients: Optional[list[str]] = field(default=None, metadata=flag(
        "comma-separated training patient ids (default: all found)", none="all"))
    test_patients: Optional[list[str]] = field(default=None, metadata=flag(
        "comma-separated test patient ids (default: the training ones)", none="all"))
    seq_len: int = field(default=72, metadata=flag("input window in 5-min points (72 = 6 h)", minimum=2))
    label_len: int = field(default=0, metadata=flag(
        "Time-LLM's decoder start length, accepted for its scripts; no model here has a decoder (other values: "
        "ignored, warned)", minimum=0))
    pred_len: int = field(default=12, metadata=flag(
        "forecast horizon in 5-min points (12 = 1 h; scored at 30 and 60 min)", minimum=6,
        why="every run is scored at the 30-minute horizon, 6 points ahead"))
    max_gap_fill_min: int = field(default=30, metadata=flag(
        "with --input_fill linear: training/validation input gaps up to this many minutes are filled", minimum=0))
    val_fraction: float = field(default=0.2, metadata=flag(
        "chronological tail of each patient's training file used for validation", above=0, below=1))
    max_train_windows: Optional[int] = field(default=None, metadata=flag(
        "training windows per epoch (0 = all of them every epoch); see --train_draw", none="0",
        minimum=1, why=NO_CAP))
    train_draw: str = field(default="fresh", metadata=flag(
        "with --max_train_windows: fresh = each epoch draws its windows anew from all training windows (seeded, "
        "stratified by patient); fixed = one evenly spaced subset, the same every epoch (runs made before fresh "
        "draws existed)", choices=("fresh", "fixed")))
    max_val_windows: Optional[int] = field(default=None, metadata=flag(
        "cap on validation windows (0 = no cap); the test split is never capped", none="0", minimum=1,
        why=NO_CAP))
    percent: int = field(default=100, metadata=flag(
        "Time-LLM's few-shot knob: keep the first PERCENT% of each patient's training windows", minimum=1,
        maximum=100))
    covariates: bool = field(default=False, metadata=flag(
        "add basal, bolus and carbs channels to the inputs (what --features MS says)"))
    input_fill: str = field(default="carry", metadata=flag(
        "training/validation input gaps: carry = carried forward over any length, as BGLP test inputs are; "
        "linear = interpolated up to --max_gap_fill_min, longer gaps break windows", choices=("carry", "linear")))
    filled_channel: bool = field(default=True, metadata=flag(
        "1 = an input channel marks readings that were filled (carried forward) rather than read"))
    missing: str = field(default="none", metadata=flag(
        "input scenario: remove input points at random or in periodic blocks (with --missing_rate)",
        choices=("none", "random", "periodic")))
    missing_rate: float = field(default=0.0, metadata=flag(
        "share of input points removed (random) or the blocks' duty cycle (periodic)", minimum=0, below=1))
    noise_std: float = field(default=0.0, metadata=flag("Gaussian sensor noise added to the inputs, mg/dL",
                                                        minimum=0))
    # no bounds of its own: --seed, the one flag that sets it, is held to SEED_RANGE, and an error names --seed
    scenario_seed: int = field(default=0, metadata=flag(
        "seed of the input scenarios (missing points, noise); run_main.py sets it to --seed"))
    basal_logged: bool = field(default=True, metadata=flag(
        "with --features MS: a 0/1 channel marks steps with a basal rate on record and the prompt says 'basal not "
        "logged' where there is none (0: an unlogged basal reads 0 U/h, like a suspended pump)"))
    horizon_events: bool = field(default=False, metadata=flag(
        "privileged view, for a distillation teacher only: the basal, bolus and carbs logged within the forecast "
        "horizon (known afterwards from the log, never at forecast time) become input channels and prompt text; "
        "glucose stays history-only"))
    csv_columns: Optional[list[str]] = field(default=None, metadata=flag(
        "--data csv: the export's column names as FIELD=NAME pairs, e.g. timestamp=dateString,glucose=sgv (fields: "
        "patient timestamp glucose carbs bolus basal; default: the field names)"))
    glucose_units: str = field(default="auto", metadata=flag(
        "--data csv: glucose units of the files; auto decides per file (median below 35 = mmol/L)",
        choices=("auto", "mgdl", "mmol")))
    test_start: Optional[str] = field(default=None, metadata=flag(
        "--data csv, one file or one patient's rows per patient: readings from this date/time on (e.g. 2024-05-01) "
        "are the test part"))
    test_days: Optional[int] = field(default=None, metadata=flag(
        "--data csv, one file or one patient's rows per patient: the last N days of each patient are the test part",
        minimum=1))


@dataclass
class ModelConfig:
    """Which forecaster and its hyper-parameters (Time-LLM names kept)."""

    model: str = field(default="TimeLLM", metadata=flag("forecaster (a name of models.MODELS)"))
    llm_model: str = field(default="MiniLM", metadata=flag(
        "backbone row of models/backbones.py, by short name, alias or Hugging Face id"))
    llm_path: Optional[str] = field(default=None, metadata=flag(
        "local folder with the backbone's config, weights and tokenizer"))
    llm_weights: str = field(default="pretrained", metadata=flag(
        "pretrained: the row's weights (--llm_path, local cache or package); random: randomly initialised from the "
        "row's config, said in every output", choices=("pretrained", "random")))
    llm_layers: Optional[int] = field(default=None, metadata=flag(
        "use the first N backbone layers (default: all; fewer cuts the backbone)", minimum=1))
    llm_dim: Optional[int] = field(default=None, metadata=flag(
        "must equal the row's input-embedding width if given (default: that width)", minimum=1))
    patch_len: int = field(default=12, metadata=flag("points per patch", minimum=1))
    stride: int = field(default=6, metadata=flag("points between patch starts", minimum=1))
    d_model: int = field(default=32, metadata=flag("patch embedding width", minimum=1))
    d_ff: int = field(default=128, metadata=flag("backbone output features kept for the head", minimum=1))
    n_heads: int = field(default=8, metadata=flag("reprogramming attention heads", minimum=1))
    dropout: float = field(default=0.1, metadata=flag("dropout of the trained layers", minimum=0, below=1))
    num_tokens: int = field(default=1000, metadata=flag("text prototypes", minimum=1))
    top_k: int = field(default=5, metadata=flag("autocorrelation lags stated in the prompt", minimum=0))
    prompt_domain: bool = field(default=True, metadata=flag(
        "1 = state the dataset description (dataset/prompt_bank) in the prompt"))
    use_prompt: bool = field(default=True, metadata=flag("0 = drop the prompt prefix (ablation)"))
    event_text: bool = field(default=True, metadata=flag(
        "with --features MS: Time-LLM's prompt states meals, boluses, basal, insulin and carbs on board"))
    event_words: str = field(default="full", metadata=flag(
        "wording of the event text: full = as a diabetes log says it ('meal 40 g 20 min ago; ...; insulin on board "
        "3.9 U; carbs on board 36 g'); terse = the same facts in about half the prompt tokens ('meal 40 20 min; ...; "
        "insulin 3.9; carbs 36')", choices=EVENT_WORDS))
    event_channels: bool = field(default=True, metadata=flag(
        "with --features MS: basal, bolus and carbs enter Time-LLM's patch embedding as channels"))
    e_layers: int = field(default=2, metadata=flag("PatchTST encoder layers", minimum=1))
    moving_avg: int = field(default=25, metadata=flag("DLinear trend kernel, points", minimum=1))
    base: str = field(default="none", metadata=flag(
        "ridge: a gradient-trained model forecasts the correction to a ridge regression on every input channel, "
        "fitted in closed form on the training windows; the correction starts at zero, so training starts from "
        "ridge's forecast (models/residual.py)", choices=("none", "ridge")))


@dataclass
class TrainConfig:
    """Optimisation and the engine (accelerate, DeepSpeed, precision)."""

    batch_size: int = field(default=32, metadata=flag("training windows per optimiser step and process", minimum=1))
    eval_batch_size: int = field(default=64, metadata=OUTSIDE_IDENTITY | flag(
        "windows per validation/test pass (on 2 CPU cores 64 beats 256 by ~20% for MiniLM)", minimum=1))
    learning_rate: float = field(default=1e-3, metadata=flag(
        "AdamW learning rate, the schedule's peak", aliases=("lr",), above=0))
    train_epochs: int = field(default=10, metadata=flag("epoch budget", minimum=1))
    patience: int = field(default=3, metadata=flag(
        "early stop after this many epochs without a better validation loss", minimum=1))
    lradj: str = field(default="COS", metadata=flag(
        "learning-rate schedule: type1 halves each epoch; type2 (Time-LLM's table of rates) and type3 (x0.9 per "
        "epoch after 3) are Time-LLM's; COS cosine to 0 per step; TST OneCycle; constant; plateau: constant, halved "
        "after every epoch whose validation loss is no new best (early stopping still ends the run)",
        choices=("type1", "type2", "type3", "COS", "TST", "constant", "plateau")))
    pct_start: float = field(default=0.2, metadata=flag(
        "share of the TST (OneCycle) schedule spent warming up", above=0, below=1))
    warmup_steps: int = field(default=0, metadata=flag(
        "linear learning-rate warm-up over this many optimiser steps before the schedule (not with TST)", minimum=0))
    weight_decay: float = field(default=0.0, metadata=flag("AdamW weight decay", minimum=0))
    mixed_precision: str = field(default="no", metadata=flag(
        "autocast precision", choices=("no", "bf16", "fp16")))
    use_deepspeed: bool = field(default=False, metadata=flag("DeepSpeed ZeRO-2 through accelerate"))
    deepspeed_config: Optional[str] = field(default=None, metadata=flag(
        "DeepSpeed JSON (default configs/ds_config_zero2.json)"))
    num_workers: int = field(default=0, metadata=OUTSIDE_IDENTITY | flag(
        "DataLoader worker processes for training batches", minimum=0))
    seed: int = field(default=2021, metadata=flag(
        "seed of every random source (initialisation, shuffling, input scenarios)", **SEED_RANGE))
    max_steps_per_epoch: Optional[int] = field(default=None, metadata=flag(
        "end each epoch after this many steps (default: every training batch)", minimum=1))
    resume: bool = field(default=False, metadata=OUTSIDE_IDENTITY | flag(
        "continue an interrupted run from the run folder's last completed epoch"))
    report_to: str = field(default="none", metadata=OUTSIDE_IDENTITY | flag(
        "tensorboard: training loss and learning rate per step, validation loss per epoch, written under "
        "<run folder>/tensorboard while the run goes", choices=("none", "tensorboard")))
    recipe: str = field(default="", metadata=internal(
        "which recipe (exp/recipes.py) the training settings started from: recorded, never set by a flag"))


@dataclass
class RunConfig:
    """A whole run: identity, data, model, training and where outputs go."""

    task_name: str = field(default="long_term_forecast", metadata=flag(
        "Time-LLM's task; both forecast --pred_len steps here (short_term_forecast has no effect)",
        choices=("long_term_forecast", "short_term_forecast")))
    is_training: int = field(default=1, metadata=OUTSIDE_IDENTITY | flag(
        "1 = train and test; 0 = evaluate --checkpoint", choices=(0, 1)))
    model_id: str = field(default="glucose", metadata=OUTSIDE_IDENTITY | flag("first part of the run folder name"))
    des: str = field(default="Exp", metadata=OUTSIDE_IDENTITY | flag("free tag added to the run folder name"))
    checkpoints: str = field(default="./checkpoints/", metadata=OUTSIDE_IDENTITY | flag("folder for run outputs"))
    results_csv: Optional[str] = field(default=None, metadata=OUTSIDE_IDENTITY | flag(
        "CSV to append one row to (default <checkpoints>/results.csv)"))
    checkpoint: Optional[str] = field(default=None, metadata=OUTSIDE_IDENTITY | flag(
        "saved run folder (or its checkpoint.pt) to evaluate or forecast with"))
    input: Optional[str] = field(default=None, metadata=OUTSIDE_IDENTITY | flag(
        "CGM file to forecast: OhioT1DM .xml[.gz], or a CSV with columns timestamp,glucose"))
    output: Optional[str] = field(default=None, metadata=OUTSIDE_IDENTITY | flag(
        "forecast CSV to write (default <input name>_forecast.csv here); the PNG goes beside it"))
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_comment: Optional[str] = field(default=None, metadata=OUTSIDE_IDENTITY | flag(
        "Time-LLM's tag: appended to the run folder name as -COMMENT"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        top = {k: v for k, v in d.items() if k not in ("data", "model", "train")}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{k: v for k, v in top.items() if k in known},
            data=_sub(DataConfig, {**DATA_BEFORE_FIELDS, **d.get("data", {})}),
            model=_sub(ModelConfig, d.get("model", {})),
            train=_sub(TrainConfig, d.get("train", {})),
        )


# What a config saved before a data field existed meant by its absence (the default says what new runs do): runs
# made before the basal-logged channel have no such channel, and their models' input width must stay theirs; runs
# made before per-epoch draws trained a capped run on one fixed subset, so they are never taken for fresh-draw runs.
DATA_BEFORE_FIELDS = {"basal_logged": False, "train_draw": "fixed"}


def _sub(cls, d: dict[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in known})
