"""Distillation: loss terms, layer mapping, projections, the teacher cache, the pipeline CLI and the pair comparison.

Everything runs on conftest's tiny saved backbones and one-patient simulated cohort (1 training day, 6 test hours),
on one CPU thread: on a shared machine, multi-threaded passes of models this small mostly wait on each other.
"""

from __future__ import annotations

import shutil

from pathlib import Path

import pandas as pd
import pytest
import torch

from builders import TINY_FLAGS, TINY_WIDTHS, pipeline_args
from data_provider.cohort_files import generate_patient
from data_provider.data_factory import build_splits, description, make_loader
from data_provider.simulate import cohort_specs
from distillation import cli, compare, pipeline
from distillation.config import phase_configs
from distillation.losses import (
    PROJECTION_PREFIX,
    DistillationObjective,
    DistillStudent,
    LossWeights,
    backbone_depth,
    build_projections,
    check_layer_map,
    distillation_loss,
    hidden_width,
    normalise_hidden,
    parse_grid,
    parse_layer_map,
    split_state,
    uniform_layer_map,
)
from distillation.phases import distill_builder
from distillation.retime import retime_csv
from distillation.standard import write_standard_reports
from distillation.teacher_cache import TeacherCache, estimate_bytes
from configs import DataConfig, ModelConfig, TrainConfig
from exp.run import RunResult, evaluate_saved
from exp.objective import masked_mse
from exp.trainer import Trainer
from models.backbones import BACKBONES
from models.time_llm import TimeLLM
from scripts import distillation_comparison
from utils.errors import USER_ERROR_EXIT, LLMTimeError

pytestmark = pytest.mark.usefixtures("one_thread")

ROW_OF_FAMILY = {"bert": "BERT", "albert": "ALBERT", "mobilebert": "MobileBERT", "gpt2": "GPT2",
                 "distilbert": "DistilBERT"}


@pytest.fixture(scope="module")
def splits(cohort):
    return build_splits(DataConfig(root_path=str(cohort), max_train_windows=48, max_val_windows=24, train_draw="fixed"))


def tiny(folders, family: str, splits, **overrides) -> TimeLLM:
    torch.manual_seed(0)
    cfg = ModelConfig(llm_model=ROW_OF_FAMILY[family], llm_path=str(folders[family]), **{**TINY_WIDTHS, **overrides})
    return TimeLLM(cfg, DataConfig(), splits.scaler, splits.description)


# --- layer mapping and loss terms --------------------------------------------------------------------------------


def test_uniform_layer_map_pairs_ends_with_ends():
    assert uniform_layer_map(4, 12) == [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12)]
    assert uniform_layer_map(2, 6) == [(0, 0), (1, 3), (2, 6)]
    assert uniform_layer_map(3, 2) == [(0, 0), (1, 1), (2, 1), (3, 2)]
    assert uniform_layer_map(4, 2) == [(0, 0), (1, 1), (2, 1), (3, 2), (4, 2)]  # halves round up (0.5 -> 1)
    assert uniform_layer_map(1, 1) == [(0, 0), (1, 1)]


def test_explicit_layer_map_is_checked():
    assert parse_layer_map("0:0, 1:3,2:6") == [(0, 0), (1, 3), (2, 6)]
    for bad in ("0-0", "a:1", "1:2:3"):
        with pytest.raises(LLMTimeError):
            parse_layer_map(bad)
    assert check_layer_map([(0, 0), (2, 6)], 2, 6) == [(0, 0), (2, 6)]
    with pytest.raises(LLMTimeError, match="outside"):
        check_layer_map([(3, 0)], 2, 6)
    with pytest.raises(LLMTimeError, match="twice"):
        check_layer_map([(1, 1), (1, 2)], 2, 6)


def _loss_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    pred, y, t = (torch.randn(5, 12, generator=g) for _ in range(3))
    mask = torch.rand(5, 12, generator=g) > 0.2
    s_feats = [torch.randn(5, 12, 32, generator=g) for _ in range(2)]
    t_feats = [torch.randn(5, 12, 32, generator=g) for _ in range(2)]
    return pred, y, mask, t, s_feats, t_feats


