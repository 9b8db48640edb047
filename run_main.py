"""Time-LLM-compatible command line: train and test a glucose forecaster, or evaluate a saved run.

    python run_main.py                                   # Time-LLM + MiniLM on the bundled simulated cohort
    python run_main.py --llm_model BERT --llm_path DIR --patients 1001
    python run_main.py --is_training 0 --checkpoint checkpoints/RUN   # re-test a saved run
    python run_main.py --is_training 0 --checkpoint checkpoints/RUN --input my_cgm.csv   # forecast a new file

The flags researchers type for Time-LLM keep their names; everything is turned into one ``RunConfig`` here and
nothing downstream reads argparse. User errors print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from exp.recipes import RECIPE_FLAGS, apply_recipe
from utils.errors import LLMTimeError, run_cli

# The default run (no --max_train_windows): real MiniLM weights on the bundled cohort, meals and insulin as text
# and channels, the TimeLLM recipe, and a training budget small enough that it finishes in under 10 minutes on 2 CPU
# cores (bf16 where the CPU has it). Testing is never capped: scoring every one of the cohort's ~34k test windows is
# about 40% of that time. Sized from the sweeps in docs/results/recipes.md.
DEFAULT_MAX_TRAIN_WINDOWS = 2_000
DEFAULT_MAX_VAL_WINDOWS = 1_000
DEFAULT_RUN_EPOCHS = 3  # --train_epochs when neither it nor --max_train_windows is given (otherwise the recipe's)


def _patients(text: Optional[str]) -> Optional[list[str]]:
    if text is None or text.strip().lower() in ("", "all"):
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def _bool(text: str) -> bool:
    if str(text).lower() in ("1", "true", "yes"):
        return True
    if str(text).lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected 0/1, got {text!r}")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as one line with exit status 2 (its usual status), without the usage dump."""

    def error(self, message: str) -> None:  # noqa: D401
        raise LLMTimeError(f"{message} (see python run_main.py --help)")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default once: not where its help already says it, nor for None (unset; the help explains)."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        if "default" in (action.help or "") or action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from models import MODELS
    from models.backbones import backbone_names

    p = _Parser(description="LLM-TIME: Time-LLM glucose forecasting", formatter_class=_HelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--task_name", default="long_term_forecast", choices=["long_term_forecast", "short_term_forecast"],
                   help="Time-LLM's task; both forecast --pred_len steps here (short_term_forecast has no effect)")
    g.add_argument("--is_training", type=int, default=1, choices=[0, 1], help="1 = train and test; 0 = evaluate --checkpoint")
    g.add_argument("--model_id", default="glucose", help="first part of the run folder name")
    g.add_argument("--model", default="TimeLLM", help=f"forecaster: {', '.join(MODELS)}")
    g.add_argument("--des", default="Exp", help="free tag added to the run folder name")
    g.add_argument("--checkpoints", default="./checkpoints/", help="folder for run outputs")
    g.add_argument("--results_csv", default=None, help="CSV to append one row to (default <checkpoints>/results.csv)")
    g.add_argument("--checkpoint", default=None, help="run folder to evaluate (with --is_training 0)")
    g.add_argument("--input", default=None,
                   help="with --is_training 0: forecast this CGM file (Ohio .xml[.gz] or timestamp,glucose .csv)")
    g.add_argument("--output", default=None, help="forecast CSV to write (default <input name>_forecast.csv here)")
    g.add_argument("--units", default=None, choices=["mgdl", "mmol", "auto"],
                   help="glucose units of --input (default auto: all values below 35 = mmol/L)")
    g.add_argument("--seed", type=int, default=2021,
                   help="seed of every random source (initialisation, shuffling, input scenarios)")

    d = p.add_argument_group("data")
    d.add_argument("--data", default="simulated", help="'simulated' (bundled cohort) or 'ohio' (with --root_path)")
    d.add_argument("--root_path", default=None, help="folder with <id>-ws-training.xml[.gz] files")
    d.add_argument("--data_path", default=None,
                   help="one patient's file under --root_path, <id>-ws-training.xml[.gz] (Time-LLM's flag): trains "
                        "and tests on that patient, as --patients ID does")
    d.add_argument("--features", default="MS", choices=["S", "MS", "M"],
                   help="S: glucose in, glucose out; MS: glucose + insulin and carbohydrate covariates in, glucose "
                        "out; M (Time-LLM's all in, all out) runs as MS, with a warning: glucose is the only target here")
    d.add_argument("--patients", default=None, help="comma-separated training patient ids (default: all)")
    d.add_argument("--test_patients", default=None, help="comma-separated test patient ids (default: the training ones)")
    d.add_argument("--seq_len", type=int, default=72, help="input window in 5-min points (72 = 6 h)")
    d.add_argument("--label_len", type=int, default=0,
                   help="Time-LLM's decoder start length; no model here has a decoder (other values: ignored, warned)")
    d.add_argument("--pred_len", type=int, default=12, help="forecast horizon in 5-min points (12 = 1 h)")
    d.add_argument("--input_fill", default="carry", choices=["carry", "linear"],
                   help="training/validation input gaps: carry = carried forward over any length, as BGLP test "
                        "inputs are; linear = interpolated up to --max_gap_fill_min, longer gaps break windows")
    d.add_argument("--max_gap_fill_min", type=int, default=30,
                   help="with --input_fill linear: input gaps up to this many minutes are filled")
    d.add_argument("--filled_channel", type=_bool, default=True,
                   help="1 = an input channel marks readings that were filled (carried forward) rather than read")
    d.add_argument("--val_fraction", type=float, default=0.2,
                   help="chronological tail of each patient's training file used for validation")
    d.add_argument("--percent", type=int, default=100,
                   help="Time-LLM's few-shot knob: keep the first PERCENT%% of each patient's training windows")
    d.add_argument("--max_train_windows", type=int, default=None,
                   help=f"evenly spaced cap on training windows (default run: {DEFAULT_MAX_TRAIN_WINDOWS}; 0 = no cap)")
    d.add_argument("--max_val_windows", type=int, default=None,
                   help=f"cap on validation windows (default run: {DEFAULT_MAX_VAL_WINDOWS}; 0 = no cap); test is never capped")
    d.add_argument("--missing", default="none", choices=["none", "random", "periodic"],
                   help="input scenario: remove input points at random or in periodic blocks (with --missing_rate)")
    d.add_argument("--missing_rate", type=float, default=0.0,
                   help="share of input points removed (random) or the blocks' duty cycle (periodic)")
    d.add_argument("--noise_std", type=float, default=0.0, help="Gaussian input noise, mg/dL")

    m = p.add_argument_group("model")
    m.add_argument("--llm_model", default="MiniLM",
                   help=f"backbone row, by short name or Hugging Face id: {', '.join(backbone_names())}")
    m.add_argument("--llm_path", default=None, help="local folder with the backbone's weights and tokenizer")
    m.add_argument("--llm_weights", default="pretrained", choices=["pretrained", "random"],
                   help="pretrained: the row's weights (--llm_path, local cache or package); random: randomly "
                        "initialised, said in every output")
    m.add_argument("--llm_layers", type=int, default=None, help="use the first N backbone layers (default: all)")
    m.add_argument("--llm_dim", type=int, default=None, help="must equal the row's input-embedding width if given")
    for name, default, text in (
        ("patch_len", 12, "points per patch"), ("stride", 6, "points between patch starts"),
        ("d_model", 32, "patch embedding width"), ("d_ff", 128, "backbone output features kept for the head"),
        ("n_heads", 8, "reprogramming attention heads"), ("num_tokens", 1000, "text prototypes"),
        ("top_k", 5, "autocorrelation lags stated in the prompt"), ("e_layers", 2, "PatchTST encoder layers"),
        ("moving_avg", 25, "DLinear trend kernel, points"),
    ):
        m.add_argument(f"--{name}", type=int, default=default, help=text)
    m.add_argument("--dropout", type=float, default=0.1, help="dropout of the trained layers")
    m.add_argument("--prompt_domain", type=_bool, default=None,
                   help="1 = state the dataset description in the prompt (default: 1; 0 in the default run, where it "
                        "measured no validation gain for ~30%% of the prompt's tokens: docs/results/recipes.md)")
    m.add_argument("--no_prompt", action="store_true", help="drop the prompt prefix (ablation)")
    m.add_argument("--event_text", type=_bool, default=True,
                   help="with --features MS: Time-LLM's prompt states meals, boluses, basal, insulin and carbs on board")
    m.add_argument("--event_channels", type=_bool, default=True,
                   help="with --features MS: basal, bolus and carbs enter Time-LLM's patch embedding as channels")

    t = p.add_argument_group("training")
    t.add_argument("--batch_size", type=int, default=None,
                   help="training windows per step and process (default: the model's recipe, exp/recipes.py)")
    t.add_argument("--eval_batch_size", type=int, default=64,
                   help="windows per validation/test pass (64 is the fastest on a 2-core CPU for MiniLM)")
    t.add_argument("--learning_rate", type=float, default=None,
                   help="AdamW learning rate, the schedule's peak (default: the model's recipe)")
    t.add_argument("--train_epochs", type=int, default=None,
                   help=f"default: the model's recipe; {DEFAULT_RUN_EPOCHS} in the default run (no --max_train_windows)")
    t.add_argument("--patience", type=int, default=None,
                   help="early stop after this many epochs without a better validation loss (default: the recipe)")
    t.add_argument("--lradj", default=None, choices=["type1", "type2", "type3", "COS", "TST", "constant"],
                   help="learning-rate schedule: type1 halves each epoch; type2 (Time-LLM's table of rates) and type3 "
                        "(x0.9 per epoch after 3) are Time-LLM's; COS cosine to 0 per step; TST OneCycle; constant "
                        "(default: the recipe)")
    t.add_argument("--warmup_steps", type=int, default=None,
                   help="linear learning-rate warm-up over this many optimiser steps (default: the recipe)")
    t.add_argument("--pct_start", type=float, default=0.2, help="share of the TST (OneCycle) schedule spent warming up")
    t.add_argument("--weight_decay", type=float, default=0.0, help="AdamW weight decay")
    t.add_argument("--use_amp", action="store_true", help="Time-LLM's AMP flag: bf16 autocast unless --mixed_precision says otherwise")
    t.add_argument("--mixed_precision", default=None, choices=["no", "bf16", "fp16"],
                   help="autocast precision (default: the launcher's, as accelerate launch --mixed_precision bf16 "
                        "sets it; else bf16 with --use_amp; else bf16 where the CPU/GPU computes bf16 natively "
                        "(AMX, or AVX512-BF16 on AMD), else no); the one used is "
                        "recorded in config.json")
    t.add_argument("--use_deepspeed", action="store_true", help="DeepSpeed ZeRO-2 through accelerate")
    t.add_argument("--deepspeed_config", default=None, help="DeepSpeed JSON (default configs/ds_config_zero2.json)")
    t.add_argument("--num_workers", type=int, default=0, help="DataLoader worker processes for training batches")
    t.add_argument("--max_steps_per_epoch", type=int, default=None,
                   help="end each epoch after this many steps (default: every training batch)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run from its last completed epoch")
    t.add_argument("--report_to", default="none", choices=["none", "tensorboard"],
                   help="tensorboard: training loss and learning rate per step, validation loss per epoch, written "
                        "under <run folder>/tensorboard while the run goes")

    c = p.add_argument_group("Time-LLM compatibility",
                             "accepted so Time-LLM's scripts run: --model_comment tags the run folder; the others "
                             "change nothing here, and one warning line names those given")
    c.add_argument("--itr", type=int, default=1, help="Time-LLM's repeat count; one run per command here (vary --seed)")
    c.add_argument("--model_comment", default=None, help="Time-LLM's tag: appended to the run folder name as -COMMENT")
    for name in ("enc_in", "dec_in", "c_out"):
        c.add_argument(f"--{name}", type=int, default=None, help="channel count; glucose is univariate in and out here")
    c.add_argument("--d_layers", type=int, default=None, help="decoder layers; no model here has a decoder")
    c.add_argument("--factor", type=int, default=None, help="attention factor of Time-Series-Library models")
    c.add_argument("--loss", default="MSE", help="training loss; always MSE here, as in Time-LLM's own training loop")
    c.add_argument("--embed", default=None, help="time-feature encoding; no model here reads time features")
    c.add_argument("--freq", default=None, help="time-feature frequency; CGM data are on a 5-min grid here")
    c.add_argument("--target", default=None, help="target column; glucose is the target here")
    c.add_argument("--activation", default=None, help="activation of Time-Series-Library models")
    c.add_argument("--output_attention", action="store_true", help="return encoder attention maps")
    c.add_argument("--align_epochs", type=int, default=None, help="unused by Time-LLM itself too")
    return p


