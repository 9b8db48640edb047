"""The standard distillation report: the truth-only candidate in the default grid, the --int8 flag, rows written
before the new columns, the paired summary statements, and the --standard plan (runs and the shared teacher).

Nothing here trains: the plan reads only the bundled cohort's patient ids.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import wilcoxon

from distillation import cli, compare, pipeline
from distillation.config import (DEFAULT_GRID, PipelineConfig, baseline_stands_for, config_key, patient_groups,
                                 phase_configs, run_names, teacher_kind)
from distillation.losses import LossWeights, distillation_loss, parse_grid
from distillation.phases import continuing
from distillation.pipeline import finished_row
from distillation.report import format_losses, format_test_rmse, parse_losses, read_test_rmse
from distillation.retime import retime_csv
from distillation.standard import (STANDARD_PATIENTS, STANDARD_SEARCH, STANDARD_SEEDS,
                                   STANDARD_STUDENTS, STANDARD_WINDOWS, estimate_hours, planned_runs, rates,
                                   resolve_levers, standard_configs, waits_for_levers)
from distillation.answers import standard_markdown
from distillation.summary import summarise_standard
from exp.objective import masked_mse
from models import model_spec
from scripts import distillation_comparison
from utils.errors import LLMTimeError
from utils.io import write_json
from utils.results import append_row

TRUTH_ONLY = LossWeights(1.0, 0.0, 0.0)


def test_truth_only_is_a_default_candidate_and_is_the_baseline_objective():
    assert TRUTH_ONLY in parse_grid(DEFAULT_GRID)
    assert TRUTH_ONLY in PipelineConfig(teacher="MiniLM", student="BERT-tiny").candidates
    pred, y = torch.randn(4, 12), torch.randn(4, 12)
    mask = torch.ones_like(y)
    loss, terms = distillation_loss(TRUTH_ONLY, pred, y, mask)  # no teacher needed at all
    assert loss.item() == pytest.approx(masked_mse(pred, y, mask).item()) and set(terms) == {"truth"}


def _config(*flags):
    return cli.config_from_args(cli.build_parser().parse_args(["--teacher", "bert", "--student", "tinybert", *flags]))


def test_int8_flag_defaults_on_and_leaves_the_row_key_alone():
    on, off = _config(), _config("--int8", "0")
    assert on.int8 is True and off.int8 is False
    configs = phase_configs(on, "1001", ["1001"])
    assert config_key(on, configs) == config_key(off, phase_configs(off, "1001", ["1001"]))


def test_rows_written_before_the_new_columns_still_load(tmp_path):
    csv = tmp_path / "distillation.csv"
    old = {"config_key": "abc", "patient": "1001", "teacher_rmse_30": 20.0}
    append_row(csv, old)
    assert finished_row(csv, "abc")["teacher_rmse_30"] == 20.0
    append_row(csv, {**old, "config_key": "def", "persistence_rmse_30": 25.0, "int8_size_mb": 12.0})
    assert pd.isna(finished_row(csv, "abc")["persistence_rmse_30"])
    assert finished_row(csv, "def")["int8_size_mb"] == 12.0


def _rows(diffs, teacher=20.0, persistence=25.0, seeds=1):
    """A hand-made table: one pair, one row per (patient, seed), distilled = baseline + diff; ``seeds`` rows per
    patient (consecutive diffs)."""
    n = len(diffs)
    base = 20.0 + np.arange(n)
    return pd.DataFrame({
        "teacher": "MiniLM", "student": "MiniLM", "teacher_layers": 6, "student_layers": 2,
        "teacher_weights": "pretrained", "student_weights": "pretrained",
        "patient": [str(1001 + k // seeds) for k in range(n)], "seed": [2021 + k % seeds for k in range(n)],
        "teacher_rmse_30": teacher, "baseline_rmse_30": base, "distilled_rmse_30": base + np.asarray(diffs),
        "persistence_rmse_30": persistence, "teacher_rmse_60": teacher + 8, "baseline_rmse_60": base + 8,
        "distilled_rmse_60": base + 8 + np.asarray(diffs), "persistence_rmse_60": persistence + 8,
        "alpha": 0.5, "beta": 0.5, "gamma": 0.0})


def test_summary_states_wins_mean_difference_and_wilcoxon():
    diffs = [-1.0, -0.5, -2.0, 0.3, -0.7, -1.5, -0.2, 0.4, -0.9, -1.1, -0.6, -0.8]
    summary = summarise_standard(_rows(diffs), compare.pair_label)
    r = summary.iloc[0]
    assert (r["runs"], r["distill_wins_30"], r["distill_pairs_30"]) == (12, 10, 12)
    assert r["distill_minus_baseline_30"] == pytest.approx(np.mean(diffs), abs=1e-4)
    assert r["p_raw_30"] == pytest.approx(wilcoxon(diffs).pvalue)
    assert r["patients"] == " ".join(str(p) for p in range(1001, 1013)) and r["seeds"] == "2021"
    assert r["teacher_beats_persistence_30"] == 12 and r["teacher_minus_persistence_30"] == pytest.approx(-5.0)
    text = standard_markdown(summary)
    assert "30 min: distillation beat training the student alone: better on 10 of 12 patients" in text
    p = wilcoxon(diffs).pvalue  # the same test at 60 min: Holm doubles the smaller of two equal p-values
    assert r["p_holm_30"] == pytest.approx(2 * p) and r["p_holm_60"] == pytest.approx(2 * p)
    assert f"Wilcoxon p = {p:.3g} (Holm-corrected over the report's 2 tests: {2 * p:.3g}) (significant at 0.05)" in text
    assert ("- Candidate chosen on validation (alpha/beta/gamma, teacher data, mixup): 1001/s2021: 0.5/0.5/0; "
            "1002/s2021") in text
    assert "preferred no distillation" not in text
    assert text.startswith("## Which teacher kind made which student better than the same student alone?")
    assert ("- At 30 min distillation measurably beat the student trained alone for 1 of 1 (teacher kind, student) "
            "pair(s). Distillation beat it: standard teacher: MiniLM") in text
    alone = standard_markdown(summarise_standard(_rows(diffs).assign(alpha=1.0, beta=0.0), compare.pair_label))
    assert "the search preferred no distillation and the distilled row is the baseline's run" in alone
    assert "for 0 of 1 (teacher kind, student) pair(s). Distillation was not chosen: standard teacher: MiniLM" in alone
    assert "30 min: the teacher beat persistence: better on 12 of 12 patients" in text
    assert "| INT8 ops left float |" in text
    pair_row = [line for line in text.splitlines() if line.startswith("| standard | MiniLM")][0]
    assert pair_row.endswith("| - | not recorded |")  # no INT8 figures here, nor early-stopping verdicts
    int8 = standard_markdown(summarise_standard(_rows(diffs).assign(int8_float_ops=[8, 7] * 6, int8_ops=12),
                                                compare.pair_label))
    assert "| 7.5 of 12 |" in int8  # the mean over the rows, as every other cell


def test_summary_counts_capped_runs_once_per_seed_and_names_the_machines():
    """Each seed's teacher, student alone and distilled student count once (one pooled run: ``group``, not once per
    patient row), the distilled one not again when the search chose the student alone; a capped run is named; rows
    from before the verdicts were recorded are counted as such, never as converged."""
    rows = _rows([-1.0, -0.5, -2.0, 0.3, -0.7, -1.5], seeds=2).assign(
        group="1001+1002+1003", teacher_convergence="converged", baseline_convergence="converged",
        distilled_convergence=lambda d: np.where(d["seed"] == 2022, "capped", "converged"),
        baseline_run=lambda d: "runs/s" + d["seed"].astype(str) + "/baseline",
        distilled_run=lambda d: np.where(d["seed"] == 2021, d["baseline_run"], "runs/s2022/distilled"),
        trained_on=lambda d: np.where(d["seed"] == 2021, "CPU: AMD EPYC, AVX2, 2 cores",
                                      "CPU: Intel Xeon, AMX, 2 cores"),
        timed_on="CPU: Intel Xeon, AMX, 2 cores")
    summary = summarise_standard(rows, compare.pair_label)
    r = summary.iloc[0]
    assert (r["runs_checked"], r["runs_unrecorded"], r["capped"]) == (5, 0, 1)
    assert r["capped_which"] == "s2022 distilled student"
    text = standard_markdown(summary)
    assert "| runs capped |" in text and text.count("| 1 of 5 |") == 1
    assert "- Capped (the epoch cap ended it while validation loss was still falling" in text
    assert ("Trained on CPU: AMD EPYC, AVX2, 2 cores, CPU: Intel Xeon, AMX, 2 cores; latencies taken on CPU: Intel "
            "Xeon, AMX, 2 cores.") in text
    older = summarise_standard(rows.assign(teacher_convergence=lambda d: d["teacher_convergence"].where(
        d["seed"] == 2022)), compare.pair_label).iloc[0]  # seed 2021's row finished before verdicts were kept
    assert (older["runs_checked"], older["runs_unrecorded"], older["capped"]) == (4, 1, 1)
    assert "| 1 of 4 (1 not recorded) |" in standard_markdown(summarise_standard(
        rows.assign(teacher_convergence=lambda d: d["teacher_convergence"].where(d["seed"] == 2022)),
        compare.pair_label))


def test_summary_pairs_patients_over_their_seeds_and_gives_the_seed_sd():
    """Patients are the unit: a patient's seeds are averaged before the signed-rank test; the sd is over seeds."""
    diffs = [-1.0, 0.2, -0.5, -0.5, 0.3, 0.1, -2.0, 1.0, -0.4, -0.2, -0.6, -0.8]  # 6 patients x 2 seeds
    rows = _rows(diffs, seeds=2)
    r = summarise_standard(rows, compare.pair_label).iloc[0]
    per_patient = np.asarray(diffs).reshape(6, 2).mean(axis=1)
    assert (r["runs"], r["distill_pairs_30"], r["distill_wins_30"]) == (12, 6, int((per_patient < 0).sum()))
    assert r["p_raw_30"] == pytest.approx(wilcoxon(per_patient).pvalue)
    seed_means = rows.groupby("seed")["distilled_rmse_30"].mean()
    assert r["distilled_rmse_30_sd"] == pytest.approx(seed_means.std(ddof=1), abs=1e-4)


