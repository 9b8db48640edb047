"""Regenerate the bundled simulated cohort (``dataset/simulated``) and its README.

Run from the repository root::

    python -m scripts.generate_cohort --out dataset/simulated --patients 12 --train_days 56 --test_days 10 \\
        --seed 2024 --workers 2

Patients are simulated in parallel processes (one patient per task); the files depend only on the seed and the day
counts, never on the number of workers. The README written next to the files records the command and each patient's
coverage and persistence baseline, so the bundled data documents itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Sequence

from data_provider.cohort_files import PatientSummary, generate_patient
from data_provider.simulate import SENSOR, VIRTUAL_PATIENTS, WARMUP_DAYS, PatientSpec, cohort_specs
from utils.cli import OneLineArgumentParser, run_cli, spellings
from utils.errors import LLMTimeError
from utils.io import write_text
from utils.progress import progress


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="python -m scripts.generate_cohort", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="dataset/simulated", help="folder for the .xml.gz files and README.md")
    parser.add_argument("--patients", type=int, default=12, help=f"number of patients, 1-{len(VIRTUAL_PATIENTS)}")
    parser.add_argument(*spellings("train_days"), type=float, default=56.0, help="days in each training file")
    parser.add_argument(*spellings("test_days"), type=float, default=10.0,
                        help="days in each testing file (follows training)")
    parser.add_argument("--seed", type=int, default=2024, help="cohort seed; each patient's seed is derived from it")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (does not change the files)")
    return parser


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.patients <= len(VIRTUAL_PATIENTS):
        raise LLMTimeError(f"--patients must be 1-{len(VIRTUAL_PATIENTS)} (one per simglucose virtual patient)")
    if not args.train_days > 0 or not args.test_days > 0:
        raise LLMTimeError("--train_days and --test_days must be positive")
    if args.seed < 0:
        raise LLMTimeError("--seed must be a non-negative integer")
    if args.workers < 1:
        raise LLMTimeError("--workers must be at least 1")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise LLMTimeError(f"--out {args.out} is a file: pass a folder")


def _command(args: argparse.Namespace) -> str:
    return (f"python -m scripts.generate_cohort --out {args.out} --patients {args.patients} "
            f"--train-days {args.train_days:g} --test-days {args.test_days:g} --seed {args.seed} "
            f"--workers {args.workers}")


def run_cohort(specs: Sequence[PatientSpec], out: Path, workers: int) -> list[PatientSummary]:
    """Simulate and write every patient, in worker processes when more than one is asked for."""
    bar = progress(total=len(specs), unit="patient", desc="simulating")
    summaries: list[PatientSummary] = []
    if workers == 1:
        for spec in specs:
            summaries.append(generate_patient(spec, out))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(specs))) as pool:
            futures = [pool.submit(generate_patient, spec, out) for spec in specs]
            for future in as_completed(futures):
                summaries.append(future.result())
                bar.update()
    bar.close()
    return sorted(summaries, key=lambda s: s.patient_id)


def _table(summaries: Sequence[PatientSummary]) -> str:
    head = ("| Patient | simglucose patient | CGM points train | CGM points test | Missing % | Persistence RMSE30 "
            "| Persistence RMSE60 | Mean mg/dL | < 70 % | > 180 % |")
    rows = [head, "|" + "---|" * 10]
    for s in summaries:
        rows.append(f"| {s.patient_id} | {s.virtual_patient} | {s.cgm_train} | {s.cgm_test} | {s.missing_pct:.1f} "
                    f"| {s.rmse30:.1f} | {s.rmse60:.1f} | {s.mean_glucose:.0f} | {s.below70_pct:.1f} "
                    f"| {s.above180_pct:.1f} |")
    n = len(summaries)

    def mean(attr: str) -> float:
        return sum(getattr(s, attr) for s in summaries) / n

    rows.append(f"| **mean** | | {mean('cgm_train'):.0f} | {mean('cgm_test'):.0f} | {mean('missing_pct'):.1f} "
                f"| **{mean('rmse30'):.1f}** | **{mean('rmse60'):.1f}** | {mean('mean_glucose'):.0f} "
                f"| {mean('below70_pct'):.1f} | {mean('above180_pct'):.1f} |")
    return "\n".join(rows)


def render_readme(args: argparse.Namespace, summaries: Sequence[PatientSummary]) -> str:
    """The cohort README: how the files were made, what is in them, and the per-patient table."""
    first, last = summaries[0].patient_id, summaries[-1].patient_id
    return f"""# Simulated OhioT1DM-style cohort