def test_each_zero_weight_switches_its_term_off():
    pred, y, mask, t, s_feats, t_feats = _loss_inputs()
    truth, teacher = masked_mse(pred, y, mask), masked_mse(pred, t, mask)
    hidden = torch.stack([torch.nn.functional.mse_loss(a, b) for a, b in zip(s_feats, t_feats)]).mean()

    loss, terms = distillation_loss(LossWeights(0.3, 0.7, 0.0), pred, y, mask, t, s_feats, t_feats)
    assert torch.equal(loss, 0.3 * truth + 0.7 * teacher) and set(terms) == {"truth", "teacher"}
    # gamma 0 needs no hidden states at all; beta 0 needs no teacher
    assert torch.equal(distillation_loss(LossWeights(0.3, 0.7, 0.0), pred, y, mask, t)[0], 0.3 * truth + 0.7 * teacher)
    assert torch.equal(distillation_loss(LossWeights(1.0, 0.0, 0.0), pred, y, mask)[0], truth)
    assert torch.equal(distillation_loss(LossWeights(0.0, 1.0, 0.0), pred, y, mask, t)[0], teacher)
    full, terms = distillation_loss(LossWeights(0.5, 0.5, 0.1), pred, y, mask, t, s_feats, t_feats)
    assert torch.allclose(full, 0.5 * truth + 0.5 * teacher + 0.1 * hidden)
    assert terms["hidden"] == pytest.approx(float(hidden))


def test_weights_are_validated():
    for bad in ((-1, 1, 0), (0, 0, 1), (1, float("nan"), 0)):
        with pytest.raises(LLMTimeError):
            LossWeights(*bad)
    assert [w.as_tuple() for w in parse_grid("1,0,0; 0.5,0.5,0.1")] == [(1, 0, 0), (0.5, 0.5, 0.1)]
    with pytest.raises(LLMTimeError):
        parse_grid("1,0")


def test_projection_shapes_for_every_pair_of_table_widths():
    """Hidden states are hidden width (ALBERT 768, MobileBERT 512), never the embedding width (128)."""
    x = {r.hidden_dim: torch.randn(2, 12, r.hidden_dim) for r in BACKBONES}
    for student in BACKBONES:
        for teacher in BACKBONES:
            (proj,) = build_projections(student.hidden_dim, teacher.hidden_dim, 1)
            assert proj(x[student.hidden_dim]).shape == (2, 12, teacher.hidden_dim)
            assert isinstance(proj, torch.nn.Identity) == (student.hidden_dim == teacher.hidden_dim)


@pytest.mark.parametrize("family", ["albert", "mobilebert", "gpt2"])
def test_hidden_states_have_hidden_width_and_projections_learn(tiny_backbones, splits, family):
    student = tiny(tiny_backbones, family, splits)
    assert hidden_width(student) == 32 and student.backbone.get_input_embeddings().embedding_dim in (16, 32)
    pairs = uniform_layer_map(backbone_depth(student), 4)
    model = DistillStudent(student, pairs, teacher_width=48).eval()  # no dropout: outputs comparable
    x = splits.train.__getitems__([0, 1, 2])["x"]
    pred, feats = model.forward_hidden(x)
    assert len(feats) == 3 and all(f.shape == (3, student.n_patches, 48) for f in feats)
    assert torch.allclose(feats[0].mean(-1), torch.zeros(3, student.n_patches), atol=1e-4)  # normalised
    assert torch.equal(pred, model(x))  # forward(x) is the student's forecast
    sum(((f - 1.0) ** 2).mean() for f in feats).backward()
    assert all(p.grad is not None for p in model.projections.parameters())


