"""Forecast a new CGM recording with a saved run: 30 and 60 minutes ahead from every full 6-hour window.

    python forecast.py --checkpoint checkpoints/RUN --input my_cgm.csv    # timestamp,glucose in mg/dL or mmol/L
    python forecast.py --checkpoint checkpoints/RUN --input 540-ws-testing.xml.gz --output out/540.csv

Writes the forecast table (CSV) and a plot of the most recent two days (PNG, beside the CSV). The same runs through
``python run_main.py --is_training 0 --checkpoint RUN --input FILE``. User errors print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Optional, Sequence

from utils.errors import USER_ERROR_EXIT, LLMTimeError


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (via LLMTimeError), like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise LLMTimeError(f"{message} (see python forecast.py --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python forecast.py", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="run folder written by a training run (or its checkpoint.pt)")
    p.add_argument("--input", required=True, help="OhioT1DM .xml / .xml.gz, or a CSV with columns timestamp,glucose")
    p.add_argument("--output", default=None,
                   help="forecast CSV (default <input name>_forecast.csv here); the PNG goes beside it")
    p.add_argument("--units", default="auto", choices=["mgdl", "mmol", "auto"],
                   help="glucose units of --input; auto: all values below 35 = mmol/L")
    p.add_argument("--batch_size", type=int, default=64, help="windows per forward pass")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.batch_size < 1:
            raise LLMTimeError(f"--batch_size must be >= 1, got {args.batch_size}")
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        from run_main import one_line_warning

        warnings.formatwarning = one_line_warning
        from exp.forecast import forecast_file

        print(forecast_file(args.checkpoint, args.input, args.output, args.units, args.batch_size).summary())
        return 0
    except LLMTimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
