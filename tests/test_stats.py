"""The one paired test and its multiplicity correction (utils/stats.py), and the two reports that state them: the
standard comparison (comparison/stats.py) and the standard distillation report (distillation/summary.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from comparison import stats as comparison_stats
from distillation.compare import pair_label
from distillation.answers import standard_markdown
from distillation.summary import summarise_standard
from utils.stats import MIN_PAIRS, holm, paired_test, significant

# Twelve patients whose raw signed-rank p is 0.034 (significant alone) and twelve whose p is 0.66: corrected
# together, 0.034 becomes 2 x 0.034 = 0.068, no longer below 0.05.
RAW_ONLY = [0.1, -0.2, -0.3, -0.4, -0.5, -0.6, -0.7, -0.8, -0.9, -1.0, 1.1, -1.2]
NOISE = [-1.0, 0.8, -0.5, 0.6, -0.9, 0.4, -0.3, 0.2, -0.7, 0.5, -0.2, 0.1]


def test_holm_matches_a_hand_worked_example():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_skips_missing_values_and_caps_at_one():
    adjusted = holm([0.01, None, math.nan, 0.04, 0.03, 0.005])
    assert math.isnan(adjusted[1]) and math.isnan(adjusted[2])  # not tests: they stay blank and do not count
    assert [adjusted[i] for i in (0, 3, 4, 5)] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0] and holm([]) == [] and holm([0.2]) == [0.2]
    raw = [0.001, 0.2, 0.03, 0.04, 0.9]
    order = np.argsort(raw)
    assert np.all(np.diff(np.asarray(holm(raw))[order]) >= 0)  # the ranking of the raw values is kept


def test_the_paired_test_has_one_rule_for_few_pairs_and_for_no_difference():
    assert math.isnan(paired_test([1.0, 2.0, 3.0, 4.0, 5.0]).p)  # five pairs: 2/32 at best, never below 0.05
    six = paired_test([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, math.nan])  # a missing value is no pair
    assert (six.n, six.lower, six.higher, six.mean_diff) == (6, 6, 0, -3.5) and six.p == pytest.approx(2 / 64)
    assert paired_test([0.0] * MIN_PAIRS).p == 1.0
    assert paired_test(NOISE).p == pytest.approx(wilcoxon(NOISE).pvalue)
    assert significant(0.049) and not significant(0.05) and not significant(math.nan) and not significant(None)


def _comparison_rows(diffs30, diffs60, other="DLinear (S)"):
    rows = []
    for i, (d30, d60) in enumerate(zip(diffs30, diffs60)):
        base = 20.0 + i
        rows += [{"label": "TimeLLM (MS)", "patient": str(1001 + i), "seed": 2021, "rmse_30": base + d30,
                  "rmse_60": base + 8 + d60},
                 {"label": other, "patient": str(1001 + i), "seed": 2021, "rmse_30": base, "rmse_60": base + 8}]
    return pd.DataFrame(rows)


def _distillation_rows(diffs30, diffs60):
    n = len(diffs30)
    base = 20.0 + np.arange(n)
    return pd.DataFrame({
        "teacher": "MiniLM", "student": "MiniLM", "teacher_layers": 6, "student_layers": 2,
        "teacher_weights": "pretrained", "student_weights": "pretrained",
        "patient": [str(1001 + k) for k in range(n)], "seed": 2021,
        "teacher_rmse_30": 19.0, "baseline_rmse_30": base, "distilled_rmse_30": base + np.asarray(diffs30),
        "persistence_rmse_30": 25.0, "teacher_rmse_60": 27.0, "baseline_rmse_60": base + 8,
        "distilled_rmse_60": base + 8 + np.asarray(diffs60), "persistence_rmse_60": 33.0,
        "alpha": 0.5, "beta": 0.5, "gamma": 0.0})


def test_both_reports_give_the_same_p_for_the_same_differences():
    tests = comparison_stats.family(_comparison_rows(RAW_ONLY, NOISE), "TimeLLM (MS)",
                                    ["TimeLLM (MS)", "DLinear (S)"])
    r = summarise_standard(_distillation_rows(RAW_ONLY, NOISE), pair_label).iloc[0]
    for h in (30, 60):
        c = tests[("DLinear (S)", h)]
        assert c.p == pytest.approx(r[f"p_raw_{h}"])
        assert c.p_holm == pytest.approx(r[f"p_holm_{h}"])
    assert tests[("DLinear (S)", 30)].p == pytest.approx(wilcoxon(RAW_ONLY).pvalue)


def test_a_raw_significant_difference_that_holm_does_not_keep_cannot_be_told_apart():
    assert wilcoxon(RAW_ONLY).pvalue < 0.05
    tests = comparison_stats.family(_comparison_rows(RAW_ONLY, NOISE), "TimeLLM (MS)", ["DLinear (S)"])
    c = tests[("DLinear (S)", 30)]
    assert c.p < 0.05 <= c.p_holm and comparison_stats.outcome(c) == "level"
    assert comparison_stats.statement(c).startswith("TimeLLM (MS) cannot be told apart from DLinear (S) at 30 min "
                                                    "(lower RMSE on 10 of 12 patients")
    assert comparison_stats.statement(c).endswith(f"p = {c.p:.3f}, Holm-corrected p = {c.p_holm:.3f}).")
    assert comparison_stats.verdict(tests, "TimeLLM (MS)", 30) == (
        "At 30 min (Wilcoxon across patients, Holm-corrected over 2 tests, p < 0.05), TimeLLM (MS) beats none; loses "
        "to none; cannot be told apart from DLinear (S).")
    summary = pd.DataFrame({"label": ["TimeLLM (MS)", "DLinear (S)"]})
    columns = comparison_stats.p_columns(summary, tests)
    assert math.isnan(columns.loc[0, "p_holm_30"]) and columns.loc[1, "wilcoxon_p_30"] == pytest.approx(c.p)
    assert columns.loc[1, "p_holm_30"] == pytest.approx(c.p_holm)
    text = standard_markdown(summarise_standard(_distillation_rows(RAW_ONLY, NOISE), pair_label))
    assert ("30 min: distillation cannot be told apart (Holm-corrected p >= 0.05) from training the student "
            "alone") in text
    assert "Distillation could not be told apart from it: standard teacher: MiniLM" in text and "beat it:" not in text