def test_distilled_state_reloads_as_a_plain_student(tiny_backbones, splits):
    model = DistillStudent(tiny(tiny_backbones, "bert", splits), [(0, 0), (2, 2)], teacher_width=40)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    state = model.trainable_state_dict()
    assert any(k.startswith(PROJECTION_PREFIX) for k in state)
    student_state, projections = split_state(state)
    plain = tiny(tiny_backbones, "bert", splits).eval()
    plain.load_trainable_state_dict(student_state)
    x = splits.test.__getitems__([0, 1])["x"]
    assert torch.equal(plain(x), model.eval()(x))
    fresh = DistillStudent(tiny(tiny_backbones, "bert", splits), [(0, 0), (2, 2)], teacher_width=40)
    fresh.load_trainable_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(fresh.projections.parameters(), model.projections.parameters()))


def test_init_from_baseline_starts_from_the_baseline_weights(tiny_backbones, splits, tmp_path):
    baseline = tiny(tiny_backbones, "bert", splits)
    with torch.no_grad():
        for p in baseline.trainable_parameters():
            p.add_(0.1)
    phase = RunResult(tmp_path, {}, {}, baseline, splits)
    build = distill_builder(lambda: tiny(tiny_backbones, "bert", splits), [(0, 0)], 40, phase)
    started = build().student.trainable_state_dict()
    assert all(torch.equal(started[k], v) for k, v in baseline.trainable_state_dict().items())
    fresh = distill_builder(lambda: tiny(tiny_backbones, "bert", splits), [], 40, None)()
    assert not torch.equal(fresh.student.head.linear.weight, baseline.head.linear.weight)


# --- the teacher cache ------------------------------------------------------------------------------------------------


def test_teacher_runs_once_per_window_across_epochs(tiny_backbones, splits):
    teacher = tiny(tiny_backbones, "gpt2", splits).eval()
    seen = []
    teacher.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    cache = TeacherCache.build(teacher, splits.train, layers=[0, 2], batch_size=20)
    assert sum(seen) == cache.windows_run == len(splits.train)
    assert cache.nbytes == estimate_bytes(len(splits.train), teacher.n_patches, 32, 2, 12)

    # entries are keyed by window index: a shuffled batch finds its own rows
    idx = [7, 3, 30]
    with torch.no_grad():
        pred, hidden = teacher.forward_hidden(splits.train.__getitems__(idx)["x"])
    got_pred, got_hidden = cache.lookup(torch.tensor(idx), torch.device("cpu"))
    assert torch.allclose(got_pred, pred, atol=1e-6)
    assert torch.allclose(got_hidden[1], normalise_hidden(hidden[2]), atol=1e-2)  # float16 storage

    seen.clear()
    lookups = cache.lookups
    student = DistillStudent(tiny(tiny_backbones, "bert", splits), [(0, 0), (2, 2)], teacher_width=32)
    cfg = TrainConfig(batch_size=16, train_epochs=2, patience=5, learning_rate=1e-3)
    trainer = Trainer(cfg, student, DistillationObjective(LossWeights(0.5, 0.5, 0.1), cache))
    fit = trainer.fit(make_loader(splits.train, 16, True, 0), make_loader(splits.val, 64, False, 0))
    assert fit.epochs_run == 2
    assert not seen  # two epochs of distillation, and the teacher never ran again
    assert cache.lookups - lookups == 2 * len(make_loader(splits.train, 16, True, 0))

    # each epoch's record holds the mean of every unweighted term beside the total, which is their weighted sum
    for record in fit.history:
        parts = {k: record[f"train_{k}_loss"] for k in ("truth", "teacher", "hidden")}
        assert record["train_loss"] == pytest.approx(
            0.5 * parts["truth"] + 0.5 * parts["teacher"] + 0.1 * parts["hidden"], rel=1e-5)
        assert all(v > 0 for v in parts.values())


