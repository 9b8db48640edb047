"""The distillation pipeline's command line: its flags (``--help`` documents each; most are declared on the fields of
``PipelineConfig`` and the config sections), the flags it shares with the pair comparison (``add_common_arguments``,
``pipeline_config``), and the settings they give (``config_from_args``).

The pipeline's ``main`` (``python -m distillation.pipeline``, or ``bash scripts/distill_pipeline.sh``) reads them;
the pair comparison's command line (``scripts/distillation_comparison.py``) builds its own parser on the shared
flags. Nothing here runs the pipeline, so the pipeline may import its command line without an import cycle.
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from typing import Any, Optional

from configs import DataConfig, ModelConfig, TrainConfig
from configs.flags import add_config_flags, config_from_namespace
from data_provider.data_factory import dataset_name
from distillation.config import DEFAULT_GRID, DEFAULT_MAX_TRAIN_WINDOWS, DEFAULT_MAX_VAL_WINDOWS, PipelineConfig
from distillation.losses import LossWeights, parse_grid, parse_layer_map
from utils.cli import OneLineArgumentParser, spellings
from utils.errors import LLMTimeError

NO_REGRESSION_TEMPERATURE = (
    "There is no temperature: forecasts are real numbers, not a softmax over classes, so temperature scaling does "
    "not apply to regression distillation."
)


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by the pipeline and the pair comparison (each declared on its config field, but the loss
    weights, which ``pipeline_config`` parses)."""
    d = p.add_argument_group("data")
    add_config_flags(d, DataConfig, only=("patients", "data", "root_path", "max_train_windows", "max_val_windows",
                                           "train_draw"),
                     defaults={"max_train_windows": DEFAULT_MAX_TRAIN_WINDOWS,
                               "max_val_windows": DEFAULT_MAX_VAL_WINDOWS, "train_draw": "fixed"},
                     notes={"max_train_windows": "also bounds the teacher cache",
                            "train_draw": "default fixed here: the teacher cache holds every drawable window"})
    add_config_flags(d, PipelineConfig, only=("all_patients",))
    o = p.add_argument_group("objective")
    o.add_argument("--alpha", type=float, default=None,
                   help="weight of MSE(student, truth); given alone, it means --beta 1-ALPHA --gamma 0")
    o.add_argument("--beta", type=float, default=None, help="weight of MSE(student, teacher forecast)")
    o.add_argument("--gamma", type=float, default=None, help="weight of the hidden-state loss (0 = output-only)")
    o.add_argument("--grid", default=DEFAULT_GRID,
                   help="ALPHA,BETA,GAMMA candidates separated by ';', chosen on validation MSE when "
                        "--alpha/--beta/--gamma are not given")
    o.add_argument("--temperature", type=float, default=None,
                   help="accepted from classification distillation recipes and IGNORED, with a warning: forecasts "
                        "are real numbers, so there is no softmax for a temperature to soften")
    add_config_flags(o, PipelineConfig, only=("teacher_data", "mixup_alpha", "init_from_baseline", "max_cache_mb"))
    t = p.add_argument_group("training (the same for teacher, baseline and distilled student)")
    add_config_flags(t, TrainConfig, only=("seed", "learning_rate", "batch_size", "patience", "mixed_precision"))
    m = p.add_argument_group("model")
    add_config_flags(m, ModelConfig, only=("llm_weights", "d_model", "d_ff", "n_heads", "num_tokens", "base"),
                     notes={"llm_weights": "both models', unless --teacher_weights / --student_weights say otherwise",
                            "base": "teacher, baseline and distilled student alike"})
    r = p.add_argument_group("output")
    add_config_flags(r, PipelineConfig, only=("latency_repeats", "latency_threads", "int8", "out"))
    r.add_argument(*spellings("dry_run"), action="store_true", help="print the plan and configs; train nothing")


def given_weights(args: argparse.Namespace) -> Optional[LossWeights]:
    """The loss weights the flags fix, or None to search --grid. A lone --alpha A is the usual two-term recipe,
    A * truth + (1 - A) * teacher, with no hidden-state term."""
    given = [v is not None for v in (args.alpha, args.beta, args.gamma)]
    if given == [True, False, False]:
        if not 0 <= args.alpha <= 1:
            raise LLMTimeError(f"--alpha {args.alpha:g} given alone must be in [0, 1]: it means "
                               "--beta 1-ALPHA --gamma 0")
        return LossWeights(args.alpha, round(1.0 - args.alpha, 12), 0.0)
    if any(given) and not all(given):
        raise LLMTimeError("give --alpha alone (beta = 1 - alpha, gamma = 0), --alpha, --beta and --gamma together, "
                           "or none (to search --grid on validation)")
    return LossWeights(args.alpha, args.beta, args.gamma) if all(given) else None


def pipeline_config(args: argparse.Namespace, **fields: Any) -> PipelineConfig:
    """The checked PipelineConfig the parsed flags describe; ``fields`` are set by the caller instead of a flag (the
    pair comparison's backbones, epoch budgets and CSV)."""
    if args.temperature is not None:
        warnings.warn(f"--temperature {args.temperature:g} is IGNORED: forecasts are real numbers, not a softmax over "
                      "classes, so there is nothing for a temperature to soften (docs/distillation.md)", stacklevel=2)
    args.data = dataset_name(args.data)
    cfg = config_from_namespace(PipelineConfig, argparse.Namespace(**{**vars(args), **fields}))
    return dataclasses.replace(cfg, weights=given_weights(args), grid=parse_grid(args.grid))


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog="python -m distillation.pipeline",
        description="Distil a large-backbone Time-LLM teacher into a small-backbone student: teacher -> student "
                    "baseline -> distilled student -> evaluation, one CSV row per patient. Loss = alpha*MSE(truth) "
                    "+ beta*MSE(teacher forecast) + gamma*hidden-state MSE. " + NO_REGRESSION_TEMPERATURE
                    + " Every --flag_name also answers to --flag-name.",
    )
    b = p.add_argument_group("backbones (short names or Hugging Face ids)")
    roles = add_config_flags(b, PipelineConfig, defaults={"teacher": None, "student": None}, only=(
        "teacher", "student", "teacher_path", "student_path", "teacher_layers", "student_layers", "teacher_weights",
        "student_weights"))
    roles["teacher"].required = roles["student"].required = True
    b.add_argument(*spellings("layer_map"), default=None,
                   help="explicit STUDENT:TEACHER hidden-state pairs, e.g. 0:0,1:3,2:6 (0 = embedding output); "
                        "default: student i <-> teacher round(i*T/S)")
    e = p.add_argument_group("epoch budgets")
    add_config_flags(e, PipelineConfig, only=("teacher_epochs", "student_epochs", "distill_epochs"))
    add_config_flags(b, PipelineConfig, only=("teacher_view", "teacher_base"))
    add_common_arguments(p)
    add_config_flags(p, PipelineConfig, only=("csv",))
    return p


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline's settings from its parsed flags; per-role --teacher/--student_weights override --llm_weights."""
    cfg = pipeline_config(args)
    return dataclasses.replace(cfg, layer_map=parse_layer_map(args.layer_map) if args.layer_map else None)
