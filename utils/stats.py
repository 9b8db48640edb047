"""Paired tests across patients and their multiplicity correction: the one rule every report states.

A paired comparison is a list of per-patient differences (one model's RMSE minus another's, each patient's seeds
averaged first: patients, not runs, are the independent unit). Its p-value is the two-sided Wilcoxon signed-rank
test's (scipy's default: patients with no difference drop out), which needs no normality of the differences that a
dozen patients could not show. Two edge cases have a fixed answer:

- fewer than ``MIN_PAIRS`` pairs: NaN, not tested. The smallest exact two-sided p of n pairs is 2 / 2**n, so below
  six pairs no result could reach ``ALPHA``; such a comparison also stays out of the correction's family instead of
  diluting it;
- every difference zero: 1.0, the data show no difference at all.

A report states many tests at once (every row against the reference, at 30 and 60 min), and at ``ALPHA`` = 0.05 one
in twenty of them comes out "significant" by chance alone. So a report corrects its whole family of p-values with
Holm's step-down method (``holm``), which holds the chance of any false call at ``ALPHA`` without assuming the tests
independent, and calls a difference a win or a loss only when its corrected p is below ``ALPHA`` (``significant``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

ALPHA = 0.05  # two-sided significance level, applied to Holm-corrected p-values
MIN_PAIRS = 6  # smallest n whose exact two-sided signed-rank p-value can be < 0.05 (2 / 2**6)


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of two aligned series of RMSEs, first minus second."""

    n: int  # pairs with both values
    lower: int  # pairs where the first is lower
    higher: int  # pairs where the first is higher
    mean_diff: float  # mean of first minus second; NaN without pairs
    p: float  # two-sided Wilcoxon signed-rank; NaN below MIN_PAIRS pairs, 1.0 when every difference is zero


def paired_test(differences: Iterable[float]) -> PairedTest:
    """The paired test of per-patient ``differences`` (missing values dropped), by the rule of this module."""
    diff = np.asarray([d for d in differences if d is not None and not math.isnan(d)], dtype=float)
    n = len(diff)
    if n < MIN_PAIRS:
        p = math.nan
    elif not np.any(diff != 0):
        p = 1.0
    else:
        from scipy.stats import wilcoxon  # deferred: scipy is only needed once there is something to test

        p = float(wilcoxon(diff).pvalue)
    return PairedTest(n, int((diff < 0).sum()), int((diff > 0).sum()), float(diff.mean()) if n else math.nan, p)


def holm(pvalues: Sequence[Optional[float]]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given.

    The k-th smallest of the m defined p-values is multiplied by (m - k + 1), each adjusted value is at least the one
    before it in that order (so the adjustment keeps the ranking of the raw values), and none exceeds 1. None and NaN
    are not tests: they stay NaN and do not count in m.
    """
    defined = [(p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(defined)):
        running = max(running, min(1.0, (len(defined) - rank) * p))
        out[i] = running
    return out


def significant(p_holm: Optional[float]) -> bool:
    """Whether a corrected p-value calls a difference (below ``ALPHA``); an untested one never does."""
    return p_holm is not None and not math.isnan(p_holm) and p_holm < ALPHA
