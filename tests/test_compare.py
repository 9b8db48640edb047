"""The comparison: a tiny real grid end to end, resuming, user errors, the plain-language findings, and the
standard grid (its rows, recipes, budgets, order, shards, merge, plan and paired statistics) without training."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import data_provider.data_factory
import exp.run
from comparison import standard
from comparison.costs import estimate_seconds
from comparison.grid import in_shard, variants
from comparison.markdown import glucose_table
from comparison.settings import build_grid
from comparison.stats import family, outcome, paired, statement, statements, verdict
from comparison.summary import findings, summarise, worse_than_persistence
from comparison.tables import finished_keys, merge
from models import model_spec
from models.base import Forecaster
from scripts import compare_models as cm
from utils.errors import LLMTimeError

TINY_GRID = ["--models", "persistence,Ridge,DLinear", "--patients", "1001", "--seeds", "7", "--epochs", "1",
             "--max-train-windows", "200", "--max-val-windows", "100"]


@pytest.mark.slow
def test_tiny_grid_writes_every_output_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMTIME_NO_BARS", "1")
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = TINY_GRID + ["--out", str(out), "--runs-dir", str(runs)]
    assert cm.main(argv) == 0
    for name in ("tidy.csv", "summary.csv", "summary.md", "rmse_by_model.png", "rmse_by_model_60.png"):
        assert (out / name).stat().st_size > 0
    tidy = pd.read_csv(out / "tidy.csv", dtype={"patients": str})
    assert list(tidy["label"]) == ["Persistence", "Ridge", "DLinear"]
    assert tidy["cell_key"].is_unique and set(tidy["patients"]) == {"1001"} and (tidy["test_windows"] > 2000).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["label"]) == ["Persistence", "Ridge", "DLinear"] and (summary["runs"] == 1).all()
    text = (out / "summary.md").read_text()
    assert "python -m scripts.compare_models " + " ".join(argv) in text
    assert "Best at 30 min: **" in text and "Best at 60 min: **" in text and "| Ridge | 1 |" in text
    assert (runs / tidy["run_id"][0] / "metrics.json").is_file()
    assert (runs / tidy["run_id"][2] / "checkpoint.pt").is_file() and not (runs / tidy["run_id"][2] / "last.pt").exists()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(exp.run, "train_and_test", must_not_run)
    capsys.readouterr()
    assert cm.main(argv) == 0
    assert len(pd.read_csv(out / "tidy.csv")) == 3
    # A changed setting is a different cell: it must run (and here hits the stub).
    with pytest.raises(AssertionError, match="run again"):
        cm.main([*argv[:-4], "--epochs", "2", *argv[-4:]])


@pytest.mark.parametrize("flags, message", [
    (["--models", "Ridge,Arima"], "unknown --model 'Arima'"),
    (["--models", "Ridge", "--patients", "1001,9999"], "unknown patient id(s) 9999"),
    (["--models", "Ridge", "--backbones", "NoSuchLM"], "NoSuchLM"),
    (["--models", "Ridge", "--seeds", "one"], "--seeds must be comma-separated integers"),
    (["--models", "Ridge", "--quick", "--full"], "not allowed with argument"),
])
def test_bad_requests_are_one_line_errors(tmp_path, capsys, flags, message):
    assert cm.main([*flags, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_time_llm_switches_join_the_grid_only_with_time_llm():
    grid = variants(["Ridge", "TimeLLM", "TimeLLM_woLLM"], ["MiniLM"], random_backbone=True, no_prompt=True)
    assert [v.label for v in grid] == ["Ridge", "TimeLLM (MiniLM)", "TimeLLM (MiniLM, random LLM)",
                                       "TimeLLM (MiniLM, no prompt)", "TimeLLM_woLLM (MiniLM)"]
    assert [v.label for v in variants(["Ridge"], ["MiniLM"], True, True)] == ["Ridge"]


def _row(label, model, backbone, variant, patient, rmse30, rmse60):
    return {"label": label, "model": model, "backbone": backbone, "variant": variant, "patients": patient, "seed": 1,
            "rmse_30": rmse30, "rmse_60": rmse60, "mae_30": 1.0, "mae_60": 2.0, "clarke_ab_30": 99.0,
            "clarke_ab_60": 98.0, "trainable_params": 10, "total_params": 20, "epochs_run": 1,
            "train_windows_per_s": 5.0, "test_windows_per_s": 50.0, "wall_seconds": 3.0}


def test_findings_say_plainly_who_won():
    rows = pd.DataFrame([
        _row("TimeLLM (MiniLM)", "TimeLLM", "MiniLM", "", "1001", 20.0, 30.0),
        _row("TimeLLM (MiniLM)", "TimeLLM", "MiniLM", "", "1002", 22.0, 34.0),
        _row("TimeLLM_woLLM (MiniLM)", "TimeLLM_woLLM", "MiniLM", "", "1001", 19.0, 29.0),
        _row("TimeLLM_woLLM (MiniLM)", "TimeLLM_woLLM", "MiniLM", "", "1002", 21.0, 33.0),
        _row("Ridge", "Ridge", "", "", "1001", 21.0, 29.5),
        _row("Ridge", "Ridge", "", "", "1002", 23.0, 33.0),
    ])
    labels = ["TimeLLM (MiniLM)", "TimeLLM_woLLM (MiniLM)", "Ridge"]
    summary = summarise(rows, labels)
    assert summary.loc[0, "rmse_30_mean"] == pytest.approx(21.0) and summary.loc[0, "runs"] == 2
    lines = findings(rows, summary)
    assert lines[0].startswith("- Best at 30 min: **TimeLLM_woLLM (MiniLM)**")
    assert lines[1].startswith("- Best at 60 min: **TimeLLM_woLLM (MiniLM)**")
    assert "beat its ablations? **No**: lower RMSE in 0 of 4" in lines[2]
    assert "beat the baselines? **Partly**: lower RMSE in 2 of 4" in lines[3]
    assert "split (30 vs 60 min) with Ridge (2/4)" in lines[3]


def test_summary_carries_the_cgm_metrics_and_old_rows_leave_them_blank():
    new = {**_row("Ridge", "Ridge", "", "", "1001", 21.0, 29.5), "mard_30": 10.0, "mard_60": 16.0, "lag_30": 15.0,
           "lag_60": 35.0, "pooled_hypo_sensitivity_30": 0.5, "pooled_hypo_precision_30": 0.25,
           "pooled_hypo_mcc_30": 0.3}
    rows = pd.DataFrame([new, {**new, "patients": "1002", "mard_30": 12.0}])
    summary = summarise(rows, ["Ridge"])
    assert summary.loc[0, "mard_30_mean"] == pytest.approx(11.0) and summary.loc[0, "lag_60_mean"] == 35.0
    assert summary.loc[0, "pooled_hypo_mcc_30_mean"] == pytest.approx(0.3)
    table = "\n".join(glucose_table(summary))
    assert "| Ridge | 11.0 ± 1.4 | 16.0 ± 0.0 | 15.0 ± 0.0 | 35.0 ± 0.0 | 0.50 / 0.25 / 0.30 | – / – / – |" in table
    old = summarise(pd.DataFrame([_row("Ridge", "Ridge", "", "", "1001", 21.0, 29.5)]), ["Ridge"])
    assert np.isnan(old.loc[0, "mard_30_mean"]) and "| Ridge | – | – | – | – |" in "\n".join(glucose_table(old))


# ---- the standard grid, without training ----------------------------------------------------------------------

STANDARD_LABELS = ["Persistence (S)", "Persistence (MS)", "Ridge (S)", "Ridge (MS)", "DLinear (S)", "DLinear (MS)",
                   "PatchTST (S)", "PatchTST (MS)", "TimeLLM (S)", "TimeLLM (MS)", "TimeLLM_text (MS)",
                   "TimeLLM_channels (MS)", "TimeLLM_random (MS)", "TimeLLM_noprompt (MS)", "TimeLLM_woLLM (MS)",
                   "TimeLLM_LLM2Attn (MS)", "TimeLLM_LLM2Trsf (MS)"]


def _grid(tmp_path, *flags):
    args = cm.build_parser().parse_args(["--standard", *flags])
    return build_grid(cm.grid_flags(args), "standard", tmp_path / "runs")


def _cell(grid, label, seed=2021):
    return next(c for c in grid.cells if c.variant.label == label and c.seed == seed)


def test_standard_grid_has_its_rows_seeds_recipes_and_budgets(tmp_path):
    grid = _grid(tmp_path)
    assert grid.labels == STANDARD_LABELS and len(grid.cells) == 17 * 3
    assert {c.seed for c in grid.cells} == {2021, 2022, 2023}
    assert {c.patients for c in grid.cells} == {tuple(str(p) for p in range(1001, 1013))}  # pooled, all 12
    assert len({c.key for c in grid.cells}) == len(grid.cells)
    for cell in grid.cells:
        cfg, v = cell.config, cell.variant
        assert cfg.data.covariates == (v.features == "MS") and cfg.train.seed == cell.seed
        assert cfg.train.mixed_precision == "no" and cfg.model.prompt_domain is False
        recipe = model_spec(cfg.model.model).recipe
        if recipe is None:  # Persistence, Ridge: nothing to train, every window
            assert (cfg.data.max_train_windows, cfg.data.max_val_windows) == (None, None)
            continue
        # one budget for every gradient-trained row: windows per epoch, epoch cap and validation windows
        assert {k: getattr(cfg.train, k) for k in recipe.fields()} == {**recipe.fields(), "train_epochs": standard.EPOCHS}
        assert (cfg.data.max_train_windows, cfg.data.max_val_windows) == (standard.TRAIN_PER_EPOCH, standard.VAL_WINDOWS)
        if model_spec(cfg.model.model).timellm_family:  # as the default run builds it, with the terse event words
            assert (cfg.model.llm_layers, cfg.model.prompt_domain, cfg.model.event_words) == (1, False, "terse")
    dlinear, timellm = _cell(grid, "DLinear (MS)").config, _cell(grid, "TimeLLM (MS)").config
    assert dlinear.train.learning_rate == model_spec("DLinear").recipe.learning_rate == 1e-3
    assert dlinear.train.batch_size == 64
    assert timellm.train.learning_rate == model_spec("TimeLLM").recipe.learning_rate == 9e-4
    assert timellm.train.warmup_steps == model_spec("TimeLLM").recipe.warmup_steps
    assert (timellm.data.max_train_windows, timellm.train.train_epochs) == (dlinear.data.max_train_windows,
                                                                            dlinear.train.train_epochs)
    text, channels = _cell(grid, "TimeLLM_text (MS)").config.model, _cell(grid, "TimeLLM_channels (MS)").config.model
    assert (text.model, text.event_text, text.event_channels) == ("TimeLLM", True, False)
    assert (channels.event_text, channels.event_channels) == (False, True)
    assert _cell(grid, "TimeLLM_random (MS)").config.model.llm_weights == "random"
    assert _cell(grid, "TimeLLM_noprompt (MS)").config.model.use_prompt is False
    assert _cell(grid, "TimeLLM (S)").config.data.covariates is False
    assert _cell(grid, "TimeLLM_LLM2Trsf (MS)").config.model.model == "TimeLLM_LLM2Trsf"


def test_standard_grid_runs_seed_major_cheap_first_and_flags_override_recipes(tmp_path):
    grid = _grid(tmp_path)
    seeds = [c.seed for c in grid.cells]
    assert seeds == sorted(seeds)  # every cell of a seed before the next seed
    first = [c.variant.label for c in grid.cells[:17]]
    assert first[:4] == ["Persistence (S)", "Persistence (MS)", "Ridge (S)", "Ridge (MS)"]
    costs = [estimate_seconds(c) for c in grid.cells[:17]]
    assert costs == sorted(costs)  # cheapest first within a seed
    some = _grid(tmp_path, "--models", "dlinear,TimeLLM", "--features", "MS", "--seeds", "5",
                 "--learning-rate", "0.01", "--max-train-windows", "0", "--mixed-precision", "no")
    assert some.labels == ["DLinear (MS)", "TimeLLM (MS)"]
    for cell in some.cells:
        assert cell.config.train.learning_rate == 0.01 and cell.config.data.max_train_windows is None
        assert cell.config.train.batch_size == model_spec(cell.config.model.model).recipe.batch_size  # the rest: recipe
        assert cell.config.train.mixed_precision == "no"
    assert _grid(tmp_path, "--seeds", "5").cells[0].key != _grid(tmp_path, "--seeds", "5", "--epochs", "2").cells[0].key
    with pytest.raises(LLMTimeError, match="unknown --models Arima for --standard"):
        _grid(tmp_path, "--models", "Ridge,Arima")


def test_a_cell_off_its_recipes_batch_is_planned_at_the_rate_measured_for_that_batch(tmp_path):
    import dataclasses

    rate = model_spec("TimeLLM").rate
    assert rate.train_rate(rate_batch := model_spec("TimeLLM").recipe.batch_size) == rate.train
    assert rate.train_rate(32) == dict(rate.train_at_batch)[32] < rate.train
    assert rate.train_rate(7) == rate.train  # no figure for that batch: the recipe's
    cell = _grid(tmp_path, "--models", "TimeLLM", "--features", "MS", "--seeds", "5").cells[0]
    assert cell.config.train.batch_size == rate_batch
    small = dataclasses.replace(cell, config=dataclasses.replace(
        cell.config, train=dataclasses.replace(cell.config.train, batch_size=32)))
    assert estimate_seconds(small) > estimate_seconds(cell)


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_shards_cover_the_ordered_grid_exactly_once(tmp_path, count):
    cells = _grid(tmp_path).cells
    shards = [in_shard(cells, index, count) for index in range(1, count + 1)]
    assert sorted(c.key for shard in shards for c in shard) == sorted(c.key for c in cells)
    for index, shard in enumerate(shards, start=1):
        assert all(cells.index(c) % count == index - 1 for c in shard)


def _tidy(key, rmse30, **extra):
    return {"cell_key": key, "label": key.split("|")[0], "rmse_30": rmse30, "rmse_60": 2 * rmse30, "mae_30": 1.0,
            "mae_60": 2.0, **extra}


def test_merge_joins_shards_and_rejects_conflicting_rows(tmp_path):
    pd.DataFrame([_tidy("A|1|s1|x", 10.0), _tidy("B|1|s1|x", 11.0)]).to_csv(tmp_path / "tidy.shard-1-of-2.csv",
                                                                            index=False)
    pd.DataFrame([_tidy("C|1|s1|x", 12.0), _tidy("A|1|s1|x", 10.0)]).to_csv(tmp_path / "tidy.shard-2-of-2.csv",
                                                                            index=False)
    pd.DataFrame([{"cell_key": k, "patient": p, "rmse_30": 1.0} for k in ("A|1|s1|x", "B|1|s1|x") for p in "12"]
                 ).to_csv(tmp_path / "per_patient.shard-1-of-2.csv", index=False)
    assert finished_keys(tmp_path) == {"A|1|s1|x", "B|1|s1|x", "C|1|s1|x"}
    assert merge(tmp_path) == (3, 2)
    tidy = pd.read_csv(tmp_path / "tidy.csv")
    assert sorted(tidy["cell_key"]) == ["A|1|s1|x", "B|1|s1|x", "C|1|s1|x"] and "source" not in tidy
    assert len(pd.read_csv(tmp_path / "per_patient.csv")) == 4
    assert merge(tmp_path) == (3, 2)  # again: tidy.csv and the shards agree, nothing doubles
    pd.DataFrame([_tidy("B|1|s1|x", 11.5)]).to_csv(tmp_path / "tidy.shard-3-of-3.csv", index=False)
    with pytest.raises(LLMTimeError, match=r"two tables disagree on cell B\|1\|s1\|x .*11\.500"):
        merge(tmp_path)


def _per_patient(label, diffs, seeds=(1, 2), base=20.0):
    """Rows of one label: patient i's RMSE30 is base + diffs[i], +-0.5 over two seeds (the seed mean is exact)."""
    rows = []
    for i, d in enumerate(diffs):
        for j, seed in enumerate(seeds):
            wobble = (0.5 if j == 0 else -0.5) if len(seeds) > 1 else 0.0
            rows.append({"label": label, "patient": str(1001 + i), "seed": seed, "rmse_30": base + d + wobble,
                         "rmse_60": base + d})
    return rows