{len(summaries)} virtual people with type 1 diabetes (ids {first}-{last}), simulated with
[simglucose](https://github.com/jxx123/simglucose) 0.2.11 (UVa/Padova T1D simulator) and written in the OhioT1DM XML
layout, so the same reader and pipeline run on it as on the licensed OhioT1DM data. Files:
`<id>-ws-training.xml.gz` ({args.train_days:g} days) and `<id>-ws-testing.xml.gz` (the following
{args.test_days:g} days, continuous in time, as in OhioT1DM).

Made with (from the repository root; the number of workers does not change the files):

```
{_command(args)}
```

The same command with the same seed rewrites byte-identical files. Code: `data_provider/simulate.py`.

## How they were simulated

- **Physiology**: simglucose's virtual patients {summaries[0].virtual_patient} to {summaries[-1].virtual_patient}
  (adults first), its ODE stepped every minute, after {WARMUP_DAYS:g} unrecorded warm-up day.
- **Pump and dosing**: the pump runs a basal profile (four segments a day) around the patient's steady-state basal,
  mis-tuned per patient (x0.85-1.05), in 0.025 U/h steps. Meal boluses come from a bolus wizard: the patient's carb
  estimate (lognormal error, sigma 0.25-0.4 by patient, rounded to 5 g) over a carb ratio that is 10-40% too weak,
  plus a correction to 120 mg/dL minus insulin on board (4 h). Boluses are missed for 5-20% of main meals and
  30-70% of snacks, given 10-30 min late for 20-45% of meals, sometimes 5-20 min early. High readings (> 220 mg/dL,
  no bolus for 2.5 h) sometimes get a correction bolus. About half the patients use threshold suspend (basal stops
  for 30-120 min at a reading <= 65, written as `temp_basal` 0).
- **Meals**: breakfast, lunch and dinner around 07:30, 12:30 and 19:00 (per-patient spread of 20-60 min) with
  patient-specific size and day-to-day variation, plus 0-2 snacks of 10-30 g. Logged meals carry the patient's
  estimate, not the truth; 5% of meals and 30% of snacks are not logged. Lows are treated with 15-25 g of fast carbs
  (logged as `HypoCorrection` 60% of the time).
- **Sensor**: simglucose's {SENSOR} noise model (scaled x0.7-0.9 by patient), values rounded and clipped to
  40-400 mg/dL. Sensors are changed every 7-10 days (1-2 h without readings); dropouts of 10 min to 4 h (median
  40 min) occur 0.4-1.8 times a day by patient. After every gap the 5-minute cadence restarts at a new random
  offset, so timestamps are not on clock marks (as in OhioT1DM). Finger sticks (plasma glucose +-4%) precede many
  boluses and hypo treatments.
- **Not simulated**: exercise, sleep, work, stress, illness and wearable (Basis/Empatica) signals; those lists
  are present and empty. Dates are fictional (2025-2026), day-first as in OhioT1DM.

Patients differ in difficulty: one per-patient draw moves meal variability, carb-count error, missed and late
boluses, snacks and dropouts together, and the virtual patients themselves differ in insulin sensitivity.

## Per-patient statistics

CGM points per file; missing = share of 5-minute slots without a reading over training + testing. Persistence RMSE
(mg/dL): each test-file reading, from 60 min after the file's first reading on, predicted by the reading 30 / 60 min
earlier on the 5-minute grid (the last reading at or before that time across gaps). OhioT1DM's persistence baseline
is about 22.5 (30 min) and 36.6 (60 min) averaged over its patients. Mean, < 70 and > 180 are over all CGM readings.

{_table(summaries)}
"""


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        _check(args)
        out = Path(args.out)
        specs = cohort_specs(args.patients, args.train_days, args.test_days, args.seed)
        started = time.monotonic()
        summaries = run_cohort(specs, out, args.workers)
        write_text(out / "README.md", render_readme(args, summaries))
        print(f"wrote {2 * len(summaries)} files and README.md to {out} in {time.monotonic() - started:.0f} s")
        return 0

    return run_cli(body, "interrupted: each patient file written so far is complete and README.md comes last; rerun "
                         "the same command (the same seed gives the same files)")


if __name__ == "__main__":
    sys.exit(main())