def test_summary_separates_a_lower_mean_from_a_significant_win_and_says_a_significant_loss():
    """A lower mean RMSE with p >= 0.05 is not called a win; a significant rise is called worse."""
    mixed = [-1.0, 0.8, -0.5, 0.6, -0.9, 0.4, -0.3, 0.2, -0.7, 0.5, -0.2, 0.1]  # mean < 0, p far above 0.05
    text = standard_markdown(summarise_standard(_rows(mixed), compare.pair_label))
    assert np.mean(mixed) < 0 and wilcoxon(mixed).pvalue >= 0.05
    assert "30 min: distillation cannot be told apart (Holm-corrected p >= 0.05) from training the student alone" in text
    assert "for 0 of 1 (teacher kind, student) pair(s). Distillation could not be told apart from it: standard" in text
    worse = [abs(d) + 0.1 for d in mixed]
    text = standard_markdown(summarise_standard(_rows(worse), compare.pair_label))
    assert "30 min: distillation was significantly WORSE than training the student alone: better on 0 of 12" in text
    assert "Distillation lost to it: standard teacher: MiniLM" in text


def test_summary_says_how_busy_the_machine_was_when_speed_was_measured():
    diffs = [-1.0, -0.5, -2.0, 0.3, -0.7, -1.5]
    quiet = standard_markdown(summarise_standard(_rows(diffs).assign(load_average_1min=0.4, cpu_count=2),
                                                 compare.pair_label))
    assert "Speed was measured with a 1-minute load average of 0.4-0.4 on 2 CPU cores." in quiet
    busy = standard_markdown(summarise_standard(_rows(diffs).assign(load_average_1min=3.1, cpu_count=2),
                                                compare.pair_label))
    assert "on 2 CPU cores: other jobs shared the CPU, so the latencies and the speed-ups" in busy
    assert "load average" not in standard_markdown(summarise_standard(_rows(diffs), compare.pair_label))
    # seeds timed in different sessions: one loaded seed makes the pair's speed indicative, not the mean of the two
    mixed = summarise_standard(_rows(diffs, seeds=2).assign(load_average_1min=[0.6, 3.0] * 3, cpu_count=2),
                               compare.pair_label)
    assert mixed.iloc[0]["load_average_1min"] == 3.0
    assert "load average of 3.0-3.0 on 2 CPU cores: other jobs shared the CPU" in standard_markdown(mixed)