def test_paired_statements_count_patients_average_seeds_and_test_with_wilcoxon():
    pp = pd.DataFrame(_per_patient("TimeLLM (MS)", [1, 2, 3, 4, 5]) + _per_patient("DLinear (S)", [0] * 5)
                      + _per_patient("Ridge (S)", [3, 4, 5, 6, 4]) + _per_patient("Same (MS)", [1, 2, 3, 4, 5])
                      + _per_patient("OneSeed (S)", [9, 9, 9, 9, 9], seeds=(1,)))
    worse = paired(pp, "TimeLLM (MS)", "DLinear (S)", 30)
    # every patient worse by 1..5 mg/dL: mean 3; five patients cannot make a difference measurable (the exact
    # two-sided signed-rank p of 5 same-sign pairs is 2/2^5), so they are not tested and none is claimed
    assert (worse.patients, worse.worse, worse.better) == (5, 5, 0) and worse.mean_diff == pytest.approx(3.0)
    assert math.isnan(worse.p) and outcome(worse) == "level"
    assert statement(worse) == ("TimeLLM (MS) cannot be told apart from DLinear (S) at 30 min (higher RMSE on 5 of 5 "
                                "patients, 3.0 mg/dL higher on average, not tested: fewer than 6 patients).")
    better = paired(pp, "TimeLLM (MS)", "Ridge (S)", 30)  # diffs -2, -2, -2, -2, +1
    assert (better.better, better.worse) == (4, 1) and better.mean_diff == pytest.approx(-1.4)
    assert statement(better).startswith("TimeLLM (MS) cannot be told apart from Ridge (S) at 30 min (lower RMSE on 4 "
                                        "of 5 patients, 1.4 mg/dL lower on average, not tested")
    level = paired(pp, "TimeLLM (MS)", "Same (MS)", 60)
    assert statement(level) == (
        "TimeLLM (MS) cannot be told apart from Same (MS) at 60 min (lower RMSE on 0, higher on 0 of 5 patients, not "
        "tested: fewer than 6 patients).")
    one_seed = paired(pp, "TimeLLM (MS)", "OneSeed (S)", 30)  # only seed 1 is shared: TimeLLM's seed-1 RMSE counts
    assert one_seed.mean_diff == pytest.approx(3.5 - 9)
    tests = family(pp, "TimeLLM (MS)", ["DLinear (S)", "Nobody (S)"])
    assert len(statements(tests, ["DLinear (S)", "Nobody (S)"])) == 2  # 30 and 60 min; none for Nobody


