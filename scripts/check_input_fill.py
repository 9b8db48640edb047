"""Does training on carried-forward inputs help? Ridge trained both ways, scored on the same test-like validation.

    python -m scripts.check_input_fill [--features MS] [--patients all]

Ridge (closed form, so the comparison takes seconds and no training noise enters) is fit once on training windows cut
with ``--input_fill linear`` (gaps up to 30 min interpolated, longer gaps break windows: the old behaviour) and once
with ``--input_fill carry`` (every gap carried forward, as BGLP test inputs are, with the filled-input marker). Both
are scored on the validation windows cut the carry way, which is how test windows look, in mg/dL at 30 and 60
minutes: on all of them and on those holding more than 30 minutes of carried-forward input.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from configs import DataConfig, ModelConfig
from configs.flags import add_config_flags
from utils.cli import OneLineArgumentParser, run_cli

LONG_GAP_STEPS = 6  # more than 30 minutes of carried-forward input


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        p = OneLineArgumentParser(prog="python -m scripts.check_input_fill", description=__doc__.splitlines()[0])
        p.add_argument("--features", default="MS", choices=["S", "MS"], help="S: glucose; MS: + basal, bolus, carbs")
        add_config_flags(p, DataConfig, only=("patients",))
        args = p.parse_args(argv)
        from data_provider.data_factory import build_splits
        from models import build_model

        base = DataConfig(patients=args.patients, covariates=args.features == "MS")
        carry = build_splits(dataclasses.replace(base, input_fill="carry"))
        val = carry.val.__getitems__(list(range(len(carry.val))))
        long_gap = val["x"][..., -1].sum(dim=1).numpy() > LONG_GAP_STEPS  # the filled marker is the last channel
        std = float(carry.scaler.std[0])
        print(f"validation windows (carry-filled, as test inputs are): {len(carry.val):,}, of which "
              f"{int(long_gap.sum()):,} hold > 30 min of carried-forward input")
        for fill in ("linear", "carry"):
            splits = carry if fill == "carry" else build_splits(dataclasses.replace(base, input_fill=fill),
                                                                scaler=carry.scaler)
            model = build_model(ModelConfig(model="Ridge"), dataclasses.replace(base, input_fill=fill), carry.scaler, "")
            model.fit_closed_form(splits.train)
            with np.errstate(all="ignore"):
                pred = model(val["x"]).detach().numpy()
            err = (pred - val["y"].numpy()) * std
            cells = []
            for minutes, step in ((30, 6), (60, 12)):
                rmse = np.sqrt(np.mean(err[:, step - 1] ** 2))
                rmse_long = np.sqrt(np.mean(err[long_gap, step - 1] ** 2)) if long_gap.any() else float("nan")
                cells.append(f"RMSE{minutes} {rmse:.2f} (long-gap windows {rmse_long:.2f})")
            print(f"Ridge trained with --input_fill {fill:<6} ({len(splits.train):,} training windows): "
                  + "; ".join(cells) + " mg/dL")
        return 0

    return run_cli(body, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
