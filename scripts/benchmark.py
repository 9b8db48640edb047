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
from bench.run import ARCHITECTURE_FIELDS, run_target
from bench.settings import BENCH_PATIENTS, BenchSettings, BenchTarget
from configs import DataConfig, ModelConfig
from configs.flags import add_config_flags, config_from_namespace
from utils.cli import OneLineArgumentParser, run_cli
from utils.errors import LLMTimeError


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's flags: the model and data settings are run_main.py's (declared on the config fields), what to
    measure and where to write it ``BenchTarget``'s, the timing settings ``BenchSettings``'s."""
    p = OneLineArgumentParser(prog="python -m scripts.benchmark", description="LLM-TIME efficiency benchmark")
    m = p.add_argument_group("model (defaults: the reference configuration)")
    add_config_flags(m, ModelConfig, only=("model", "llm_model", "llm_weights", "llm_path", "llm_layers",
                                           "prompt_domain", "use_prompt", "event_words", *ARCHITECTURE_FIELDS))
    add_config_flags(m, BenchTarget, only=("checkpoint", "levers_off", "compile"))
    d = p.add_argument_group("data")
    add_config_flags(d, DataConfig, only=("data", "root_path", "patients", "seq_len", "pred_len"),
                     defaults={"patients": list(BENCH_PATIENTS)},
                     notes={"patients": "here: those whose training windows are timed, 1001,1002,1003 unless given"})
    add_config_flags(d, BenchTarget, only=("features", "windows"))
    t = p.add_argument_group("timing")
    add_config_flags(t, BenchSettings, only=("mixed_precision", "batch", "repeats", "warmup", "steps",
                                             "latency_calls", "deepspeed", "fused_adamw"))
    t.add_argument("--no_train", dest="train", action="store_false", default=argparse.SUPPRESS,
                   help="skip the training measurement")
    add_config_flags(t, BenchTarget, only=("threads", "export"))
    o = p.add_argument_group("output")
    add_config_flags(o, BenchTarget, only=("out", "label", "onnx_path"))
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
        target = config_from_namespace(BenchTarget, args)
        if target.windows < settings.batch:
            raise LLMTimeError(f"--windows {target.windows} must be at least --batch {settings.batch}")
        label, result = run_target(target, settings)
        out = Path(target.out)
        print(format_table(label, result))
        print(f"wrote {out / (label + '.json')} and a row of {out / 'benchmark.csv'}")
        return 0

    return run_cli(body, "interrupted: nothing of this run was written; benchmark.csv keeps its earlier rows")


if __name__ == "__main__":
    sys.exit(main())