def test_summary_says_plainly_when_distillation_lost_or_pairs_are_too_few():
    few = summarise_standard(_rows([0.5, -0.1, 0.2], teacher=30.0), compare.pair_label)
    assert np.isnan(few.iloc[0]["p_raw_30"]) and np.isnan(few.iloc[0]["p_holm_30"])
    text = standard_markdown(few)
    assert "distillation did not beat training the student alone: better on 1 of 3 patients" in text
    assert "too few pairs for a Wilcoxon test" in text
    assert "Distillation was not tested (too few patients): standard teacher: MiniLM" in text
    assert "the teacher did NOT always beat persistence: better on 0 of 3 patients" in text
    # rows written before persistence was recorded: said so, not a crash
    old = _rows([0.1] * 3).drop(columns=["persistence_rmse_30", "persistence_rmse_60"])
    assert "no persistence figures" in standard_markdown(summarise_standard(old, compare.pair_label))


def test_standard_plan_pools_twelve_patients_three_seeds_one_teacher_per_kind(capsys):
    args = distillation_comparison.build_parser().parse_args(["--standard", "--plan"])
    configs = standard_configs(distillation_comparison.shared_config(args))
    assert len(configs) == 3 * 4 * len(STANDARD_SEEDS) and len(STANDARD_PATIENTS) == 12  # kinds x students x seeds
    assert all(c.all_patients and c.data.patients == STANDARD_PATIENTS for c in configs)  # pooled, all 12
    assert all(c.data.covariates and c.model.event_text and c.model.event_channels for c in configs)
    assert all((c.data.max_train_windows, c.data.max_val_windows) == STANDARD_WINDOWS for c in configs)
    assert all(c.train.recipe.startswith("TimeLLM") and c.model.prompt_domain is False for c in configs)
    assert {c.train.mixed_precision for c in configs} == {"no"}  # fp32 on every CPU: runs resume across machines
    assert [(c.student, c.student_layers, c.student_weights) for c in configs[:4]] == [
        ("MLP", None, None), ("BERT-tiny", None, "random"), ("MiniLM", 1, "pretrained"), ("MiniLM", 2, "pretrained")]
    # every seed searches the whole grid (weights reused from another seed can lose to the student alone): the two
    # weights validation ever chose, each with teacher data 0/1 and mixup 0/0.2, the truth-only one without levers
    assert all(c.weights is None and TRUTH_ONLY in c.candidates for c in configs)
    assert [len(c.candidates) for c in configs[:4]] == [2, 2, 2, 2]
    assert [len(c.search_space) for c in configs[:4]] == [5, 5, 5, 5]
    # the levers are searched at the first seed; the later seeds wait for its choice, kind by kind and student by
    # student
    assert all(waits_for_levers(c) == (c.train.seed != STANDARD_SEEDS[0]) and c.levers is None for c in configs)
    runs = planned_runs(configs)
    rows = runs[runs["phase"] == "baseline"]
    assert len(rows) == 3 * 4 * 3 and set(rows["patient"]) == {"+".join(STANDARD_PATIENTS)}
    assert set(rows["seed"]) == set(STANDARD_SEEDS) and rows["pair"].nunique() == 4
    assert (~rows["reused"]).sum() == 4 * 3  # a student's baseline serves every teacher kind of its seed
    teachers = runs[runs["phase"] == "teacher"]
    assert len(teachers) == 36 and teachers["run"].nunique() == 9 and (~teachers["reused"]).sum() == 9
    assert set(runs["kind"]) == {"standard", "privileged", "ridge"}
    # a shared teacher is reused only if its RunConfig is identical across the students (exp/reuse.py's rule)
    for group in (configs[k:k + 4] for k in range(0, len(configs), 4)):
        teacher = {str(phase_configs(c, *patient_groups(c)[0])["teacher"].to_dict()) for c in group}
        assert len(teacher) == 1
    assert distillation_comparison.main(["--standard", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "36 pooled rows" in out and "432 per-patient rows" in out and "trained 9 (once per kind and seed" in out
    # 4 distilled students per row at the first seed, 1 (with that seed's levers) at each later one
    assert "training runs: 96 (72 distilled" in out and "seed 2021's levers" in out


def test_the_plan_costs_each_run_at_its_own_models_measured_speed():
    """Students without a language model at their registry rate; backbone runs slowed by measured depth, a depth
    between two measured ones costed as the deeper (an upper bound); the teacher's runs dominate a student's."""
    assert rates("MLP", 0) == (model_spec("MLP").rate.train, model_spec("MLP").rate.infer)
    one, two, three, six = (rates("MiniLM", n) for n in (1, 2, 3, 6))
    assert one == (model_spec("TimeLLM").rate.train, model_spec("TimeLLM").rate.infer)
    assert one[0] > two[0] > six[0] and one[1] > two[1] > six[1] and three == six
    args = distillation_comparison.build_parser().parse_args(["--standard", "--plan"])
    configs = standard_configs(distillation_comparison.shared_config(args))
    runs = planned_runs(configs)
    teacher = runs[runs["phase"] == "teacher"].iloc[0]
    assert (teacher["model"], teacher["layers"]) == ("MiniLM", 6)
    assert set(zip(runs.loc[runs["phase"] == "baseline", "model"], runs.loc[runs["phase"] == "baseline", "layers"])) \
        == {("MiniLM", 1), ("MiniLM", 2), ("BERT-tiny", 2), ("MLP", 0)}
    assert estimate_hours(runs, configs) < estimate_hours(runs.assign(model="MiniLM", layers=6), configs)


def _stub_search(monkeypatch, tmp_path, search) -> None:
    """The standard report with nothing trained: data, teacher and baseline stubbed, ``search`` standing for the
    validation search (it records its call and stops the pair), no report written, the Ridge reference a path."""
    monkeypatch.setattr(pipeline, "build_splits", lambda data: SimpleNamespace(train=[], val=[], test=[]))
    monkeypatch.setattr(pipeline, "view_splits", lambda teacher, student, splits: splits)
    monkeypatch.setattr(pipeline, "train_references", lambda *a: (None, None, 1))
    monkeypatch.setattr(pipeline, "search_weights", search)
    monkeypatch.setattr(compare, "write_standard_reports", lambda *a, **k: "")
    monkeypatch.setattr(compare, "ridge_reference", lambda cfg: tmp_path / "ridge")


def test_every_seed_searches_its_own_weights(tmp_path, monkeypatch, capsys):
    """The pipeline's search runs once per teacher kind and student at the first seed over the whole grid (loss
    weights x teacher-data shares x mixup alphas, 0 among them) with that seed's settings; a later seed waits for
    that seed's row (its levers), unless no lever is searched. The search is stubbed (it records its call and stops
    the pair) and the Ridge reference too, so nothing trains. --seeds outside the preset is a one-line error."""
    calls = []

    def search(group, *rest):
        cfg, configs = group.cfg, group.configs
        calls.append((cfg.train.seed, teacher_kind(configs), cfg.student, cfg.student_layers,
                      tuple(cfg.search_space), configs["distilled"].train.seed))
        raise LLMTimeError("stop after the search")

    _stub_search(monkeypatch, tmp_path, search)
    flags = ["--standard", "--csv", str(tmp_path / "pooled.csv"), "--out", str(tmp_path)]
    assert distillation_comparison.main(flags) == 1  # every pair stopped at the stub, the later seeds' wait
    assert sorted(c[:4] for c in calls) == sorted((STANDARD_SEEDS[0], kind, student, layers)
                                                  for kind in ("standard", "privileged", "ridge")
                                                  for student, layers, _ in STANDARD_STUDENTS)
    assert "24 row(s) wait for seed 2021's rows" in capsys.readouterr().err
    assert all(c[0] == c[5] for c in calls)  # the distilled students train with the row's own seed
    space = {c[4] for c in calls if c[2:4] == ("MiniLM", 1)}
    assert len(space) == 1  # one search per seed and kind, the same candidates each time
    levers = {(c.weights, c.teacher_data, c.mixup_alpha) for c in space.pop()}
    assert {(s, a) for _, s, a in levers} == {(0.0, 0.0), (1.0, 0.0), (0.0, 0.2), (1.0, 0.2)}
    assert {w for w, _, _ in levers} == set(parse_grid(STANDARD_SEARCH["grid"]))
    calls.clear()
    assert distillation_comparison.main([*flags, "--seeds", "2023"]) == 1 and not calls
    calls.clear()  # the command line narrows the preset's search: the loss weights alone
    assert distillation_comparison.main([*flags, "--seeds", "2022", "--teacher-data", "0", "--mixup-alpha", "0"]) == 1
    assert all(c.plain for call in calls for c in call[4]) and len(calls[0][4]) == 2 and len(calls) == 12
    calls.clear()  # ... or widens it: the pipeline's whole weight grid
    assert distillation_comparison.main([*flags, "--seeds", "2022", "--grid", DEFAULT_GRID, "--teacher-data", "0",
                                         "--mixup-alpha", "0"]) == 1
    assert {c.weights for c in next(c for c in calls if c[2] == "MiniLM")[4]} == set(parse_grid(DEFAULT_GRID))
    capsys.readouterr()
    assert distillation_comparison.main([*flags, "--seeds", "2024"]) == 2
    assert "--seeds must be some of the standard report's seeds 2021, 2022, 2023, got '2024'" in capsys.readouterr().err
    assert distillation_comparison.main(["--mode", "quick", "--seeds", "2022"]) == 2
    assert "--seeds goes with --standard" in capsys.readouterr().err


def test_truth_only_weights_are_scored_on_the_baseline_run_not_retrained():
    """(1, 0, 0) is the baseline's objective: with the same epochs and no initialisation from the baseline, the
    baseline's run stands for it (the plan counts it as reused); otherwise it trains like any candidate."""
    args = distillation_comparison.build_parser().parse_args(["--standard", "--plan"])
    configs = standard_configs(distillation_comparison.shared_config(args))
    cfg = configs[0]
    assert baseline_stands_for(cfg, TRUTH_ONLY) and not baseline_stands_for(cfg, LossWeights(0.5, 0.5, 0.0))
    assert not baseline_stands_for(dataclasses.replace(cfg, init_from_baseline=True), TRUTH_ONLY)
    assert not baseline_stands_for(dataclasses.replace(cfg, distill_epochs=cfg.student_epochs + 1), TRUTH_ONLY)
    runs = planned_runs(configs)
    truth = runs[(runs["phase"] == "distilled") & (runs["weights"] == str(TRUTH_ONLY.as_tuple()))]
    assert len(truth) == 36 and truth["reused"].all()  # one per kind, student and seed
    baselines = set(runs[runs["phase"] == "baseline"]["run"])
    assert set(truth["run"]) <= baselines


def test_report_alone_needs_rows_and_the_standard_preset(tmp_path, capsys):
    assert distillation_comparison.main(["--standard", "--report", "--csv", str(tmp_path / "pooled.csv")]) == 2
    assert "does not exist: run the standard report first" in capsys.readouterr().err
    assert distillation_comparison.main(["--mode", "quick", "--report"]) == 2
    assert "--report goes with --standard" in capsys.readouterr().err
    assert distillation_comparison.main(["--standard", "--retime", "--csv", str(tmp_path / "pooled.csv")]) == 2
    assert "there are no finished rows to time" in capsys.readouterr().err
    assert distillation_comparison.main(["--mode", "quick", "--retime"]) == 2
    assert "--retime goes with --standard" in capsys.readouterr().err


def test_retime_of_some_seeds_leaves_the_other_rows_alone(tmp_path):
    """--retime --seeds 2021 times seed 2021's rows only (another seed may still be training): the seed-2022 row is
    neither reloaded nor rewritten; timed on its own, it is skipped with a warning, since its runs are not here."""
    csv = tmp_path / "pooled.csv"
    csv.write_text("config_key,seed,teacher_run,distilled_run,speedup_b1\n0123abcd,2022,/no/teacher,/no/student,2.5\n")
    before = csv.read_bytes()
    assert retime_csv(csv, repeats=2, threads=1, int8=True, seeds={2021}) == 0
    assert csv.read_bytes() == before
    # a report grown over sessions on other machines: rows whose run folders are not here are said and left alone
    with pytest.warns(UserWarning, match=r"1 of 1 row\(s\) not timed: their run folders are not on this machine"):
        assert retime_csv(csv, repeats=2, threads=1, int8=True, seeds={2022}) == 0
    assert csv.read_bytes() == before


def test_an_interrupted_teacher_or_baseline_continues_a_distilled_run_restarts(tmp_path):
    args = distillation_comparison.build_parser().parse_args(["--standard"])
    first = standard_configs(distillation_comparison.shared_config(args), out=str(tmp_path))[0]
    cfg = phase_configs(first, *patient_groups(first)[0])["teacher"]
    run_dir = tmp_path / "teacher_MiniLM"
    run_dir.mkdir()
    assert continuing(run_dir, cfg, None).train.resume is False  # nothing to continue
    write_json(run_dir / "config.json", cfg.to_dict())
    (run_dir / "last.pt").write_bytes(b"state")
    assert continuing(run_dir, cfg, None).train.resume is True
    assert continuing(run_dir, cfg, {"weights": [0.5, 0.5, 0.0]}).train.resume is False
    other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, learning_rate=1e-4))
    assert continuing(run_dir, other, None).train.resume is False  # other settings: start afresh, never mix