def test_the_objective_reports_its_terms_per_epoch_and_starts_afresh():
    """epoch_terms: the mean of each unweighted term over the steps since the last call; a term with weight 0 is
    absent (never computed)."""
    objective = DistillationObjective(LossWeights(1.0, 0.0, 0.0), cache=None)
    model = lambda x: x[:, :3]  # noqa: E731  a "forecast" that is the first three inputs
    x = torch.zeros(2, 5)
    for target in (1.0, 3.0):
        objective(model, {"x": x, "y": torch.full((2, 3), target), "mask": torch.ones(2, 3, dtype=torch.bool)})
    assert objective.epoch_terms() == {"train_truth_loss": pytest.approx((1.0 + 9.0) / 2)}
    assert objective.epoch_terms() == {}


# --- the pipeline -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pipeline_end_to_end_writes_a_complete_row(cohort, tiny_backbones, tmp_path, capsys):
    args = pipeline_args(cohort, tiny_backbones, tmp_path, "--grid", "0.5,0.5,0;0.5,0.5,0.1")
    assert pipeline.main(args) == 0
    rows = pd.read_csv(tmp_path / "distillation.csv", dtype={"patient": str})
    assert len(rows) == 1
    row = rows.iloc[0]
    empty = [c for c in rows.columns if pd.isna(row[c])]
    assert not empty, f"unfilled columns: {empty}"
    assert (row["teacher"], row["student"], row["patient"]) == ("GPT2", "BERT", "1001")
    assert row["teacher_weights"] == f"pretrained:{tiny_backbones['gpt2']}"
    assert row["weights_chosen_by"] == "validation (2 candidates)"
    # the distilled run's history shows each term of its loss per epoch (fit.history in metrics.json)
    history = pd.read_json(Path(row["distilled_run"]).parent / "distilled_BERT_from_GPT2_a0.5_b0.5_g0.1" /
                           "metrics.json", typ="series")["fit"]["history"]
    assert {"train_loss", "train_truth_loss", "train_teacher_loss", "train_hidden_loss"} <= set(history[0])

    # the weights were chosen on validation MSE, never on training loss or test
    runs = Path(row["distilled_run"]).parent
    val = {}
    for w in ((0.5, 0.5, 0.0), (0.5, 0.5, 0.1)):
        metrics = pd.read_json(runs / f"distilled_BERT_from_GPT2_a{w[0]:g}_b{w[1]:g}_g{w[2]:g}" / "metrics.json",
                               typ="series")
        val[w] = metrics["fit"]["best_val_loss"]
    assert (row["alpha"], row["beta"], row["gamma"]) == min(val, key=val.get)
    assert row["distilled_val_mse"] == pytest.approx(min(val.values()), abs=1e-6)
    assert row["retention_30"] == pytest.approx(row["teacher_rmse_30"] / row["distilled_rmse_30"], rel=1e-3)
    assert row["speedup_b1"] == pytest.approx(row["teacher_latency_b1_ms"] / row["student_latency_b1_ms"], rel=1e-2)
    assert 0 <= row["agreement_30"] <= 100 and row["test_windows"] > 0
    # persistence on the same test windows (the teacher run's), the size cut and the INT8 student (on by default)
    teacher_metrics = pd.read_json(Path(row["teacher_run"]) / "metrics.json", typ="series")["summary"]
    assert row["persistence_rmse_30"] == pytest.approx(teacher_metrics["persistence_rmse_30"])
    assert row["persistence_rmse_30"] > 0 and row["persistence_rmse_60"] > 0
    assert row["size_reduction_pct"] == pytest.approx(
        100 * (1 - row["student_params_total"] / row["teacher_params_total"]), abs=0.01)
    assert row["int8_size_mb"] > 0 and row["int8_latency_b1_ms"] > 0 and 0 <= row["int8_max_abs_diff_mgdl"] < 50
    assert row["onnx_size_mb"] > 0 and 0 <= row["int8_float_ops"] <= row["int8_ops"] and row["int8_ops"] > 0
    assert row["int8_weight_range"] in ("full", "reduced")
    assert row["load_average_1min"] >= 0 and row["cpu_count"] >= 1
    # the machine (CPU and its instruction set) that trained the runs and took the latencies, and each run's
    # early-stopping verdict as its metrics.json records it, so the report can count capped runs without the folders
    assert row["trained_on"].startswith("CPU: ") and row["timed_on"] == row["trained_on"]
    for phase in ("teacher", "baseline", "distilled"):
        verdict = pd.read_json(Path(row[f"{phase}_run"]) / "metrics.json", typ="series")["convergence"]["verdict"]
        assert row[f"{phase}_convergence"] == verdict and verdict in ("converged", "capped")

    # the distilled checkpoint reloads as a plain TimeLLM student and scores the same
    again = evaluate_saved(row["distilled_run"])
    assert isinstance(again.model, TimeLLM)
    assert again.row["rmse_30"] == pytest.approx(row["distilled_rmse_30"], rel=1e-6)

    # a second identical run skips the finished row
    assert pipeline.main(args) == 0
    assert len(pd.read_csv(tmp_path / "distillation.csv")) == 1
    assert "skipped" in capsys.readouterr().out

    # timing the finished row again reloads its two models: new latencies, the same INT8 error, nothing else moves
    csv = tmp_path / "distillation.csv"
    assert retime_csv(csv, repeats=2, threads=1, int8=True) == 1
    timed = pd.read_csv(csv, dtype={"patient": str}).iloc[0]
    speed = {"teacher_latency_b1_ms", "student_latency_b1_ms", "teacher_latency_b64_ms", "student_latency_b64_ms",
             "speedup_b1", "speedup_b64", "int8_latency_b1_ms", "load_average_1min", "cpu_count", "int8_size_mb",
             "timed_on"}
    assert all(timed[c] > 0 for c in speed - {"load_average_1min", "timed_on"})
    assert timed["speedup_b1"] == pytest.approx(timed["teacher_latency_b1_ms"] / timed["student_latency_b1_ms"],
                                                rel=1e-2)
    assert timed["int8_max_abs_diff_mgdl"] == pytest.approx(row["int8_max_abs_diff_mgdl"], abs=0.01)
    assert all(timed[c] == row[c] for c in rows.columns if c not in speed and c != "int8_max_abs_diff_mgdl"
               and not pd.isna(row[c]))
    # a row whose INT8 error the reloaded student does not reproduce was made from other runs: nothing is written
    wrong = pd.read_csv(csv, dtype={"patient": str})
    wrong.loc[0, "int8_max_abs_diff_mgdl"] += 5.0
    wrong.to_csv(csv, index=False)
    before = csv.read_bytes()
    with pytest.raises(LLMTimeError, match="Nothing was written"):
        retime_csv(csv, repeats=2, threads=1, int8=True)
    assert csv.read_bytes() == before


