"""Compare forecasters on one grid with one command: baselines, Time-LLM and its Tan-style ablations.

    python -m scripts.compare_models --standard               # the comparison that ranks the methods (~hours, CPU)
    python -m scripts.compare_models --standard --plan        # its cells and estimated time; trains nothing
    python -m scripts.compare_models --standard --shard 2/4   # task 2 of a 4-task job array
    accelerate launch --multi_gpu --num_processes 4 -m scripts.compare_models --standard --shard auto  # 1 per GPU
    python -m scripts.compare_models --standard --merge       # join the shards' tables, write the report
    python -m scripts.compare_models --standard --out docs/results/standard   # the published report (README)
    python -m scripts.compare_models --quick --out checkpoints/quick   # a smoke run: minutes on a CPU
    python -m scripts.compare_models --models Persistence,Ridge,TimeLLM,TimeLLM_woLLM --backbones MiniLM \\
        --patients 1001,1002 --seeds 2021 --out checkpoints/mine

Tan et al. (NeurIPS 2024) found that Time-LLM with its language model removed beat the full model in all 26 of
their comparisons. This runner repeats that check on glucose: every model of the grid goes through the same engine
(``exp.run.train_and_test``), the same splits and the same metrics, on every test window.

``--standard`` is the ranking grid (``comparison/standard.py`` says what it runs, what was cut to fit 2 CPU cores and
why it still takes about 10 hours there; ``--plan`` gives the estimate): 12 patients pooled, 3 seeds, every model
with its own recipe to its validation plateau, Time-LLM with and without events and its ablations, and per-patient
paired statistics. The other presets train every model with one setting: ``--quick`` (a smoke run, not a result),
``--full`` (12 patients, one model each, 3 seeds, no caps: GPU hours) and, with no preset flag, the settings given.
Their grid is models x backbones (models that run a language model only) x patient groups (one per patient, or one
pooled group with ``--pooled``) x seeds; with ``TimeLLM`` in it, ``--random-backbone`` and ``--no-prompt-ablation``
add Time-LLM on a random backbone and without its prompt prefix (on in presets).

Outputs in ``--out`` (default with --standard: checkpoints/standard; --scaling: checkpoints/scaling): ``tidy.csv``
(one row per run), ``per_patient.csv`` (one row per run and patient), ``summary.csv``, ``summary.md`` and
``rmse_by_model.png`` / ``rmse_by_model_60.png``, rewritten after every finished run. ``--shard I/N`` runs every
N-th cell of the ordered grid into ``tidy.shard-I-of-N.csv`` (a cluster job array: ``--shard
$SLURM_ARRAY_TASK_ID/$N``; the processes of ``accelerate launch`` or ``torchrun``: ``--shard auto``, one shard and
one GPU each, ``comparison/launch.py``); ``--merge`` joins the shards into tidy.csv and writes the report. Run
folders go to ``--runs-dir``, outside ``--out``. Running the same command again skips every finished cell; a cell's
key includes a fingerprint of its settings, so changed settings run afresh.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence

from comparison.grid import WINDOW_CAPS, GridFlags
from configs.flags import FLAG
from utils.cli import OneLineArgumentParser, given_flags, run_cli, spellings
from utils.errors import LLMTimeError

# Outputs stay out of the repository's docs/ unless --out puts them there (the published reports' commands do).
DEFAULT_OUT = {"standard": Path("checkpoints") / "standard", "scaling": Path("checkpoints") / "scaling"}
PROG = "python -m scripts.compare_models"


def build_parser() -> argparse.ArgumentParser:
    """The comparison's flags: the data, training and weights settings it shares with run_main.py are declared on
    their config fields (``configs/schema.py``), None meaning the preset's or the recipe's; the grid's own are here."""
    from configs import DataConfig, ModelConfig, TrainConfig
    from configs.flags import add_config_flags

    p = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0]
                              + " (every --flag_name also answers to --flag-name)")
    p.add_argument("--out", default=None,
                   help="folder for the tables, summary and plots (required unless --standard or --scaling: "
                        "checkpoints/standard, checkpoints/scaling)")
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--standard", action="store_true",
                        help="the ranking grid: 12 patients pooled, 3 seeds, each model's recipe "
                             "(comparison/standard.py)")
    preset.add_argument("--quick", action="store_true",
                        help="smoke run: 2 patients, 1 seed, 1000/300 train/val windows, 2 epochs: minutes on a CPU")
    preset.add_argument("--full", action="store_true", help="all patients, one model each, 3 seeds, no caps, 10 epochs")
    preset.add_argument("--scaling", action="store_true",
                        help="the data-scaling study: RMSE against training-window budgets, 12 patients pooled, MS, "
                             "3 seeds (comparison/scaling.py)")
    p.add_argument("--budgets", default=None,
                   help="with --scaling: comma-separated training-window budgets and/or 'full' (default "
                        "1000,4000,16000,64000)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--plan", action="store_true", help="print the cells and their estimated time; train nothing")
    mode.add_argument("--merge", action="store_true",
                      help="join every shard table in --out into tidy.csv and write the report; train nothing")
    mode.add_argument("--report", action="store_true", help="rewrite the report from --out's tables; train nothing")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="run only the cells at positions I, I+N, I+2N, ... of the ordered grid (1-based); 'auto' "
                        "under accelerate launch / torchrun: each process its own shard (RANK+1 of WORLD_SIZE)")
    add_config_flags(p, GridFlags, only=("models", "backbones"))
    add_config_flags(p, ModelConfig, only=("llm_path",), notes={"llm_path": "only with a single backbone"})
    add_config_flags(p, GridFlags, only=("patients", "pooled", "seeds"))
    # --random-backbone / --no-random-backbone: on or off, unset = the preset's
    p.add_argument(*spellings("random_backbone"), action=argparse.BooleanOptionalAction, default=None,
                   help=_declared_help("random_backbone"))
    # not a BooleanOptionalAction: it reads any spelling that starts with --no- as "off", this one included
    p.add_argument(*spellings("no_prompt_ablation"), action="store_const", const=True, default=None,
                   help=_declared_help("no_prompt_ablation"))
    p.add_argument(*spellings("no_no_prompt_ablation"), dest="no_prompt_ablation", action="store_const", const=False,
                   default=None, help="leave that row out, in presets too")
    add_config_flags(p, DataConfig, only=("data", "root_path", "max_train_windows", "max_val_windows", "train_draw"),
                     notes={"train_draw": "fixed reproduces the reports made before per-epoch draws",
                            "max_train_windows": "default: the preset's; with --standard each model family's",
                            "max_val_windows": "default: the preset's; with --standard each model family's"})
    add_config_flags(p, GridFlags, only=("features", "epochs"))
    recipe = "with --standard each recipe's"
    add_config_flags(
        p, TrainConfig, only=("batch_size", "eval_batch_size", "learning_rate", "patience", "mixed_precision"),
        defaults=dict.fromkeys(("batch_size", "learning_rate", "patience", "mixed_precision")),
        notes={"batch_size": f"default 32; {recipe}", "learning_rate": f"default 1e-3; {recipe}",
               "patience": f"default 3; {recipe}",
               "mixed_precision": "default no (fp32 on every CPU, so a grid resumed on another machine keeps its cells)"})
    p.add_argument(*spellings("runs_dir"), default=None,
                   help="run folders (default checkpoints/compare/<out folder name>)")
    return p