def test_a_later_seed_takes_the_levers_of_the_first_seeds_best_distilled_student(tmp_path):
    """A later seed's row waits until the first seed's row of the same kind and student is written; then it searches
    the loss weights with the levers of that seed's distilled student of lowest validation loss (the first on ties;
    the baseline's loss, standing for (1, 0, 0), is not a lever choice), so its candidates are that one and the
    student alone."""
    args = distillation_comparison.build_parser().parse_args(["--standard"])
    configs = standard_configs(distillation_comparison.shared_config(args), out=str(tmp_path),
                               csv=tmp_path / "pooled.csv")
    first = next(c for c in configs if c.student == "MLP" and c.teacher_view == "privileged")
    later = next(c for c in configs if c.train.seed == 2022 and c.student == "MLP" and c.teacher_view == "privileged")
    assert resolve_levers(first, configs) is first and resolve_levers(later, configs) is None  # nothing finished
    phases = phase_configs(first, *patient_groups(first)[0])
    losses = {(0.0, 0.0): 0.30, (0.0, 0.2): 0.25, (1.0, 0.0): 0.25, (1.0, 0.2): 0.40}
    for c in first.search_space:
        if baseline_stands_for(first, c):
            continue
        run = Path(phases["distilled"].checkpoints) / run_names(phases, c, False)["distilled"]
        run.mkdir(parents=True)
        write_json(run / "metrics.json", {"fit": {"best_val_loss": losses[(c.teacher_data, c.mixup_alpha)]}})
    assert resolve_levers(later, configs) is None  # the runs are there, but the first seed's row is not written
    append_row(first.csv_path, {"config_key": config_key(first, phases), "seed": 2021})
    ready = resolve_levers(later, configs)
    assert ready.levers == (0.0, 0.2) and ready.train.seed == 2022
    assert [(c.weights, c.teacher_data, c.mixup_alpha) for c in ready.search_space] == [
        (LossWeights(0.5, 0.5, 0.0), 0.0, 0.2), (TRUTH_ONLY, 0.0, 0.0)]
    later_phases = phase_configs(ready, *patient_groups(ready)[0])
    assert config_key(ready, later_phases) != config_key(later, later_phases)  # the row records the levers it used
    # The run folders are git-ignored and gone on a new machine: the pooled row's record of the search decides alone
    searched = {c: losses[(c.teacher_data, c.mixup_alpha)] for c in first.search_space
                if not baseline_stands_for(first, c)}
    shutil.rmtree(Path(phases["distilled"].checkpoints))
    assert resolve_levers(later, configs) is None  # neither folders nor a record
    first.csv_path.unlink()
    append_row(first.csv_path, {"config_key": config_key(first, phases), "seed": 2021,
                                "search_val_mse": format_losses(searched)})
    assert resolve_levers(later, configs).levers == (0.0, 0.2)
    assert parse_losses(format_losses(searched), first.search_space) == searched
    assert parse_losses("a9_b9_g9=0.1", first.search_space) is None  # another search's record is not read as this one
    tests = {c: (18.12341, 28.5) for c in searched}  # the test figures beside them: reported, rounded, read back
    assert read_test_rmse(format_test_rmse(tests)) == {c.label(): (18.1234, 28.5) for c in searched}
    assert read_test_rmse("") == {} and read_test_rmse("a0.5_b0.5_g0=18.1") == {}


