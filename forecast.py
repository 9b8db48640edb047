"""Forecast a new CGM recording with a saved run: 30 and 60 minutes ahead from every full 6-hour window.

    python forecast.py --checkpoint checkpoints/RUN --input my_cgm.csv    # timestamp,glucose in mg/dL or mmol/L
    python forecast.py --checkpoint checkpoints/RUN --input entries.csv --csv_columns timestamp=dateString,glucose=sgv
    python forecast.py --checkpoint checkpoints/RUN --input 540-ws-testing.xml.gz --output out/540.csv

Writes the forecast table (CSV) and a plot of the most recent two days (PNG, beside the CSV). The same runs through
``python run_main.py --is_training 0 --checkpoint RUN --input FILE``. User errors print one line and exit with 2,
Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from configs import DataConfig, RunConfig
from configs.flags import add_config_flags
from utils.cli import OneLineArgumentParser, run_cli
from utils.errors import LLMTimeError


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="python forecast.py", description=__doc__.split("\n\n")[0])
    actions = add_config_flags(p, RunConfig, only=("checkpoint", "input", "output"))
    actions["checkpoint"].required = actions["input"].required = True
    add_config_flags(p, DataConfig, only=("csv_columns",), notes={"csv_columns": "for a CSV --input"})
    p.add_argument("--units", default="auto", choices=["mgdl", "mmol", "auto"],
                   help="glucose units of --input; auto: a median below 35 = mmol/L")
    p.add_argument("--batch_size", "--batch-size", type=int, default=64, help="windows per forward pass")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        if args.batch_size < 1:
            raise LLMTimeError(f"--batch_size must be >= 1, got {args.batch_size}")
        from exp.forecast import forecast_file

        print(forecast_file(args.checkpoint, args.input, args.output, args.units, args.batch_size,
                            args.csv_columns).summary())
        return 0

    return run_cli(body, "interrupted: the forecast CSV is written whole or not at all; run the command again")


if __name__ == "__main__":
    sys.exit(main())