def test_a_difference_is_a_win_or_a_loss_only_when_the_corrected_test_says_so():
    ten = list(range(1, 11))  # ten same-sign patients: exact two-sided p = 2/2^10, 6 x that after Holm over 6 tests
    pp = pd.DataFrame(_per_patient("TimeLLM (MS)", [0] * 10) + _per_patient("Worse (S)", ten)
                      + _per_patient("Better (S)", [-d for d in ten]) + _per_patient("Mixed (S)", [2, -1] * 5))
    tests = family(pp, "TimeLLM (MS)", ["TimeLLM (MS)", "Worse (S)", "Better (S)", "Mixed (S)", "Nobody (S)"])
    beats = tests[("Worse (S)", 30)]
    assert beats.p == pytest.approx(2 / 1024) and beats.p_holm == pytest.approx(6 * 2 / 1024)
    assert outcome(beats) == "better" and statement(beats) == (
        "TimeLLM (MS) is better than Worse (S) at 30 min: lower RMSE on 10 of 10 patients, by 5.5 mg/dL on average, "
        "p = 0.002, Holm-corrected p = 0.012.")
    assert outcome(tests[("Better (S)", 60)]) == "worse" and outcome(tests[("Mixed (S)", 30)]) == "level"
    assert verdict(tests, "TimeLLM (MS)", 30) == (
        "At 30 min (Wilcoxon across patients, Holm-corrected over 6 tests, p < 0.05), TimeLLM (MS) beats Worse (S); "
        "loses to Better (S); cannot be told apart from Mixed (S).")
    assert verdict(family(pp, "TimeLLM (MS)", ["Mixed (S)"]), "TimeLLM (MS)", 60) == (
        "At 60 min (Wilcoxon across patients, Holm-corrected over 2 tests, p < 0.05), TimeLLM (MS) beats none; loses "
        "to none; cannot be told apart from Mixed (S).")


