"""Benchmark any forecaster on real windows of a cohort: training and inference throughput, batch-1 latency, memory,
parameters, checkpoint size, FLOPs and prompt length; optionally its ONNX and INT8 copies beside it.

Run from the repository root::

    python -m scripts.benchmark                                   # the reference: Time-LLM + MiniLM (real weights)
    python -m scripts.benchmark --mixed_precision bf16
    python -m scripts.benchmark --llm_model MiniLM --llm_layers 1 --export --no_train   # a deployable student
    python -m scripts.benchmark --model DLinear --export
    python -m scripts.benchmark --checkpoint checkpoints/RUN --export  # a trained run's own model and scaler
    python -m scripts.benchmark --summarize docs/results/bench_levers/benchmark.csv   # medians per label, as markdown

Prints a table, writes ``<out>/<label>.json`` and appends a row to ``<out>/benchmark.csv``. Throughputs are
medians over ``--repeats`` (the min and max are kept in the JSON); the machine's load average before and after
is recorded, because on a shared machine it says how far to trust the numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from bench.report import format_table, summarize
from bench.run import ARCHITECTURE_FIELDS, run_from_args
from bench.settings import BenchSettings
from configs import DataConfig, ModelConfig
from configs.flags import add_config_flags, config_from_namespace
from utils.cli import OneLineArgumentParser, run_cli
from utils.errors import LLMTimeError

DEFAULT_OUT = "docs/results/bench"


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's flags: the model and data settings are run_main.py's (declared on the config fields), the
    timing settings ``BenchSettings``'s; the rest say what to measure and where to write it."""
    p = OneLineArgumentParser(prog="python -m scripts.benchmark", description="LLM-TIME efficiency benchmark")
    m = p.add_argument_group("model (defaults: the reference configuration)")
    add_config_flags(m, ModelConfig, only=("model", "llm_model", "llm_weights", "llm_path", "llm_layers",
                                           "prompt_domain", "use_prompt", *ARCHITECTURE_FIELDS))
    m.add_argument("--checkpoint", default=None, help="benchmark a saved run's model (its config, weights, scaler)")
    m.add_argument("--levers_off", default=None, metavar="LEVERS",
                   help="Time-LLM: switch fast-path levers off to measure them, comma-separated or 'all' "
                        "(short_prompt, vectorised_prompt, sdpa, prototype_cache, eval_backbone, prefix_cache; "
                        "see bench/levers.py)")
    m.add_argument("--compile", action="store_true", help="torch.compile the model before timing")
    d = p.add_argument_group("data")
    add_config_flags(d, DataConfig, only=("data", "root_path", "patients", "seq_len", "pred_len"),
                     defaults={"patients": ["1001", "1002", "1003"]},
                     notes={"patients": "here: those whose training windows are timed, 1001,1002,1003 unless given"})
    d.add_argument("--features", default="MS", choices=["S", "MS"],
                   help="S: glucose; MS: + basal, bolus, carbs (run_main's default: events as text and channels)")
    d.add_argument("--windows", type=int, default=1024, help="real windows drawn (evenly spaced) for timing")
    t = p.add_argument_group("timing")
    add_config_flags(t, BenchSettings, only=("mixed_precision", "batch", "repeats", "warmup", "steps",
                                             "latency_calls", "deepspeed", "fused_adamw"))
    t.add_argument("--no_train", dest="train", action="store_false", default=argparse.SUPPRESS,
                   help="skip the training measurement")
    t.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    t.add_argument("--export", action="store_true", help="also the ONNX graph (onnxruntime) and its dynamic-INT8 copy (ONNX Runtime quantiser)")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=DEFAULT_OUT, help="folder for <label>.json and benchmark.csv")
    o.add_argument("--label", default=None, help="row name (default: derived from the settings)")
    o.add_argument("--onnx_path", default=None, help="keep the exported graph here (default: a temporary file)")
    o.add_argument("--summarize", default=None, metavar="CSV",
                   help="only print a markdown table of a benchmark.csv: per label, medians over its runs")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        if args.summarize:
            print(summarize(args.summarize))
            return 0
        settings = config_from_namespace(BenchSettings, args)
        if args.windows < 1:
            raise LLMTimeError(f"--windows must be >= 1, got {args.windows}")
        if args.windows < args.batch:
            raise LLMTimeError(f"--windows {args.windows} must be at least --batch {args.batch}")
        label, result = run_from_args(args, settings)
        out = Path(args.out)
        print(format_table(label, result))
        print(f"wrote {out / (label + '.json')} and a row of {out / 'benchmark.csv'}")
        return 0

    return run_cli(body, "interrupted: nothing of this run was written; benchmark.csv keeps its earlier rows")


if __name__ == "__main__":
    sys.exit(main())
