"""What the forecast horizon's logged meals, boluses and basal are worth, measured in seconds: Ridge in closed form on
every training window of the standard distillation report's data, history-only (the report's Ridge (MS) reference)
against the same Ridge given the privileged view (``horizon_events``: the log within the horizon, never future
glucose). A closed-form fit on every window draws nothing at random, so one seed's folder (the report's first) holds
it for all.

The privileged teacher of the standard report (``distillation/standard.py``) reads the same view; a 6-layer Time-LLM
takes hours per seed on two CPU cores, a ridge regression a minute. So before those hours are spent this says how much
room the privileged information leaves on these data for a model as simple as a linear one: a small gap would mean
the privileged teacher has little to pass on; a large one is the ceiling a history-only student chases.

    python -m scripts.privileged_ridge                       # table on stdout and in checkpoints/
    python -m scripts.privileged_ridge --out docs/results/privileged_ridge.md   # the published page

Runs go to the report's first seed folder (``reference_Ridge``, ``reference_Ridge-privileged``), so the report reuses
its reference; finished runs are reused here too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from utils.cli import OneLineArgumentParser, run_cli
from utils.io import write_text

if TYPE_CHECKING:
    from distillation.config import PipelineConfig

DEFAULT_OUT = Path("checkpoints") / "privileged_ridge.md"


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m scripts.privileged_ridge", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"Markdown table (default {DEFAULT_OUT})")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: measure(Path(args.out)),
                   "interrupted: finished fits are kept in their run folders; run the same command to continue")


def measure(out: Path, cfg: Optional["PipelineConfig"] = None) -> int:
    """Fit, test and tabulate both views on ``cfg``'s data (default: the standard report's first configuration)."""
    # deferred: they load torch and the data stack, which --help does not need
    from distillation.references import RIDGE_RUN, ridge_config
    from distillation.standard import standard_configs
    from exp.run import train_and_test
    from scripts.distillation_comparison import build_parser as report_parser, shared_config
    from utils.cgm import NAMED_HORIZONS_MIN

    cfg = cfg or standard_configs(shared_config(report_parser().parse_args(["--standard"])))[0]
    history = ridge_config(cfg)
    privileged = dataclasses.replace(history, data=dataclasses.replace(history.data, horizon_events=True))
    lines = ["| view | validation MSE (scaled) | " + " | ".join(f"RMSE{m}" for m in NAMED_HORIZONS_MIN) + " |",
             "|---|---|" + "---|" * len(NAMED_HORIZONS_MIN)]
    for view, run_cfg, name in (("history only (Ridge (MS))", history, RIDGE_RUN),
                                ("privileged (+ the horizon's logged events)", privileged, f"{RIDGE_RUN}-privileged")):
        row = train_and_test(run_cfg, name=name, reuse=True).row
        lines.append(f"| {view} | {row['best_val_loss']:.4f} | "
                     + " | ".join(f"{row[f'rmse_{m}']:.2f}" for m in NAMED_HORIZONS_MIN) + " |")
        print(lines[-1], flush=True)
    text = ("# Ridge with and without the horizon's logged events\n\n"
            f"Command: `python -m scripts.privileged_ridge --out {out}`. Ridge in closed form "
            "on every training window of the standard distillation report's data (12 bundled patients pooled, "
            "`--features MS`), tested on every test window; RMSE in mg/dL. The privileged view adds the basal, "
            "boluses and carbs logged within the forecast horizon as input channels (never future glucose): what "
            "the report's privileged teacher reads, and no deployable model can.\n\n" + "\n".join(lines) + "\n\n"
            "Persistence on the same test windows: " + " / ".join(f"{row[f'persistence_rmse_{m}']:.2f}"
                                                                  for m in NAMED_HORIZONS_MIN) + " mg/dL.\n")
    write_text(out, text)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
