"""Teacher -> student pair comparison for distillation: the command line (what it does: ``distillation/compare.py``).

Once the project is installed (``pip install --no-build-isolation -e .``, README), from any folder, either way::

    python scripts/distillation_comparison.py --mode quick --patients 1001 --epochs 2
    python -m scripts.distillation_comparison --help

The flags become one ``PipelineConfig`` per pair (the pipeline's shared flags, ``distillation/cli.py``) and, with
``--standard``, a ``distillation.compare.StandardRun``; the comparison runs from those.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Optional, Sequence

from configs.flags import add_config_flags, config_from_namespace
from distillation.cli import NO_REGRESSION_TEMPERATURE, add_common_arguments, pipeline_config
from distillation.compare import (BALANCED, MODES, QUICK, StandardRun, all_pairs, failed_path, pair_config,
                                  parse_pairs, parse_paths, run_pairs, run_standard, write_failures, write_reports)
from distillation.config import PipelineConfig, plan
from distillation.standard import POOLED_CSV, STANDARD_RUNS, STANDARD_SEARCH, standard_configs
from utils.cli import OneLineArgumentParser, given_flags, run_cli, spellings
from utils.errors import LLMTimeError


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog="python -m scripts.distillation_comparison",
        description="Run the distillation pipeline for several teacher -> student pairs and summarise accuracy, "
                    "latency, size and retention. " + NO_REGRESSION_TEMPERATURE,
    )
    w = p.add_argument_group("pairs (one of)")
    w.add_argument("--mode", choices=MODES, default=None,
                   help="quick: " + ", ".join("→".join(x) for x in QUICK) + "; balanced: "
                        + ", ".join("→".join(x) for x in BALANCED)
                        + f"; all: every teacher x student of the table ({len(all_pairs())} pairs)")
    w.add_argument(*spellings("custom_pairs"), nargs="+", default=None, metavar="TEACHER,STUDENT",
                   help="pairs such as 'BERT,TinyBERT' or 'MiniLM,MiniLM:2' (ROW:LAYERS cuts a backbone)")
    w.add_argument(*spellings("summarize", "summarise"), default=None, metavar="CSV",
                   help="only write the summary and chart of an existing pairs/pipeline CSV")
    w.add_argument("--standard", action="store_true",
                   help="the standard report: a MiniLM (6 layers) teacher, standard, privileged and on a ridge base, "
                        "-> MiniLM:1, MiniLM:2, BERT-tiny (random) and MLP, each alone and distilled; pooled over the "
                        f"12 bundled patients, seeds 2021-2023 (loss weights {STANDARD_SEARCH['grid']} searched per seed, "
                        f"teacher data {STANDARD_SEARCH['teacher_data']} and mixup {STANDARD_SEARCH['mixup_alpha']} "
                        "at seed 2021, unless --grid / --teacher_data / --mixup_alpha say otherwise), --features MS, "
                        "TimeLLM recipe, a Ridge (MS) reference per seed; run folders in --out (default "
                        f"{STANDARD_RUNS}), the pooled rows in --csv (default <out>/{POOLED_CSV}) with rows.csv and "
                        "summary.csv/.md beside them")
    add_config_flags(p, StandardRun)
    p.add_argument("--epochs", type=int, default=10, help="epoch budget of every phase (teacher, baseline, distilled)")
    p.add_argument("--paths", nargs="+", default=None, metavar="ROW=DIR",
                   help="local save_pretrained folder of a backbone row (weights + tokenizer)")
    add_common_arguments(p)
    p.add_argument("--csv", default=None, help="pairs CSV (default <out>/distillation_pairs.csv); the summary, "
                                               "Markdown and PNG are written next to it")
    return p


def shared_config(args: argparse.Namespace, **fields) -> PipelineConfig:
    """What the flags give every pair, as a ``PipelineConfig`` whose teacher and student each pair (or the standard
    preset) sets; ``fields``: what the caller sets instead of a flag."""
    return pipeline_config(args, teacher="", student="", **fields)


def standard(args: argparse.Namespace) -> int:
    """``--standard``: the preset's configurations from the shared flags (``--out`` only when given: the preset has
    its own run folders; ``--csv``: the pooled rows; ``--teacher_data`` and ``--mixup_alpha`` only when given: the
    preset searches its own), and what to do with them."""
    out = None if args.out == PipelineConfig.__dataclass_fields__["out"].default else args.out
    search = {name: getattr(args, name) if name in given_flags(args) else value
              for name, value in STANDARD_SEARCH.items()}
    precision = args.mixed_precision if "mixed_precision" in given_flags(args) else None
    configs = standard_configs(shared_config(args), out=out, csv=Path(args.csv) if args.csv else None, search=search,
                               precision=precision)
    run = config_from_namespace(StandardRun, args)
    return run_standard(configs, dataclasses.replace(run, plan=run.plan or args.dry_run))


def pairs(args: argparse.Namespace) -> int:
    """``--mode`` or ``--custom_pairs``: every pair with --epochs for each phase, then the reports."""
    if args.epochs < 1:
        raise LLMTimeError("--epochs must be >= 1")
    wanted = parse_pairs(args.mode, args.custom_pairs)
    paths = parse_paths(args.paths)
    csv = Path(args.csv) if args.csv else Path(args.out) / "distillation_pairs.csv"
    shared = shared_config(args, teacher_epochs=args.epochs, student_epochs=args.epochs,
                           distill_epochs=args.epochs, csv=str(csv))
    configs = [pair_config(pair, shared, paths) for pair in wanted]
    if args.dry_run:
        layers = lambda n: f":{n}" if n else ""  # noqa: E731
        print(f"{len(configs)} pair(s): " + ", ".join(
            f"{c.teacher}{layers(c.teacher_layers)}→{c.student}{layers(c.student_layers)}" for c in configs))
        for c in configs:
            print(plan(c).split("\n[")[0])
        return 0
    failures = run_pairs(configs)
    write_failures(csv, failures)
    print(write_reports(csv)[1], end="")
    print(f"rows: {csv}")
    if failures:
        print(f"{len(failures)} of {len(configs)} pairs failed: {failed_path(csv)}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        chosen = [x is not None for x in (args.mode, args.custom_pairs, args.summarize)] + [args.standard]
        if sum(chosen) != 1:
            raise LLMTimeError("give exactly one of --mode, --custom_pairs, --summarize or --standard")
        if args.standard:
            return standard(args)
        if args.plan or args.report or args.retime or args.seeds is not None:
            flag = "plan" if args.plan else "report" if args.report else "retime" if args.retime else "seeds"
            raise LLMTimeError(f"--{flag} goes with --standard; other comparisons print their plan with --dry_run and "
                               "their summary with --summarize")
        if args.summarize:
            print(write_reports(Path(args.summarize))[1], end="")
            return 0
        return pairs(args)

    return run_cli(body, "interrupted: finished pairs and phases are reused when the same command runs again")


if __name__ == "__main__":
    sys.exit(main())