def test_runs_worse_than_persistence_are_named_and_kept():
    def run(label, model, seed, rmse30, rmse60, patients="1001 1002"):
        return {"label": label, "model": model, "seed": seed, "patients": patients, "rmse_30": rmse30,
                "rmse_60": rmse60, "persistence_rmse_30": 21.0, "persistence_rmse_60": 35.0, "best_epoch": 9,
                "epochs_run": 10, "convergence": "levelled"}
    rows = pd.DataFrame([run("Persistence (S)", "Persistence", 1, 21.0, 35.0), run("A (MS)", "A", 1, 19.0, 30.0),
                         run("A (MS)", "A", 2, 26.6, 35.6), run("B (S)", "B", 1, 20.0, 35.2, patients="1001")])
    lines = worse_than_persistence(rows)
    assert lines[0].startswith("- **2 of 3 runs forecast worse than persistence**") and len(lines) == 3
    assert lines[1] == ("  - A (MS), seed 2: RMSE 26.60 against 21.00 at 30 min, 35.60 against 35.00 at 60 min; best "
                        "validation epoch 9 of 10, curve levelled.")  # a pooled run: its row and seed name it
    assert "B (S), patient 1001, seed 1: RMSE 20.00 against 21.00 at 30 min, 35.20 against 35.00" in lines[2]
    assert worse_than_persistence(rows.iloc[:2])[0].startswith("- Every trained run forecasts better than persistence")
    assert worse_than_persistence(rows.drop(columns="persistence_rmse_60")) == []  # rows from before it was recorded


