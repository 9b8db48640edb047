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
import sys
import time
import warnings
from typing import Optional, Sequence

from exp.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from utils.errors import LLMTimeError, run_cli

# The default run (no --max_train_windows): real MiniLM weights on the bundled cohort, with a training budget small
# enough that it finishes in under 10 minutes on 2 CPU cores. Testing is never capped: scoring every one of the
# cohort's ~33k test windows is about half of that time.
DEFAULT_MAX_TRAIN_WINDOWS = 2_000
DEFAULT_MAX_VAL_WINDOWS = 1_000
DEFAULT_RUN_EPOCHS = 2  # --train_epochs when neither it nor --max_train_windows is given (otherwise 10)
FULL_EPOCHS = 10


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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(description="LLM-TIME: Time-LLM glucose forecasting", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--task_name", default="long_term_forecast", choices=["long_term_forecast", "short_term_forecast"])
    g.add_argument("--is_training", type=int, default=1, choices=[0, 1], help="1 = train and test; 0 = evaluate --checkpoint")
    g.add_argument("--model_id", default="glucose")
    g.add_argument("--model", default="TimeLLM", help="forecaster name (see README)")
    g.add_argument("--des", default="Exp", help="free tag added to the run folder name")
    g.add_argument("--checkpoints", default="./checkpoints/", help="folder for run outputs")
    g.add_argument("--results_csv", default=None, help="CSV to append one row to (default <checkpoints>/results.csv)")
    g.add_argument("--checkpoint", default=None, help="run folder to evaluate (with --is_training 0)")
    g.add_argument("--input", default=None,
                   help="with --is_training 0: forecast this CGM file (Ohio .xml[.gz] or timestamp,glucose .csv)")
    g.add_argument("--output", default=None, help="forecast CSV to write (default <input name>_forecast.csv here)")
    g.add_argument("--units", default=None, choices=["mgdl", "mmol", "auto"],
                   help="glucose units of --input (default auto: all values below 35 = mmol/L)")
    g.add_argument("--seed", type=int, default=2021)

    d = p.add_argument_group("data")
    d.add_argument("--data", default="simulated", help="'simulated' (bundled cohort) or 'ohio' (with --root_path)")
    d.add_argument("--root_path", default=None, help="folder with <id>-ws-training.xml[.gz] files")
    d.add_argument("--data_path", default=None, help="accepted for Time-LLM compatibility; files are found under --root_path")
    d.add_argument("--features", default="S", choices=["S", "MS"], help="S: glucose only; MS: glucose + covariates")
    d.add_argument("--patients", default=None, help="comma-separated training patient ids (default: all)")
    d.add_argument("--test_patients", default=None, help="comma-separated test patient ids (default: the training ones)")
    d.add_argument("--seq_len", type=int, default=72)
    d.add_argument("--label_len", type=int, default=0, help="accepted for Time-LLM compatibility (no decoder here)")
    d.add_argument("--pred_len", type=int, default=12)
    d.add_argument("--max_gap_fill_min", type=int, default=30)
    d.add_argument("--val_fraction", type=float, default=0.2)
    d.add_argument("--percent", type=int, default=100)
    d.add_argument("--max_train_windows", type=int, default=None,
                   help=f"evenly spaced cap on training windows (default run: {DEFAULT_MAX_TRAIN_WINDOWS}; 0 = no cap)")
    d.add_argument("--max_val_windows", type=int, default=None,
                   help=f"cap on validation windows (default run: {DEFAULT_MAX_VAL_WINDOWS}; 0 = no cap); test is never capped")
    d.add_argument("--missing", default="none", choices=["none", "random", "periodic"])
    d.add_argument("--missing_rate", type=float, default=0.0)
    d.add_argument("--noise_std", type=float, default=0.0, help="Gaussian input noise, mg/dL")

    m = p.add_argument_group("model")
    m.add_argument("--llm_model", default="MiniLM", help="backbone row: short name or Hugging Face id")
    m.add_argument("--llm_path", default=None, help="local folder with the backbone's weights and tokenizer")
    m.add_argument("--llm_weights", default="pretrained", choices=["pretrained", "random"])
    m.add_argument("--llm_layers", type=int, default=None, help="use the first N backbone layers (default: all)")
    m.add_argument("--llm_dim", type=int, default=None, help="must equal the row's input-embedding width if given")
    for name, default in (("patch_len", 12), ("stride", 6), ("d_model", 32), ("d_ff", 128), ("n_heads", 8),
                          ("num_tokens", 1000), ("top_k", 5), ("enc_in", 1), ("dec_in", 1), ("c_out", 1),
                          ("e_layers", 2), ("d_layers", 1), ("factor", 1), ("moving_avg", 25)):
        m.add_argument(f"--{name}", type=int, default=default)
    m.add_argument("--dropout", type=float, default=0.1)
    m.add_argument("--prompt_domain", type=_bool, default=True, help="1 = use the dataset description in the prompt")
    m.add_argument("--no_prompt", action="store_true", help="drop the prompt prefix (ablation)")

    t = p.add_argument_group("training")
    t.add_argument("--batch_size", type=int, default=32)
    t.add_argument("--eval_batch_size", type=int, default=64,
                   help="windows per validation/test pass (64 is the fastest on a 2-core CPU for MiniLM)")
    t.add_argument("--learning_rate", type=float, default=1e-3)
    t.add_argument("--train_epochs", type=int, default=None,
                   help=f"default {FULL_EPOCHS}; {DEFAULT_RUN_EPOCHS} in the default run (no --max_train_windows)")
    t.add_argument("--patience", type=int, default=3)
    t.add_argument("--lradj", default="COS", choices=["type1", "COS", "TST", "constant"])
    t.add_argument("--pct_start", type=float, default=0.2)
    t.add_argument("--weight_decay", type=float, default=0.0)
    t.add_argument("--use_amp", action="store_true", help="Time-LLM's AMP flag: bf16 autocast unless --mixed_precision says otherwise")
    t.add_argument("--mixed_precision", default=None, choices=["no", "bf16", "fp16"])
    t.add_argument("--use_deepspeed", action="store_true", help="DeepSpeed ZeRO-2 through accelerate")
    t.add_argument("--deepspeed_config", default=None, help="DeepSpeed JSON (default configs/ds_config_zero2.json)")
    t.add_argument("--num_workers", type=int, default=0)
    t.add_argument("--max_steps_per_epoch", type=int, default=None)
    t.add_argument("--resume", action="store_true", help="continue an interrupted run from its last completed epoch")
    return p


# Integer flags whose zero or negative values have no meaning (None = unset, checked where it is used).
_POSITIVE = ("batch_size", "eval_batch_size", "train_epochs", "patience", "d_model", "d_ff", "n_heads", "num_tokens",
             "seq_len", "pred_len", "patch_len", "stride", "e_layers", "moving_avg", "max_steps_per_epoch")

# Flags of Time-LLM's CLI that no model here reads; accepted so existing scripts run, and checked not to mislead.
_COMPAT_ONLY = {"enc_in": 1, "dec_in": 1, "c_out": 1, "e_layers": 2, "d_layers": 1, "factor": 1, "moving_avg": 25}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    for name, default in _COMPAT_ONLY.items():
        if name in ("e_layers", "moving_avg"):
            continue  # read by the PatchTST / DLinear baselines
        if getattr(args, name) != default:
            raise LLMTimeError(f"--{name} is not used by any model here (glucose is univariate in, univariate out); drop it")
    if args.mixed_precision is None:
        args.mixed_precision = "bf16" if args.use_amp else "no"
    if args.use_amp and args.mixed_precision == "no":
        raise LLMTimeError("--use_amp contradicts --mixed_precision no: pass one of them")
    if args.root_path is None and args.data != "simulated":
        raise LLMTimeError(f"--data {args.data} needs --root_path pointing at its XML files")
    default_run = args.max_train_windows is None
    if args.train_epochs is None:
        args.train_epochs = DEFAULT_RUN_EPOCHS if default_run else FULL_EPOCHS
    cap = lambda v, default: default if v is None else (None if v == 0 else v)  # noqa: E731
    data = DataConfig(
        data=args.data, root_path=args.root_path, patients=_patients(args.patients),
        test_patients=_patients(args.test_patients), seq_len=args.seq_len, label_len=args.label_len,
        pred_len=args.pred_len, max_gap_fill_min=args.max_gap_fill_min, val_fraction=args.val_fraction,
        max_train_windows=cap(args.max_train_windows, DEFAULT_MAX_TRAIN_WINDOWS),
        max_val_windows=cap(args.max_val_windows, DEFAULT_MAX_VAL_WINDOWS if default_run else None),
        percent=args.percent, covariates=args.features == "MS", missing=args.missing,
        missing_rate=args.missing_rate, noise_std=args.noise_std, scenario_seed=args.seed,
    )
    model = ModelConfig(
        model=args.model, llm_model=args.llm_model, llm_path=args.llm_path, llm_weights=args.llm_weights,
        llm_layers=args.llm_layers, llm_dim=args.llm_dim, patch_len=args.patch_len, stride=args.stride,
        d_model=args.d_model, d_ff=args.d_ff, n_heads=args.n_heads, dropout=args.dropout, num_tokens=args.num_tokens,
        top_k=args.top_k, prompt_domain=args.prompt_domain, use_prompt=not args.no_prompt,
        e_layers=args.e_layers, moving_avg=args.moving_avg,
    )
    train = TrainConfig(
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate,
        train_epochs=args.train_epochs, patience=args.patience, lradj=args.lradj, pct_start=args.pct_start,
        weight_decay=args.weight_decay, mixed_precision=args.mixed_precision, use_deepspeed=args.use_deepspeed,
        deepspeed_config=args.deepspeed_config, num_workers=args.num_workers, seed=args.seed,
        max_steps_per_epoch=args.max_steps_per_epoch, resume=args.resume,
    )
    for name in _POSITIVE:
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise LLMTimeError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.num_workers < 0:
        raise LLMTimeError(f"--num_workers must be >= 0, got {args.num_workers}")
    if not 0.0 <= args.dropout < 1.0:
        raise LLMTimeError(f"--dropout must be in [0, 1), got {args.dropout}")
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
        input=args.input, output=args.output, data=data, model=model, train=train,
    )


def one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """Data-quality warnings (rejected readings, duplicates) read as one line each, like errors."""
    return f"warning: {message}\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        cfg = config_from_args(args)
        t0 = time.perf_counter()
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        warnings.formatwarning = one_line_warning
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
