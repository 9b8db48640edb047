"""Time-LLM-compatible command line: train and test a glucose forecaster, or evaluate a saved run.

    python run_main.py                                   # Time-LLM + MiniLM on the bundled simulated cohort
    python run_main.py --llm_model BERT --llm_path DIR --patients 1001
    python run_main.py --is_training 0 --checkpoint checkpoints/RUN   # re-test a saved run
    python run_main.py --is_training 0 --checkpoint checkpoints/RUN --input my_cgm.csv   # forecast a new file
    python run_main.py --config checkpoints/RUN/config.json --seed 7   # a saved run again, with another seed

The flags researchers type for Time-LLM keep their names (``configs/schema.py`` declares each on its field);
everything is turned into one ``RunConfig`` here and nothing downstream reads argparse. User errors print one line
on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from configs.flags import add_config_flags, config_from_namespace, read_config
from exp.recipes import DEFAULT_RUN_MODEL, RECIPE_FLAGS, apply_recipe, default_run_train
from utils.cli import OneLineArgumentParser, given_flags, run_cli
from utils.errors import LLMTimeError

# The default run (no --max_train_windows): real MiniLM weights on the bundled cohort, meals and insulin as text
# and channels, the TimeLLM recipe, and a training budget small enough that it finishes in under 10 minutes on 2 CPU
# cores (bf16 where the CPU has it). Testing is never capped: scoring every one of the cohort's ~34k test windows is
# about 40% of that time. Sized from the sweeps in docs/results/recipes.md.
DEFAULT_MAX_TRAIN_WINDOWS = 2_000
DEFAULT_MAX_VAL_WINDOWS = 1_000
DEFAULT_RUN_EPOCHS = 3  # --train_epochs when neither it nor --max_train_windows is given (otherwise the recipe's)
# The default run's backbone cut (exp/recipes.DEFAULT_RUN_MODEL): a flag given, or another backbone, leaves it.
DEFAULT_RUN_LAYERS = DEFAULT_RUN_MODEL["llm_layers"]
_PRECISION_DEFAULT = ("default: the launcher's, as accelerate launch --mixed_precision bf16 sets it; else bf16 with "
                      "--use_amp; else the saved run's with --config; else bf16 where the CPU/GPU computes bf16 "
                      "natively (AMX, or AVX512-BF16 on AMD), else no; the one used is recorded in config.json")


def build_parser() -> argparse.ArgumentParser:
    """run_main's flags: one per settable field of the run configuration (``configs/schema.py`` declares its help,
    choices and bounds), plus the flags that map onto fields (``--features``, ``--data_path``, ``--no_prompt``,
    ``--use_amp``, ``--config``) and Time-LLM's own, accepted so its scripts run."""
    from models import MODELS
    from models.backbones import backbone_names

    p = OneLineArgumentParser(prog="python run_main.py", description="LLM-TIME: Time-LLM glucose forecasting (every "
                                                                      "--flag_name also answers to --flag-name)")
    g = p.add_argument_group("run")
    g.add_argument("--config", default=None, metavar="RUN",
                   help="start from a saved run's configuration (its config.json, or the run folder): the flags "
                        "given change only their fields, and its training settings stay as saved even with another "
                        "--model")
    add_config_flags(g, RunConfig, exclude=("model_comment",),
                     notes={"checkpoint": "with --is_training 0", "input": "with --is_training 0 --checkpoint RUN"})
    add_config_flags(g, ModelConfig, only=("model",), notes={"model": ", ".join(MODELS)})
    g.add_argument("--units", default=None, choices=["mgdl", "mmol", "auto"],
                   help="glucose units of --input (default auto: a median below 35 = mmol/L)")
    add_config_flags(g, TrainConfig, only=("seed",))

    d = p.add_argument_group("data")
    # horizon_events is the distillation teacher's privileged view (what the log holds after the forecast time):
    # never a flag of a forecaster that is tested and reported as one.
    add_config_flags(d, DataConfig, exclude=("covariates", "scenario_seed", "horizon_events"),
                     notes={"max_train_windows": f"default run: {DEFAULT_MAX_TRAIN_WINDOWS}",
                            "max_val_windows": f"default run: {DEFAULT_MAX_VAL_WINDOWS}"})
    d.add_argument("--data_path", default=None,
                   help="one patient's file under --root_path, <id>-ws-training.xml[.gz] (Time-LLM's flag): trains "
                        "and tests on that patient, as --patients ID does")
    d.add_argument("--features", default="MS", choices=["S", "MS", "M"],
                   help="S: glucose in, glucose out; MS: glucose + insulin and carbohydrate covariates in, glucose "
                        "out; M (Time-LLM's all in, all out) runs as MS, with a warning: glucose is the only target "
                        "here")

    m = p.add_argument_group("model")
    add_config_flags(m, ModelConfig, exclude=("model",), defaults={"prompt_domain": None}, notes={
        "llm_model": ", ".join(backbone_names()),
        "prompt_domain": "default: 1; 0 in the default run, where it measured no validation gain for ~30% of the "
                         "prompt's tokens: docs/results/recipes.md",
        "llm_layers": f"{DEFAULT_RUN_LAYERS} in the default run with MiniLM (no --max_train_windows)"})
    m.add_argument("--no_prompt", dest="use_prompt", action="store_false", default=argparse.SUPPRESS,
                   help="drop the prompt prefix (ablation), as --use_prompt 0")

    t = p.add_argument_group("training")
    recipe = "default: the model's recipe, exp/recipes.py"
    unset = {**dict.fromkeys(RECIPE_FLAGS), "mixed_precision": None}  # None: decided in config_from_args
    add_config_flags(t, TrainConfig, exclude=("seed",), defaults=unset, notes={
        **dict.fromkeys(RECIPE_FLAGS, recipe), "mixed_precision": _PRECISION_DEFAULT,
        "train_epochs": f"{recipe}; {DEFAULT_RUN_EPOCHS} in the default run (no --max_train_windows)"})
    t.add_argument("--use_amp", action="store_true",
                   help="Time-LLM's AMP flag: bf16 autocast unless --mixed_precision says otherwise")

    c = p.add_argument_group("Time-LLM compatibility",
                             "accepted so Time-LLM's scripts run: --model_comment tags the run folder; the others "
                             "change nothing here, and one warning line names those given")
    c.add_argument("--itr", type=int, default=1, help="Time-LLM's repeat count; one run per command here (vary --seed)")
    add_config_flags(c, RunConfig, only=("model_comment",))
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
    if args.data_path is None:
        return args.patients
    match = _DATA_FILE.fullmatch(Path(args.data_path).name)
    if match is None:
        raise LLMTimeError(f"--data_path {args.data_path}: expected a patient file <id>-ws-training.xml[.gz] under "
                           "--root_path, or pick patients with --patients")
    if args.patients is not None and args.patients != [match["pid"]]:
        raise LLMTimeError(f"--data_path {args.data_path} selects patient {match['pid']} but --patients says "
                           f"{','.join(args.patients)}: give one of them")
    return [match["pid"]]