@pytest.mark.slow
def test_pooled_rows_split_into_per_patient_rows(tiny_backbones, tmp_path):
    """--all-patients trains one model per phase over two patients; the standard report's rows.csv has one row per
    patient with that patient's scores (from each run's per-patient metrics), its persistence and agreement."""
    root = tmp_path / "cohort"
    for spec in cohort_specs(2, 1.0, 0.25, seed=3):
        generate_patient(spec, root)
    args = ["--teacher", "gpt2", "--student", "google-bert/bert-base-uncased",
            "--teacher-path", str(tiny_backbones["gpt2"]), "--student-path", str(tiny_backbones["bert"]),
            "--root-path", str(root), "--all-patients", "1", "--max-train-windows", "48", "--max-val-windows", "24",
            "--teacher-epochs", "1", "--student-epochs", "1", "--distill-epochs", "1", "--latency-repeats", "2",
            "--int8", "0", "--grid", "0.5,0.5,0;1,0,0", "--out", str(tmp_path / "runs"), *TINY_FLAGS]
    assert pipeline.main(args) == 0
    pooled_csv = tmp_path / "runs" / "distillation.csv"
    pooled = pd.read_csv(pooled_csv, dtype={"patient": str})
    assert list(pooled["patient"]) == ["all"]
    text = write_standard_reports(pooled_csv, compare.pair_label)
    rows = pd.read_csv(tmp_path / "runs" / "rows.csv", dtype={"patient": str})
    assert list(rows["patient"]) == ["1001", "1002"] and set(rows["group"]) == {"all"}
    for phase in ("teacher", "baseline", "distilled"):
        metrics = pd.read_json(Path(pooled.iloc[0][f"{phase}_run"]) / "metrics.json", typ="series")
        for r in rows.itertuples():
            assert getattr(r, f"{phase}_rmse_30") == pytest.approx(metrics["per_patient"][r.patient]["rmse_30"])
            assert 0 <= getattr(r, f"{phase}_clarke_ab_30") <= 100
    teacher = pd.read_json(Path(pooled.iloc[0]["teacher_run"]) / "metrics.json", typ="series")
    for r in rows.itertuples():
        assert r.persistence_rmse_60 == pytest.approx(teacher["persistence"]["per_patient"][r.patient]["rmse_60"])
        assert 0 <= r.agreement_30 <= 100 and r.scored_30 > 0
        assert r.retention_30 == pytest.approx(r.teacher_rmse_30 / r.distilled_rmse_30, rel=1e-3)
    scored = pd.read_csv(Path(pooled.iloc[0]["teacher_run"]) / "predictions.csv").query("horizon_min == 30")
    assert rows["scored_30"].sum() == len(scored)  # every scored test target, once
    assert "better on" in text and (tmp_path / "runs" / "summary.csv").is_file() and "Partial" not in text
    # each searched candidate on validation and test, beside the student alone; one of them is the choice
    levers = text[text.index("## Each lever on validation and on test"):]
    distilled = float(pooled.iloc[0]["search_val_mse"].split("=")[1])
    assert "| alone (1, 0, 0) |" in levers and f"| a0.5_b0.5_g0 | {distilled:.4f} |" in levers
    assert levers.count("| yes |") == 1
    # its run time: the teacher, the baseline and the one distilled student the grid trained ((1, 0, 0) is the
    # baseline's run), each run's own wall time
    walls = [pd.read_json(Path(pooled.iloc[0][f"{phase}_run"]) / "metrics.json", typ="series")["summary"]
             ["wall_seconds"] for phase in ("teacher", "baseline", "distilled")]
    assert f"Run time: {sum(walls) / 3600:.1f} h, the sum of the wall times of the 3 finished runs" in text
    assert "covers 1 of the 9 planned pooled rows" in write_standard_reports(pooled_csv, compare.pair_label, planned=9)
    assert "Complete: all 1 planned pooled rows" in write_standard_reports(pooled_csv, compare.pair_label, planned=1)
    # a new machine has the committed CSVs but not the git-ignored run folders: the report stands on its rows.csv
    # and its run-time ledger, and says the same
    before = pd.read_csv(tmp_path / "runs" / "rows.csv", dtype={"patient": str})
    complete = write_standard_reports(pooled_csv, compare.pair_label, planned=1)
    shutil.rmtree(Path(pooled.iloc[0]["teacher_run"]).parent)
    assert write_standard_reports(pooled_csv, compare.pair_label, planned=1) == complete
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "runs" / "rows.csv", dtype={"patient": str}), before)
    (tmp_path / "runs" / "rows.csv").unlink()  # neither folders nor rows: a one-line error, not a report without it
    with pytest.raises(LLMTimeError, match="has neither its run folders"):
        write_standard_reports(pooled_csv, compare.pair_label)