def _declared_help(name: str) -> str:
    """The help a ``GridFlags`` field declares, for the flags whose on/off spellings the parser builds by hand."""
    return next(f for f in dataclasses.fields(GridFlags) if f.name == name).metadata[FLAG].help


def grid_flags(args: argparse.Namespace) -> GridFlags:
    """What the parsed flags ask of the grid, as the comparison package takes it: each ``GridFlags`` field by its
    flag, and the window caps that were given (0 given means no cap; one not given is left to the preset)."""
    given = given_flags(args)
    return GridFlags(**{f.name: getattr(args, f.name) for f in dataclasses.fields(GridFlags) if f.name != "caps"},
                     caps={name: getattr(args, name) for name in WINDOW_CAPS if name in given})


def scaling_grid(args: argparse.Namespace, runs_dir: Path):
    """The scaling study's grid (``comparison.scaling``) from the flags, and each cell's budget."""
    from comparison import scaling
    from comparison.grid import PRESETS, choose_patients, parse_seeds
    from comparison.settings import SHARED_TRAIN, backbone_names
    from data_provider.data_factory import dataset_name

    backbones = backbone_names(grid_flags(args))
    if len(backbones) > 1:
        raise LLMTimeError("--scaling studies one backbone: pass a single --backbones name")
    precision = args.mixed_precision or SHARED_TRAIN["mixed_precision"]  # fp32, as every grid: see settings
    base = scaling.base_config(dataset_name(args.data), args.root_path, args.llm_path, runs_dir, precision)
    patients = choose_patients(args.patients, PRESETS["standard"], base.data)
    seeds = parse_seeds(args.seeds, PRESETS["standard"])
    return scaling.build_grid(base, backbones[0], patients, seeds, scaling.parse_budgets(args.budgets), args.models)