BASE_RMSE = {"Persistence": 20.0, "DLinear": 15.0, "TimeLLM": 19.0, "TimeLLM_woLLM": 17.0}


def _fake_train_and_test(calls):
    """A stand-in for exp.run.train_and_test: a results row and per-patient metrics from the config, no training."""
    def run(cfg, splits=None, name=None, reuse=False, **kwargs):
        calls.append((cfg, name, reuse))
        rmse = BASE_RMSE[cfg.model.model] + (2.0 if cfg.data.covariates else 0.0) + cfg.train.seed / 1000
        patients = cfg.data.patients
        per = {p: {"rmse_30": rmse + i, "rmse_60": 2 * rmse + i, "mae_30": 1.0, "mae_60": 2.0, "n_30": 10, "n_60": 10}
               for i, p in enumerate(patients)}
        row = {"run_id": name, "model": cfg.model.model, "backbone": "", "patients": " ".join(patients),
               "seed": cfg.train.seed, "features": "MS" if cfg.data.covariates else "S", "rmse_30": rmse,
               "rmse_60": 2 * rmse, "mae_30": 1.0, "mae_60": 2.0, "clarke_ab_30": 99.0, "clarke_ab_60": 98.0,
               "trainable_params": 10, "total_params": 20, "best_epoch": 2, "epochs_run": 4,
               "convergence": "plateau", "train_windows": 100, "train_windows_seen": 400, "test_windows": 50,
               "train_windows_per_s": 5.0,
               "test_windows_per_s": 50.0, "wall_seconds": 3.0, "persistence_rmse_30": 30.0,
               "persistence_rmse_60": 50.0}
        metrics = {"per_patient": per, "persistence": {"per_patient": {p: {"rmse_30": 30.0, "rmse_60": 40.0,
                                                                           "mae_30": 3.0, "mae_60": 4.0}
                                                                       for p in patients}}}
        return SimpleNamespace(row=row, metrics=metrics, model=Forecaster())  # every hook at its default
    return run