# Integer flags whose zero or negative values have no meaning (None = unset, checked where it is used).
_POSITIVE = ("batch_size", "eval_batch_size", "train_epochs", "patience", "d_model", "d_ff", "n_heads", "num_tokens",
             "seq_len", "pred_len", "patch_len", "stride", "e_layers", "moving_avg", "max_steps_per_epoch")

# Flags of Time-LLM's CLI that no model here reads: accepted so its scripts run, and named in one warning when given.
_IGNORED_WHEN_GIVEN = ("enc_in", "dec_in", "c_out", "d_layers", "factor", "embed", "freq", "target", "activation",
                       "align_epochs")
_DATA_FILE = re.compile(r"(?P<pid>.+?)-ws-(training|testing)\.xml(\.gz)?")


def _ignored(args: argparse.Namespace) -> list[str]:
    """The given Time-LLM flags that change nothing here, as they were typed (with why, where it is not obvious)."""
    out = [f"--{name} {getattr(args, name)}" for name in _IGNORED_WHEN_GIVEN if getattr(args, name) is not None]
    if args.output_attention:
        out.append("--output_attention")
    if args.label_len:
        out.append(f"--label_len {args.label_len}")
    if args.task_name != "long_term_forecast":
        out.append(f"--task_name {args.task_name}")
    if args.loss.upper() != "MSE":
        out.append(f"--loss {args.loss} (training minimises MSE, as Time-LLM's own loop does)")
    if args.itr != 1:
        out.append(f"--itr {args.itr} (one run per command; one --seed gives identical runs: vary --seed)")
    return out


