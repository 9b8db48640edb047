"""Sweep training recipes on validation (never test): one CSV row per grid point, learning curves, a summary.

    python -m scripts.tune --model TimeLLM --features MS --grid learning_rate=1e-3,3e-3 batch_size=32,128 \\
        --set max_train_windows=3000 max_val_windows=1000 train_epochs=12 patience=3 mixed_precision=bf16

Grid and --set keys are the field names of the run configuration (``configs/schema.py``: DataConfig, ModelConfig,
TrainConfig). Finished points are skipped on a rerun, so a sweep left running in the background resumes where it
stopped. The chosen recipes live in ``exp/recipes.py``; docs/results/recipes.md gives the commands that chose them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from configs import ModelConfig, RunConfig
from configs.flags import add_config_flags, check_config
from utils.cli import OneLineArgumentParser, run_cli


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="python -m scripts.tune", description=__doc__.splitlines()[0])
    add_config_flags(p, ModelConfig, only=("model",), defaults={"model": None})["model"].required = True
    p.add_argument("--features", default="S", choices=["S", "MS"], help="S: glucose; MS: + basal, bolus, carbs")
    p.add_argument("--grid", nargs="*", default=[], help="key=v1,v2 ... settings to sweep (every combination)")
    p.add_argument("--set", nargs="*", default=[], dest="fixed", help="key=value settings held fixed")
    p.add_argument("--out", default="checkpoints/recipes/sweep.csv",
                   help="sweep CSV (appended, resumable); the published sweeps pass docs/results/recipes/...")
    p.add_argument("--from_recipe", "--from-recipe", type=int, choices=(0, 1), default=0,
                   help="1: start every point from the model's recipe (exp/recipes.py), then --set and --grid; 0: "
                        "from the configuration defaults (default 0)")
    p.add_argument("--extend_edges", "--extend-edges", type=int, choices=(0, 1), default=1,
                   help="1: while the winner sits on an edge of a numeric grid key, add the next value past it (the "
                        "grid's own ratio) and sweep again, until it is interior (default 1)")
    return p


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        from exp.tuning import (draw_best_curves, extend_to_interior, grid_points, parse_assignments,
                                summary_table, sweep, with_settings)

        fixed = {k: v[0] for k, v in parse_assignments(args.fixed, many=False).items()}
        base = with_settings(RunConfig(), {"model": args.model, "covariates": args.features == "MS", **fixed})
        if args.from_recipe:  # the recipe under the fixed settings, so a sweep varies one choice of a chosen recipe
            from exp.recipes import apply_recipe

            given = {k: getattr(base.train, k) for k in fixed if hasattr(base.train, k)}
            base = dataclasses.replace(base, train=apply_recipe(base.train, base.model.model, given))
        grid = parse_assignments(args.grid, many=True)
        for point in grid_points(grid):  # every point's values within their fields' bounds before any training
            check_config(with_settings(base, point))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if args.extend_edges:
            rows, grid, notes = extend_to_interior(base, grid, out, check_config)
        else:
            rows, notes = sweep(base, grid, out), []
        for path in draw_best_curves(rows, out.parent):
            print(f"curve: {path}")
        print(summary_table(rows))
        for note in notes:
            print(f"warning: {note}: widen the grid by hand or read the winner as a bound, not an optimum")
        return 0

    return run_cli(body, "interrupted: finished grid points are in the CSV; rerun the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