def _precision(args: argparse.Namespace, saved: Optional[RunConfig]) -> str:
    """--mixed_precision; else the launcher's (accelerate launch --mixed_precision); else bf16 with --use_amp; else
    the saved run's (--config); else, with nothing said anywhere, bf16 where the hardware computes it natively and
    fp32 elsewhere."""
    if args.mixed_precision is not None:
        return args.mixed_precision
    # deferred: they load torch, which --help does not need
    from exp.accelerator import launcher_precision, native_precision

    launcher = launcher_precision()
    if launcher not in ("", "no", "bf16", "fp16"):
        raise LLMTimeError(f"the launcher's mixed precision {launcher} is not supported here: use no, bf16 or fp16")
    if launcher in ("bf16", "fp16"):
        return launcher
    if args.use_amp:
        return "bf16"
    if saved is not None:
        return saved.train.mixed_precision
    if launcher == "no" or args.use_deepspeed:  # DeepSpeed takes its precision explicitly (its engine casts weights)
        return "no"
    return native_precision()


def _warn_if_emulated(precision: str) -> None:
    """bf16 asked for (flag, launcher, --use_amp or a saved run) where the hardware only emulates it runs 5-10x slower
    than fp32 on a CPU; said once, so a slow run is not a mystery. The default never picks it there."""
    if precision != "bf16":
        return
    from exp.accelerator import native_bf16  # deferred: it loads torch, which --help does not need

    if not native_bf16():
        warnings.warn("bf16 is not native here (a CPU without AMX, or AVX512-BF16 on AMD; or a GPU without bf16): "
                      "it is emulated and runs several times slower than fp32; --mixed_precision no is faster",
                      stacklevel=2)