def _data_path_patients(args: argparse.Namespace) -> Optional[list[str]]:
    """--patients, or the one patient that Time-LLM's --data_path names (both only if they agree)."""
    patients = _patients(args.patients)
    if args.data_path is None:
        return patients
    match = _DATA_FILE.fullmatch(Path(args.data_path).name)
    if match is None:
        raise LLMTimeError(f"--data_path {args.data_path}: expected a patient file <id>-ws-training.xml[.gz] under "
                           "--root_path, or pick patients with --patients")
    if patients is not None and patients != [match["pid"]]:
        raise LLMTimeError(f"--data_path {args.data_path} selects patient {match['pid']} but --patients says "
                           f"{args.patients}: give one of them")
    return [match["pid"]]


def _precision(args: argparse.Namespace) -> str:
    """--mixed_precision; else the launcher's (accelerate launch --mixed_precision); else bf16 with --use_amp;
    else, with nothing said anywhere, bf16 where the hardware computes it natively and fp32 elsewhere."""
    if args.mixed_precision is not None:
        return args.mixed_precision
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "").lower()
    if launcher not in ("", "no", "bf16", "fp16"):
        raise LLMTimeError(f"the launcher's mixed precision {launcher} is not supported here: use no, bf16 or fp16")
    if launcher in ("bf16", "fp16"):
        return launcher
    if args.use_amp:
        return "bf16"
    if launcher == "no" or args.use_deepspeed:  # DeepSpeed takes its precision explicitly (its engine casts weights)
        return "no"
    from exp.trainer import native_bf16  # deferred: it loads torch, which --help does not need

    return "bf16" if native_bf16() else "no"