def grid_command(argv: list[str]) -> str:
    """The command that defines the grid: ``argv`` without the flags that only choose what this call does."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--shard":
            skip = True
        elif arg not in ("--plan", "--merge", "--report") and not arg.startswith("--shard="):
            kept.append(arg)
    return f"{PROG} {shlex.join(kept)}".strip()


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = f"{PROG} {shlex.join(argv)}"

    def body() -> int:
        from comparison.costs import plan_text
        from comparison.grid import in_shard, parse_shard
        from comparison.report import write_reports
        from comparison.scaling import write_report as write_scaling
        from comparison.runner import run_grid
        from comparison.settings import build_grid
        from comparison.tables import merge, table_names

        args = build_parser().parse_args(argv)
        preset = ("standard" if args.standard else "scaling" if args.scaling else "quick" if args.quick
                  else "full" if args.full else "custom")
        if args.out is None and preset not in DEFAULT_OUT:
            raise LLMTimeError("--out is required (only --standard and --scaling have defaults, "
                               f"{DEFAULT_OUT['standard']} and {DEFAULT_OUT['scaling']})")
        if args.budgets is not None and preset != "scaling":
            raise LLMTimeError("--budgets belongs to --scaling")
        if args.shard is not None and (args.merge or args.report):
            raise LLMTimeError("--merge and --report read every shard of --out: leave out --shard")
        shard = None
        if args.shard == "auto":
            from comparison.launch import launcher_shard

            shard = launcher_shard()
        elif args.shard is not None:
            shard = parse_shard(args.shard)
        out = Path(args.out) if args.out is not None else DEFAULT_OUT[preset]
        runs_dir = Path(args.runs_dir) if args.runs_dir else Path("checkpoints") / "compare" / out.name
        report_command = grid_command(argv)
        if preset == "scaling":
            grid, budget_of = scaling_grid(args, runs_dir)

            def report() -> str:
                return write_scaling(out, grid, budget_of, report_command)
        else:
            grid = build_grid(grid_flags(args), preset, runs_dir)

            def report() -> str:
                return write_reports(out, grid, report_command)
        positions = list(range(1, len(grid.cells) + 1))
        cells = grid.cells
        if shard is not None:
            cells, positions = in_shard(cells, *shard), in_shard(positions, *shard)
        if args.plan:
            print(plan_text(cells, positions, len(grid.cells), f"shard {shard[0]} of {shard[1]}" if shard else ""))
            return 0
        if args.merge:
            runs, shards = merge(out)
            print(f"merged {shards} shard table(s) of {out}: {runs} runs in {out / 'tidy.csv'}")
        if args.merge or args.report:
            print(report())
            return 0
        out.mkdir(parents=True, exist_ok=True)
        if shard is not None:
            run_grid(cells, out, command, shard)
            print(f"shard {shard[0]} of {shard[1]} done: rows in {out / table_names(shard)[0]}; once every shard is "
                  f"done, join them: {report_command} --merge")
            return 0
        run_grid(cells, out, command, after_cell=report)
        print(report())
        print(f"outputs: {out}  (run folders: {runs_dir})")
        return 0

    return run_cli(body, "interrupted: finished cells are kept in the tidy tables; run the same command to continue")


if __name__ == "__main__":
    sys.exit(main())