def _fresh_run(args: argparse.Namespace, given: frozenset[str]) -> str:
    """Fill the flags left unset in a run without --config: the default run's budget (no --max_train_windows: caps,
    epochs, no dataset description; with the default backbone its layer cut) and the model's
    recipe for every recipe flag not given. Returns the recipe's name, which config.json records."""
    default_run = "max_train_windows" not in given
    if default_run:
        args.max_train_windows = DEFAULT_MAX_TRAIN_WINDOWS
        if "max_val_windows" not in given:
            args.max_val_windows = DEFAULT_MAX_VAL_WINDOWS
        if args.train_epochs is None:
            args.train_epochs = DEFAULT_RUN_EPOCHS
        from models.backbones import resolve_backbone  # deferred: the table imports transformers

        if resolve_backbone(args.llm_model).name == resolve_backbone(ModelConfig().llm_model).name:
            if "llm_layers" not in given:
                args.llm_layers = DEFAULT_RUN_LAYERS
            pinned = default_run_train(args.model)  # its optimisation as the layer cut was chosen with
            for name in pinned.keys() - given:
                setattr(args, name, pinned[name])
    if args.prompt_domain is None:
        args.prompt_domain = not default_run
    recipe = apply_recipe(TrainConfig(), args.model,
                          {name: getattr(args, name) for name in RECIPE_FLAGS if getattr(args, name) is not None})
    for name in RECIPE_FLAGS:
        setattr(args, name, getattr(recipe, name))
    return recipe.recipe


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run's configuration: from the defaults and the model's recipe, or with --config from the saved run's, the
    flags given changing only their fields; every value is checked against its field's declaration."""
    given = given_flags(args)
    ignored = _ignored(args)
    if ignored:
        warnings.warn(f"Time-LLM flags with no effect here, ignored: {', '.join(ignored)}", stacklevel=2)
    if args.features == "M":
        warnings.warn("--features M: glucose is the only forecast target here; running as --features MS "
                      "(glucose, insulin and carbohydrates in, glucose out)", stacklevel=2)
        args.features = "MS"
    saved = read_config(args.config, RunConfig) if args.config else None
    # the flags that map onto fields under other names
    args.patients = _data_path_patients(args)
    args.covariates = args.features == "MS"
    args.scenario_seed = args.seed
    args.mixed_precision = _precision(args, saved)
    _warn_if_emulated(args.mixed_precision)
    if args.use_amp and args.mixed_precision == "no":
        raise LLMTimeError("--use_amp contradicts --mixed_precision no: pass one of them")
    from data_provider.data_factory import dataset_name  # deferred: it loads torch, which --help does not need

    args.data = dataset_name(args.data)
    if saved is None:
        recipe = _fresh_run(args, given)
        cfg = config_from_namespace(RunConfig, args)
        cfg.train.recipe = recipe
    else:
        mapped = {"covariates": "features", "scenario_seed": "seed", "patients": "data_path"}
        names = given | {"mixed_precision"} | {name for name, flag in mapped.items() if flag in given}
        cfg = config_from_namespace(RunConfig, args, base=saved, names=names)
    if cfg.data.root_path is None and cfg.data.data != "simulated":
        raise LLMTimeError(f"--data {cfg.data.data} needs --root_path pointing at its data files")
    if cfg.input is None and (cfg.output is not None or args.units is not None):
        raise LLMTimeError("--output and --units go with --input FILE (forecasting a new CGM file)")
    if cfg.input is not None and cfg.is_training:
        raise LLMTimeError("--input forecasts with a saved run: add --is_training 0 --checkpoint RUN_DIR")
    if cfg.train.resume and not cfg.is_training:
        raise LLMTimeError("--resume continues an interrupted training run; drop it with --is_training 0")
    if (cfg.data.missing == "none") != (cfg.data.missing_rate == 0):
        raise LLMTimeError(
            f"--missing {cfg.data.missing} with --missing_rate {cfg.data.missing_rate} does nothing: give both "
            "(--missing random|periodic --missing_rate R, 0 < R < 1) or neither"
        )
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
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

                print(forecast_file(cfg.checkpoint, cfg.input, cfg.output, args.units or "auto",
                                    columns=cfg.data.csv_columns).summary())
                return 0
            result = evaluate_saved(cfg.checkpoint, cfg)
        if result.metrics:
            print(format_table(result))
            print(f"outputs: {result.run_dir}  ({time.perf_counter() - t0:.0f} s)")
        return 0

    return run_cli(body, "interrupted: the last best checkpoint (if any) is intact")


if __name__ == "__main__":
    sys.exit(main())