SMALL_STANDARD = ["--standard", "--models", "Persistence,DLinear,TimeLLM,TimeLLM_woLLM", "--patients",
                  "1001,1002", "--seeds", "1,2", "--mixed-precision", "no"]


@pytest.fixture
def fake_engine(monkeypatch):
    calls: list = []
    monkeypatch.setenv("LLMTIME_NO_BARS", "1")
    monkeypatch.setattr(exp.run, "train_and_test", _fake_train_and_test(calls))
    monkeypatch.setattr(data_provider.data_factory, "build_splits", lambda data: None)
    return calls


@pytest.mark.slow
def test_standard_run_writes_rows_reports_as_it_goes_and_reuses_finished_runs(tmp_path, fake_engine, capsys):
    out = tmp_path / "out"
    argv = [*SMALL_STANDARD, "--out", str(out), "--runs-dir", str(tmp_path / "runs")]
    assert cm.main(argv) == 0
    assert len(fake_engine) == 14 and all(reuse for _, _, reuse in fake_engine)  # 7 rows x 2 seeds, reuse asked
    printed = capsys.readouterr().out
    assert "DLinear (MS) pooled2 s1: RMSE30 17.00 RMSE60 34.00 mg/dL" in printed
    tidy = pd.read_csv(out / "tidy.csv", dtype={"patients": str})
    assert len(tidy) == 14 and set(tidy["model"]) == {"Persistence", "DLinear", "TimeLLM", "TimeLLM_woLLM"}
    assert set(tidy["convergence"]) == {"plateau"} and (tidy["best_epoch"] == 2).all()
    per_patient = pd.read_csv(out / "per_patient.csv", dtype={"patient": str})
    assert len(per_patient) == 28 and set(per_patient["patient"]) == {"1001", "1002"}
    assert (per_patient["persistence_rmse_30"] == 30.0).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[:7]) == ["model", "features", "runs", "rmse_30_mean", "rmse_30_sd", "rmse_60_mean",
                                         "rmse_60_sd"]
    assert list(summary["model"] + " " + summary["features"]) == [
        "Persistence S", "Persistence MS", "DLinear S", "DLinear MS", "TimeLLM S", "TimeLLM MS", "TimeLLM_woLLM MS"]
    text = (out / "summary.md").read_text()
    assert "Complete: all 14 planned runs." in text and "| DLinear | MS | 2 | 2/2 | 2.0 | 400 |" in text
    assert "Training windows per epoch are drawn afresh each epoch from all training windows" in text
    assert ("- TimeLLM (MS) cannot be told apart from DLinear (MS) at 30 min (higher RMSE on 2 of 2 patients, "
            "4.0 mg/dL higher on average, not tested: fewer than 6 patients).") in text
    assert {"wilcoxon_p_30", "p_holm_30", "wilcoxon_p_60", "p_holm_60"} <= set(summary.columns)  # blank: 2 patients
    assert "### Does TimeLLM (MS) earn its cost?" in text and "At 60 min (Wilcoxon across patients" in text
    assert "- Every trained run forecasts better than persistence at 30 and 60 min" in text
    assert ("- Cost: TimeLLM (MS) has 10 trainable of 20 parameters, trained at 5 windows/s (DLinear (S), the most "
            "accurate at 30 and 60 min: 10 trainable of 20 parameters, trained at 5 windows/s).") in text
    for name in ("rmse_by_model.png", "rmse_by_model_60.png", "timellm_minus_each_30.png",
                 "timellm_minus_each_60.png"):
        assert (out / name).stat().st_size > 0
    fake_engine.clear()
    assert cm.main(argv) == 0 and not fake_engine  # every cell found finished