def test_dry_run_trains_nothing_and_bad_flags_exit_2(cohort, tiny_backbones, tmp_path, capsys):
    assert pipeline.main(pipeline_args(cohort, tiny_backbones, tmp_path, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "1. teacher" in out and "3. distilled" in out and "no temperature" in out
    assert not (tmp_path / "runs").exists()
    for bad in (["--teacher", "bert"], ["--teacher", "bert", "--student", "nope", "--dry-run"],
                pipeline_args(cohort, tiny_backbones, tmp_path, "--alpha", "0.5", "--beta", "0.5", "--dry-run"),
                pipeline_args(cohort, tiny_backbones, tmp_path, "--alpha", "1.5", "--dry-run"),
                pipeline_args(cohort, tiny_backbones, tmp_path, "--grid", "1,2", "--dry-run"),
                pipeline_args(cohort, tiny_backbones, tmp_path, "--bogus")):
        assert pipeline.main(bad) == USER_ERROR_EXIT
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
    assert "temperature" in cli.build_parser().format_help()


@pytest.mark.slow
def test_quick_comparison_with_tiny_rows(cohort, tiny_backbones, tmp_path, capsys):
    """--mode quick with every row pointed at a tiny saved folder (--paths), output-only weights given."""
    paths = [f"{row}={tiny_backbones[fam]}" for row, fam in
             (("BERT", "bert"), ("BERT-tiny", "bert"), ("TinyBERT", "bert"), ("DistilBERT", "distilbert"),
              ("MiniLM", "bert"))]
    args = ["--mode", "quick", "--paths", *paths, "--root-path", str(cohort), "--patients", "1001", "--epochs", "1",
            "--max-train-windows", "32", "--max-val-windows", "16", "--alpha", "0.5", "--beta", "0.5",
            "--gamma", "0", "--latency-repeats", "2", "--out", str(tmp_path), *TINY_FLAGS]
    assert distillation_comparison.main(args) == 0
    rows = pd.read_csv(tmp_path / "distillation_pairs.csv")
    assert list(zip(rows["teacher"], rows["student"])) == list(compare.QUICK)
    assert rows.loc[1, "reused_phases"] == "teacher"  # BERT trained once for two pairs
    summary = pd.read_csv(tmp_path / "distillation_pairs_summary.csv")
    assert len(summary) == 3
    picks = ", ".join(summary["picks"].fillna(""))
    for pick in ("best overall", "fastest", "smallest", "best retention"):
        assert pick in picks
    best = summary.loc[summary["distilled_rmse_30"].idxmin()]
    assert "best overall" in best["picks"]
    assert (tmp_path / "distillation_pairs.png").stat().st_size > 0
    assert "**Best overall**" in (tmp_path / "distillation_pairs_summary.md").read_text()
    capsys.readouterr()
    assert distillation_comparison.main(args) == 0  # resumable: every pair/patient already done
    assert capsys.readouterr().out.count("skipped") == 3
    assert len(pd.read_csv(tmp_path / "distillation_pairs.csv")) == 3


def test_comparison_pairs_and_errors(capsys):
    assert compare.parse_pairs("quick", None) == [(t, None, s, None) for t, s in compare.QUICK]
    assert len(compare.parse_pairs("balanced", None)) == 8
    # --mode all is the guide's comprehensive test: its 4 teachers x 4 students, LLaMA-7B not among them
    assert sorted(compare.all_pairs()) == sorted(
        (t, s) for t in ("BERT", "ALBERT", "DistilBERT", "GPT2")
        for s in ("TinyBERT", "BERT-tiny", "MiniLM", "MobileBERT"))
    assert compare.parse_pairs(None, ["minilm,MiniLM:2", "bert-base-uncased,tinybert"]) == [
        ("MiniLM", None, "MiniLM", 2), ("BERT", None, "TinyBERT", None)]
    for bad in (["--mode", "quick", "--custom-pairs", "bert,tinybert"], ["--custom-pairs", "bert"],
                ["--mode", "quick", "--paths", "BERT"], ["--mode", "fast"]):
        assert distillation_comparison.main(bad) == USER_ERROR_EXIT
        assert capsys.readouterr().err.startswith("error: ")


# --- the guide's knobs and spellings -----------------------------------------------------------------------------


def _config(*flags):
    return cli.config_from_args(cli.build_parser().parse_args(["--teacher", "bert", "--student", "tinybert",
                                                               *flags]))


def test_a_lone_alpha_is_the_two_term_recipe():
    assert _config("--alpha", "0.7").weights.as_tuple() == (0.7, 0.3, 0.0)
    assert _config("--alpha", "0").weights.as_tuple() == (0.0, 1.0, 0.0)
    assert _config("--alpha", "0.2", "--beta", "0.5", "--gamma", "0.1").weights.as_tuple() == (0.2, 0.5, 0.1)
    assert _config().weights is None  # none given: searched on validation
    with pytest.raises(LLMTimeError, match=r"--alpha 1.5 given alone must be in \[0, 1\]"):
        _config("--alpha", "1.5")
    with pytest.raises(LLMTimeError, match="--alpha alone"):
        _config("--beta", "0.5")


def test_temperature_is_accepted_ignored_and_said_so_once():
    with pytest.warns(UserWarning, match="--temperature 4 is IGNORED: forecasts are real numbers") as caught:
        with_t = _config("--temperature", "4", "--alpha", "0.5")
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert with_t == _config("--alpha", "0.5")  # nothing a run does depends on it
    assert "IGNORED" in distillation_comparison.build_parser().format_help().replace("\n", " ")


def test_ohiot1dm_is_the_ohio_dataset(cohort):
    """The guide's --dataset ohiot1dm (any case) is OhioT1DM: it finds the ohio prompt and names runs 'ohio'."""
    for spelling in ("ohiot1dm", "OhioT1DM", " OHIO "):
        assert _config("--dataset", spelling).data.data == "ohio"
    cfg = _config("--dataset", "OhioT1DM", "--root-path", str(cohort), "--patients", "1001")
    assert str(phase_configs(cfg, "1001", ["1001"])["teacher"].checkpoints).endswith("ohio_1001_s2021")
    # the bundled cohort has the OhioT1DM layout: windows and the OhioT1DM prompt description come out of it
    splits = build_splits(DataConfig(data="ohiot1dm", root_path=str(cohort), max_train_windows=4, max_val_windows=4))
    assert splits.description == description(DataConfig(data="ohio")) != description(DataConfig())
    with pytest.raises(LLMTimeError, match=r"unknown --data 'ohio2'; choose one of: simulated, ohio \(ohiot1dm\), csv"):
        build_splits(DataConfig(data="ohio2", root_path=str(cohort)))


@pytest.mark.slow
def test_a_failing_pair_is_recorded_and_the_comparison_goes_on(cohort, tiny_backbones, tmp_path, monkeypatch,
                                                              capsys):
    """GPT2 has no weights here (empty Hugging Face cache, no --paths): its pair becomes a failed row with the
    one-line reason, the next pair runs and is summarised, and the exit status says a pair failed."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    args = ["--custom-pairs", "GPT2,BERT-tiny", "BERT,BERT-tiny",
            "--paths", f"BERT={tiny_backbones['bert']}", f"BERT-tiny={tiny_backbones['bert']}",
            "--root-path", str(cohort), "--patients", "1001", "--epochs", "1", "--max-train-windows", "32",
            "--max-val-windows", "16", "--alpha", "0.5", "--latency-repeats", "2", "--out", str(tmp_path), *TINY_FLAGS]
    assert distillation_comparison.main(args) == 1
    out, err = capsys.readouterr()
    assert "pair GPT2 -> BERT-tiny FAILED: no local weights for GPT2" in err
    failed = pd.read_csv(tmp_path / "distillation_pairs_failed.csv")
    assert list(zip(failed["teacher"], failed["student"])) == [("GPT2", "BERT-tiny")]
    assert failed.loc[0, "reason"].startswith("no local weights for GPT2")
    rows = pd.read_csv(tmp_path / "distillation_pairs.csv")
    assert list(zip(rows["teacher"], rows["student"])) == [("BERT", "BERT-tiny")]
    assert "**Failed**: GPT2→BERT-tiny: no local weights" in (tmp_path / "distillation_pairs_summary.md").read_text()