def config_from_args(args: argparse.Namespace) -> RunConfig:
    ignored = _ignored(args)
    if ignored:
        warnings.warn(f"Time-LLM flags with no effect here, ignored: {', '.join(ignored)}", stacklevel=2)
    if args.features == "M":
        warnings.warn("--features M: glucose is the only forecast target here; running as --features MS "
                      "(glucose, insulin and carbohydrates in, glucose out)", stacklevel=2)
        args.features = "MS"
    patients = _data_path_patients(args)
    args.mixed_precision = _precision(args)
    if args.use_amp and args.mixed_precision == "no":
        raise LLMTimeError("--use_amp contradicts --mixed_precision no: pass one of them")
    from data_provider.data_factory import dataset_name  # deferred: it loads torch, which --help does not need

    args.data = dataset_name(args.data)
    if args.root_path is None and args.data != "simulated":
        raise LLMTimeError(f"--data {args.data} needs --root_path pointing at its XML files")
    default_run = args.max_train_windows is None
    if args.train_epochs is None and default_run:
        args.train_epochs = DEFAULT_RUN_EPOCHS
    if args.prompt_domain is None:
        args.prompt_domain = not default_run
    cap = lambda v, default: default if v is None else (None if v == 0 else v)  # noqa: E731
    data = DataConfig(
        data=args.data, root_path=args.root_path, patients=patients,
        test_patients=_patients(args.test_patients), seq_len=args.seq_len, label_len=args.label_len,
        pred_len=args.pred_len, max_gap_fill_min=args.max_gap_fill_min, val_fraction=args.val_fraction,
        max_train_windows=cap(args.max_train_windows, DEFAULT_MAX_TRAIN_WINDOWS),
        max_val_windows=cap(args.max_val_windows, DEFAULT_MAX_VAL_WINDOWS if default_run else None),
        percent=args.percent, covariates=args.features == "MS", input_fill=args.input_fill,
        filled_channel=args.filled_channel, missing=args.missing,
        missing_rate=args.missing_rate, noise_std=args.noise_std, scenario_seed=args.seed,
    )
    model = ModelConfig(
        model=args.model, llm_model=args.llm_model, llm_path=args.llm_path, llm_weights=args.llm_weights,
        llm_layers=args.llm_layers, llm_dim=args.llm_dim, patch_len=args.patch_len, stride=args.stride,
        d_model=args.d_model, d_ff=args.d_ff, n_heads=args.n_heads, dropout=args.dropout, num_tokens=args.num_tokens,
        top_k=args.top_k, prompt_domain=args.prompt_domain, use_prompt=not args.no_prompt,
        event_text=args.event_text, event_channels=args.event_channels,
        e_layers=args.e_layers, moving_avg=args.moving_avg,
    )
    given = {name: getattr(args, name) for name in RECIPE_FLAGS if getattr(args, name) is not None}
    train = TrainConfig(
        eval_batch_size=args.eval_batch_size, pct_start=args.pct_start,
        weight_decay=args.weight_decay, mixed_precision=args.mixed_precision, use_deepspeed=args.use_deepspeed,
        deepspeed_config=args.deepspeed_config, num_workers=args.num_workers, seed=args.seed,
        max_steps_per_epoch=args.max_steps_per_epoch, resume=args.resume, report_to=args.report_to,
    )
    train = apply_recipe(train, model.model, given)
    for name in _POSITIVE:
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise LLMTimeError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.num_workers < 0:
        raise LLMTimeError(f"--num_workers must be >= 0, got {args.num_workers}")
    if not 0.0 <= args.dropout < 1.0:
        raise LLMTimeError(f"--dropout must be in [0, 1), got {args.dropout}")
    if train.warmup_steps < 0:
        raise LLMTimeError(f"--warmup_steps must be >= 0, got {train.warmup_steps}")
    if train.learning_rate <= 0:
        raise LLMTimeError("--learning_rate must be > 0")
    if args.input is None and (args.output is not None or args.units is not None):
        raise LLMTimeError("--output and --units go with --input FILE (forecasting a new CGM file)")
    if args.input is not None and args.is_training:
        raise LLMTimeError("--input forecasts with a saved run: add --is_training 0 --checkpoint RUN_DIR")
    if args.resume and not args.is_training:
        raise LLMTimeError("--resume continues an interrupted training run; drop it with --is_training 0")
    if (args.missing == "none") != (args.missing_rate == 0):
        raise LLMTimeError(
            f"--missing {args.missing} with --missing_rate {args.missing_rate} does nothing: give both "
            "(--missing random|periodic --missing_rate R, 0 < R < 1) or neither"
        )
    return RunConfig(
        task_name=args.task_name, is_training=args.is_training, model_id=args.model_id, des=args.des,
        checkpoints=args.checkpoints, results_csv=args.results_csv, checkpoint=args.checkpoint,
        input=args.input, output=args.output, data=data, model=model, train=train, model_comment=args.model_comment,
    )


def one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """Data-quality warnings (rejected readings, duplicates) read as one line each, like errors."""
    return f"warning: {message}\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        warnings.formatwarning = one_line_warning
        cfg = config_from_args(args)
        t0 = time.perf_counter()
        from exp.run import evaluate_saved, format_table, train_and_test

        if cfg.is_training:
            result = train_and_test(cfg)
        else:
            if not cfg.checkpoint:
                raise LLMTimeError("--is_training 0 needs --checkpoint RUN_DIR (a folder written by a training run)")
            if cfg.input is not None:
                from exp.forecast import forecast_file

                print(forecast_file(cfg.checkpoint, cfg.input, cfg.output, args.units or "auto").summary())
                return 0
            result = evaluate_saved(cfg.checkpoint, cfg)
        if result.metrics:
            print(format_table(result))
            print(f"outputs: {result.run_dir}  ({time.perf_counter() - t0:.0f} s)")
        return 0

    return run_cli(body, "interrupted: the last best checkpoint (if any) is intact")


if __name__ == "__main__":
    sys.exit(main())