def test_kinds_runs_some_teacher_kinds_only(tmp_path, monkeypatch, capsys):
    """--kinds narrows the standard report to some teacher kinds (one process per kind on a machine with cores to
    spare); an unknown kind is a one-line error."""
    kinds = []

    def search(group, *rest):
        kinds.append(teacher_kind(group.configs))
        raise LLMTimeError("stop after the search")

    _stub_search(monkeypatch, tmp_path, search)
    flags = ["--standard", "--csv", str(tmp_path / "pooled.csv"), "--out", str(tmp_path), "--seeds", "2021"]
    assert distillation_comparison.main([*flags, "--kinds", "privileged,ridge"]) == 1
    assert kinds == ["privileged"] * 4 + ["ridge"] * 4
    capsys.readouterr()
    assert distillation_comparison.main([*flags, "--kinds", "oracle"]) == 2
    assert "--kinds must be some of the standard report's teacher kinds standard, privileged, ridge, got 'oracle'" \
        in capsys.readouterr().err


def test_a_pairs_progress_line_names_the_students_cut_depth(monkeypatch, capsys):
    # MiniLM-L1 and MiniLM-L2 are different rows: the line a long run prints must tell them apart
    monkeypatch.setattr(compare, "run_pipeline", lambda cfg: None)
    args = distillation_comparison.build_parser().parse_args(["--standard", "--plan"])
    configs = standard_configs(distillation_comparison.shared_config(args))[:4]
    assert compare.run_pairs(configs, total=36) == []
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("=== pair")]
    assert [line.split(": ", 1)[1] for line in lines] == [
        "MiniLM→MLP (seed 2021)", "MiniLM→BERT-tiny (random) (seed 2021)", "MiniLM→MiniLM-L1 (seed 2021)",
        "MiniLM→MiniLM-L2 (seed 2021)"]