@pytest.mark.slow
def test_shards_then_merge_give_the_unsharded_tables(tmp_path, fake_engine, capsys):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    assert cm.main([*SMALL_STANDARD, "--out", str(whole), "--runs-dir", str(tmp_path / "runs")]) == 0
    for index in (1, 2, 3):
        assert cm.main([*SMALL_STANDARD, "--out", str(sharded), "--shard", f"{index}/3",
                        "--runs-dir", str(tmp_path / "runs")]) == 0
    assert not (sharded / "tidy.csv").exists() and not (sharded / "summary.md").exists()
    assert len(pd.read_csv(sharded / "tidy.shard-2-of-3.csv")) == 5  # positions 2, 5, 8, 11, 14 of 14
    assert cm.main([*SMALL_STANDARD, "--out", str(sharded), "--merge"]) == 0
    columns = ["cell_key", "rmse_30", "rmse_60"]
    a, b = (pd.read_csv(p / "tidy.csv").sort_values("cell_key")[columns].reset_index(drop=True)
            for p in (whole, sharded))
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pd.read_csv(whole / "summary.csv"), pd.read_csv(sharded / "summary.csv"))


def test_the_standard_report_can_state_every_training_draw():
    from comparison.markdown import DRAW_TEXT
    from data_provider.draws import DRAWS

    assert set(DRAW_TEXT) == set(DRAWS)


def test_partial_report_says_what_it_covers(tmp_path, fake_engine):
    out = tmp_path / "out"
    assert cm.main([*SMALL_STANDARD, "--out", str(out), "--shard", "1/6", "--runs-dir", str(tmp_path / "r")]) == 0
    assert cm.main([*SMALL_STANDARD, "--out", str(out), "--report"]) == 0
    text = (out / "summary.md").read_text()
    assert "**Partial**: this report covers 3 of the 14 planned runs" in text


def test_runs_of_other_settings_are_left_out_and_the_summary_says_so(tmp_path, fake_engine):
    out, runs = tmp_path / "out", str(tmp_path / "r")
    other = [a if a != "no" else "bf16" for a in SMALL_STANDARD]  # --mixed-precision bf16: other cells
    assert cm.main([*other, "--out", str(out), "--shard", "1/6", "--runs-dir", runs]) == 0
    assert cm.main([*SMALL_STANDARD, "--out", str(out), "--shard", "1/6", "--runs-dir", runs]) == 0
    assert cm.main([*SMALL_STANDARD, "--out", str(out), "--report"]) == 0
    text = (out / "summary.md").read_text()
    assert "covers 3 of the 14 planned runs" in text
    assert text.rstrip().endswith("rerun with the grid's flags, e.g. the same --mixed-precision, to report them)")
    assert "(3 run(s) in " in text


