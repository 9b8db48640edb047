"""Missing-data and noise scenarios: seeded transforms of the model's glucose *inputs* only.

The scored truth stays clean: targets are always taken from the untouched readings, so a scenario measures how a
forecaster copes with degraded input, not how well it predicts corrupted values. After a transform, the usual input
rules apply (short gaps filled for training, carry-forward for test), so removed points behave like sensor dropouts.
"""

from __future__ import annotations

import numpy as np

from utils.errors import LLMTimeError

SCENARIOS = ("none", "random", "periodic")
PERIODIC_BLOCK_STEPS = 12  # one hour blocks: a realistic dropout length that also breaks short-gap filling


def apply_scenario(glucose: np.ndarray, missing: str, rate: float, noise_std: float, seed: int) -> np.ndarray:
    """Return a degraded copy of a glucose series (mg/dL, NaN = missing).

    - ``random``: each reading is removed independently with probability ``rate``.
    - ``periodic``: blocks of one hour are removed at a regular period so that ``rate`` of the time is missing.
    - ``noise_std``: zero-mean Gaussian noise (mg/dL) added to the remaining readings.
    """
    if missing not in SCENARIOS:
        raise LLMTimeError(f"unknown --missing scenario {missing!r}; choose one of {', '.join(SCENARIOS)}")
    if not 0.0 <= rate < 1.0:
        raise LLMTimeError(f"--missing_rate must be in [0, 1), got {rate}")
    if noise_std < 0:
        raise LLMTimeError(f"--noise_std must be >= 0 mg/dL, got {noise_std}")
    out = glucose.astype(float, copy=True)
    rng = np.random.default_rng(seed)
    if missing == "random" and rate > 0:
        out[rng.random(len(out)) < rate] = np.nan
    elif missing == "periodic" and rate > 0:
        period = int(round(PERIODIC_BLOCK_STEPS / rate))
        phase = int(rng.integers(period))
        in_block = (np.arange(len(out)) + phase) % period < PERIODIC_BLOCK_STEPS
        out[in_block] = np.nan
    if noise_std > 0:
        out = out + rng.normal(0.0, noise_std, len(out))
    return out