def test_plan_prints_the_cells_and_trains_nothing(tmp_path, fake_engine, capsys):
    assert cm.main(["--standard", "--plan", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Plan: 51 of 51 runs") and "Estimated time:" in printed
    assert "TimeLLM_noprompt (MS)" in printed
    assert cm.main(["--standard", "--plan", "--shard", "2/4", "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.startswith("Plan: 13 of 51 runs (shard 2 of 4)")
    assert not fake_engine and not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, message", [
    (["--standard", "--shard", "5/4"], "--shard must be I/N with 1 <= I <= N"),
    (["--standard", "--merge", "--shard", "1/2"], "leave out --shard"),
    (["--standard", "--backbones", "MiniLM,GPT2"], "--standard compares one backbone"),
    (["--quick", "--plan"], "--out is required"),
])
def test_standard_flag_mistakes_are_one_line_errors(flags, message, capsys):
    assert cm.main(flags) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_quick_report_is_labelled_a_smoke_run(tmp_path, fake_engine):
    out = tmp_path / "quick"
    assert cm.main(["--quick", "--models", "Persistence", "--out", str(out), "--runs-dir", str(tmp_path / "r")]) == 0
    assert (out / "summary.md").read_text().startswith("# Model comparison (quick): smoke run, not a result")


def test_only_an_interrupted_cell_is_resumed(tmp_path):
    """A cell never started trains plainly (no "nothing to resume" warning for every cell of a fresh grid); one that
    a killed grid left with resume state (last.pt) continues it."""
    from comparison.grid import Cell, Variant
    from comparison.runner import resumable
    from configs import RunConfig, TrainConfig

    cell = Cell(Variant("DLinear"), ("1001",), 1, "abc",
                RunConfig(checkpoints=str(tmp_path), train=TrainConfig(resume=True)))
    assert resumable(cell).train.resume is False
    (tmp_path / cell.run_name).mkdir()
    (tmp_path / cell.run_name / "last.pt").write_bytes(b"")
    assert resumable(cell).train.resume is True
    assert resumable(cell).to_dict() == cell.config.to_dict()


def test_shard_auto_takes_the_launchers_rank_and_leaves_each_process_alone():
    """Under a launcher, process RANK of WORLD_SIZE takes shard RANK+1 and the launcher's variables are removed, so
    the engine forms no process group; started alone, --shard auto is a one-line error."""
    from comparison.launch import LAUNCHER_VARIABLES, launcher_shard

    env = {"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0", "MASTER_ADDR": "node1", "MASTER_PORT": "29500",
           "ACCELERATE_MIXED_PRECISION": "bf16"}
    assert launcher_shard(env) == (3, 4)
    assert not set(LAUNCHER_VARIABLES) & set(env) and env == {"ACCELERATE_MIXED_PRECISION": "bf16"}
    with pytest.raises(LLMTimeError, match="give --shard I/N"):
        launcher_shard({})
    with pytest.raises(LLMTimeError, match="outside WORLD_SIZE"):
        launcher_shard({"RANK": "4", "WORLD_SIZE": "4"})


@pytest.mark.slow
def test_a_launcher_splits_the_grid_over_its_processes(tmp_path):
    """``torchrun --nproc_per_node 2 ... --shard auto`` on the CPU (``accelerate launch --multi_gpu`` starts its
    processes through the same torchrun machinery, with the same variables): each process writes its own shard (each
    cell once), and --merge joins them into the grid's table."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out, runs = tmp_path / "out", tmp_path / "runs"
    grid = ["--models", "persistence,Ridge", "--patients", "1001,1002", "--seeds", "7", "--out", str(out),
            "--runs-dir", str(runs)]
    launcher = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "LLMTIME_NO_BARS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(launcher), "--standalone", "--nproc_per_node", "2", "-m", "scripts.compare_models",
                           *grid, "--shard", "auto"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shards = [pd.read_csv(out / f"tidy.shard-{i}-of-2.csv") for i in (1, 2)]
    assert [len(s) for s in shards] == [2, 2]  # 4 cells: positions 1, 3 and 2, 4
    assert not set(shards[0]["cell_key"]) & set(shards[1]["cell_key"])
    assert cm.main([*grid, "--merge"]) == 0
    assert len(pd.read_csv(out / "tidy.csv")) == 4


def test_run_time_names_the_machines_the_runs_were_timed_on():
    """A grid resumed across sessions runs on CPUs 2-3x apart in speed: its summed run time says which ran what."""
    from comparison.markdown import run_time_line

    rows = pd.DataFrame({"wall_seconds": [600.0, 1200.0, 1800.0],
                         "device": ["CPU: AMD EPYC 7B13, AVX2, 2 cores", None, "CPU: AMD EPYC 7B13, AVX2, 2 cores"]})
    assert run_time_line(rows) == ("Run time: 60.0 min (sum of the runs' wall times; 2 runs on CPU: AMD EPYC 7B13, "
                                   "AVX2, 2 cores; 1 run on machine not recorded).")
    assert "3 runs on machine not recorded" in run_time_line(rows.drop(columns="device"))
