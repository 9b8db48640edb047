"""The teacher as data (``--teacher_data``) and mixup (``--mixup_alpha``): teacher-only windows carry the teacher's
forecast and never a label beyond the labelled budget; mixup blends inputs and targets with one weight, the same for
the same seed; both join the validation search of every seed, which can choose neither; the teacher kinds of the
standard report, its plan and the two answers its summary opens with.

conftest's one-patient simulated cohort (147 training windows, 48 of them labelled here) and tiny backbones; nothing
trains for more than a step, and the search's training is stubbed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from builders import TINY_FLAGS, TINY_WIDTHS
from configs import DataConfig, ModelConfig, TrainConfig
from data_provider.data_factory import build_splits, make_loader, windows_per_epoch
from distillation import compare, pipeline, search
from distillation.answers import best_deployable, standard_markdown
from distillation.candidates import Candidate, parse_levels
from distillation.config import (PHASE_CSV_NAME, PipelineConfig, config_key, phase_configs, run_names, teacher_kind,
                                 validate)
from distillation.group import Group
from distillation.losses import DistillationObjective, LossWeights, parse_grid
from distillation.mixup import MIXUP_STREAM, Mixup
from distillation.phases import seeded_builder
from distillation.summary import summarise_standard
from distillation.teacher_cache import STORE_DIR, TeacherCache, stored
from distillation.teacher_data import EpochPlan, TeacherDataWindows, teacher_data
from exp.objective import masked_mse
from models import build_model
from scripts import distillation_comparison
from utils.errors import LLMTimeError
from utils.stats import holm

pytestmark = pytest.mark.usefixtures("one_thread")
LABELLED = 48
NOISE = [-1.0, 0.8, -0.5, 0.6, -0.9, 0.4, -0.3, 0.2, -0.7, 0.55, -0.25, 0.1]  # no two alike: exact Wilcoxon p


def _data(cohort, **changes) -> DataConfig:
    return replace(DataConfig(root_path=str(cohort), max_train_windows=LABELLED, max_val_windows=24,
                              train_draw="fixed"), **changes)


@pytest.fixture(scope="module")
def splits(cohort):
    return build_splits(_data(cohort))


def _teacher_data(cohort, splits, shares=(1.0,), seed=7, epochs=3):
    return teacher_data(list(shares), _data(cohort), _data(cohort), splits, splits, seed, epochs)


def _epoch(windows: TeacherDataWindows, seed: int, epoch: int) -> list[int]:
    sampler = make_loader(windows, 16, shuffle=True, seed=seed).sampler
    assert isinstance(sampler, EpochPlan)
    sampler.set_epoch(epoch)
    return list(sampler)


# --- the teacher as data ------------------------------------------------------------------------------------------


def test_each_epoch_is_every_labelled_window_and_a_fresh_draw_of_teacher_only_ones(cohort, splits):
    data = _teacher_data(cohort, splits, shares=(1.0, 2.0))
    assert torch.equal(data.pool.origins[data.labelled], splits.train.origins)  # the labelled set is the students'
    windows = data.windows(1.0)
    labelled = set(np.flatnonzero(windows.labelled.numpy()).tolist())
    assert len(labelled) == LABELLED and len(data.pool) > 2 * LABELLED
    epochs = [_epoch(windows, 7, e) for e in (1, 2, 3)]
    for order in epochs:
        assert len(order) == len(set(order)) == 2 * LABELLED and labelled <= set(order)  # share 1: as many again
    drawn = [set(order) - labelled for order in epochs]
    assert drawn[0] != drawn[1] != drawn[2]  # drawn afresh each epoch...
    assert epochs[0] == _epoch(data.windows(1.0), 7, 1)  # ...as a function of (seed, epoch)
    other = _teacher_data(cohort, splits, seed=8).windows(1.0)
    assert set(_epoch(other, 8, 1)) - labelled != drawn[0]
    assert len(_epoch(data.windows(2.0), 7, 1)) == 3 * LABELLED
    assert windows_per_epoch(replace(splits, train=data.windows(2.0))) == 3 * LABELLED  # not the reachable set
    sampler = make_loader(windows, 16, shuffle=True, seed=7).sampler
    sampler.set_epoch(4)  # drawn for 3 epochs: the cache holds nothing for a fourth
    with pytest.raises(RuntimeError, match="drawn for 3 epochs"):
        list(sampler)


def test_teacher_only_windows_carry_the_teacher_target_and_never_a_label_beyond_the_budget(cohort, splits):
    data = _teacher_data(cohort, splits)
    windows = data.windows(1.0)
    everything = list(range(len(windows)))
    batch = windows.__getitems__(everything)
    mine = windows.labelled
    truth = data.pool.__getitems__(data.cover.tolist())
    assert torch.equal(batch["y"][mine], truth["y"][mine]) and bool(batch["mask"][mine].all())
    assert not batch["y"][~mine].any() and not batch["mask"][~mine].any() and bool(batch["teacher_mask"].all())

    cache = TeacherCache(torch.randn(len(windows), windows.pred_len), [], ())
    objective = DistillationObjective(LossWeights(0.5, 0.5, 0.0), cache)
    model = lambda x: x[:, -windows.pred_len:, 0]  # noqa: E731  a "forecast": the last inputs
    loss = objective(model, batch)
    terms = objective.epoch_terms()
    pred = model(batch["x"])
    assert terms["train_teacher_loss"] == pytest.approx(float(masked_mse(pred, cache.pred, batch["teacher_mask"])))
    assert terms["train_truth_loss"] == pytest.approx(float(masked_mse(pred[mine], truth["y"][mine],
                                                                       truth["mask"][mine])))

    # every reading outside the labelled windows' targets changes: nothing the student trains on moves
    spans = (data.pool.origins[data.labelled][:, None] + torch.arange(1, windows.pred_len + 1)).flatten()
    outside = torch.ones(len(windows.targets), dtype=torch.bool)
    outside[spans] = False
    windows.targets[outside] += 50.0  # the pool's own series (a fresh cut for this test)
    again = windows.__getitems__(everything)
    assert all(torch.equal(again[k], batch[k]) for k in ("x", "y", "mask", "teacher_mask"))
    assert torch.equal(objective(model, again), loss)


def test_a_closed_form_base_fits_the_labelled_windows_only(cohort, splits):
    """A ridge base (``--base ridge``) fits on the windows it is given whose targets are all scored: on teacher data
    it gets the labelled ones, exactly as without teacher data."""
    windows = _teacher_data(cohort, splits, shares=(2.0,)).windows(2.0)
    on_labels, on_teacher_data = (build_model(ModelConfig(model="Ridge"), _data(cohort), splits.scaler,
                                              splits.description) for _ in range(2))
    on_labels.fit_closed_form(splits.train)
    on_teacher_data.fit_closed_form(windows)
    assert torch.equal(on_labels.weight, on_teacher_data.weight) and torch.equal(on_labels.bias, on_teacher_data.bias)


def test_the_teacher_runs_once_on_every_window_a_draw_can_reach(cohort, splits, tiny_backbones):
    data = _teacher_data(cohort, splits, shares=(1.0, 2.0))
    teacher = _teacher(cohort, splits, tiny_backbones)
    build = functools.partial(TeacherCache.build, teacher, layers=[], batch_size=64, autocast_dtype=None)
    cache = data.fill(build)
    assert cache.windows_run == len(data.cover) and data.fill(build) is cache  # once
    picks = [0, len(data.cover) // 2, len(data.cover) - 1]
    with torch.no_grad():
        expected = teacher(data.teacher_pool.__getitems__(data.cover[picks].tolist())["x"])
    assert torch.allclose(cache.pred[picks], expected, atol=1e-5)  # keyed as the candidates' windows are


def test_a_forecast_cache_kept_on_disk_serves_the_next_student_with_the_same_numbers(cohort, splits, tiny_backbones,
                                                                                      tmp_path):
    """The second student of a teacher loads the forecasts the first computed (no teacher pass); another checkpoint,
    other windows, precision or batch size is another file, computed afresh."""
    teacher = _teacher(cohort, splits, tiny_backbones)
    calls = []

    def build(dataset, batch_size=64):
        calls.append(len(dataset))
        return TeacherCache.build(teacher, dataset, [], batch_size, None)

    first = stored(lambda: build(splits.train), tmp_path, splits.train, "sha-a", None, 64)
    again = stored(lambda: build(splits.train), tmp_path, splits.train, "sha-a", None, 64)
    assert calls == [len(splits.train)] and again.windows_run == 0 and torch.equal(again.pred, first.pred)
    assert len(list((tmp_path / STORE_DIR).iterdir())) == 1
    stored(lambda: build(splits.train), tmp_path, splits.train, "sha-b", None, 64)  # a retrained teacher
    stored(lambda: build(splits.val), tmp_path, splits.val, "sha-a", None, 64)  # other windows
    stored(lambda: build(splits.train, 32), tmp_path, splits.train, "sha-a", None, 32)  # other batches
    stored(lambda: build(splits.train), tmp_path, splits.train, "sha-a", torch.bfloat16, 64)  # other precision
    assert len(calls) == 5 and len(list((tmp_path / STORE_DIR).iterdir())) == 5
    assert stored(lambda: build(splits.train), None, splits.train, "sha-a", None, 64).windows_run > 0  # not kept


def test_teacher_data_needs_unlabelled_windows_a_fixed_draw_and_a_teacher_term(cohort, splits, tmp_path):
    everything = build_splits(_data(cohort, max_train_windows=None))
    with pytest.raises(LLMTimeError, match="all 147 are labelled: set --max_train_windows below that"):
        teacher_data([1.0], _data(cohort, max_train_windows=None), _data(cohort, max_train_windows=None),
                     everything, everything, 0, 2)
    cfg = PipelineConfig(teacher="MiniLM", student="MLP", teacher_data="0,1", grid=parse_grid("0.5,0.5,0;1,0,0"),
                         data=_data(cohort, patients=["1001"]))
    validate(cfg)
    with pytest.raises(LLMTimeError, match="needs --train_draw fixed"):
        validate(replace(cfg, data=replace(cfg.data, train_draw="fresh")))
    with pytest.raises(LLMTimeError, match="need weights with a teacher-forecast term"):
        validate(replace(cfg, grid=parse_grid("1,0,0"), teacher_data="1"))
    for text in ("a", "-1", "", "nan"):
        with pytest.raises(LLMTimeError, match="give comma-separated numbers >= 0"):
            parse_levels(text, "teacher_data")
    assert parse_levels("0, 1,1,0.5", "mixup_alpha") == [0.0, 1.0, 0.5]


# --- mixup --------------------------------------------------------------------------------------------------------


def _batch(cohort, splits, n=16):
    windows = _teacher_data(cohort, splits).windows(1.0)
    return windows.__getitems__(_epoch(windows, 7, 1)[:n]), torch.randn(n, windows.pred_len)


def test_mixup_with_alpha_0_is_the_identity_and_draws_nothing(cohort, splits):
    batch, teacher = _batch(cohort, splits)
    mixup = Mixup(0.0, seed=3)
    state = mixup.rng.bit_generator.state
    out, blended = mixup(batch, teacher)
    assert out is batch and blended is teacher and mixup.rng.bit_generator.state == state


def test_mixup_blends_inputs_and_targets_with_one_weight_the_same_for_the_same_seed(cohort, splits):
    batch, teacher = _batch(cohort, splits)
    lam, partner = Mixup(0.4, seed=3).draw(len(teacher))
    out, blended = Mixup(0.4, seed=3)(batch, teacher)
    assert ((lam > 0) & (lam < 1)).all() and sorted(partner) == list(range(len(teacher)))
    w = torch.as_tensor(lam, dtype=torch.float32)
    for key, values, mixed in (("x", batch["x"], out["x"]), ("y", batch["y"], out["y"]), ("teacher", teacher, blended)):
        shape = (-1,) + (1,) * (values.dim() - 1)
        assert torch.allclose(mixed, w.view(shape) * values + (1 - w.view(shape)) * values[partner], atol=1e-6), key
    # the truth of a blend counts only where both windows are labelled; the teacher's target where both score it
    assert torch.equal(out["mask"], batch["mask"] & batch["mask"][partner])
    assert torch.equal(out["teacher_mask"], batch["teacher_mask"] & batch["teacher_mask"][partner])
    assert torch.equal(out["index"], batch["index"])
    again, blended_again = Mixup(0.4, seed=3)(batch, teacher)
    assert torch.equal(again["x"], out["x"]) and torch.equal(blended_again, blended)
    assert not torch.equal(Mixup(0.4, seed=4)(batch, teacher)[0]["x"], out["x"])
    with pytest.raises(ValueError, match="use gamma 0"):  # the teacher's hidden states belong to unblended inputs
        DistillationObjective(LossWeights(0.5, 0.5, 0.1), TeacherCache(teacher, [teacher], (1,)), Mixup(0.4, 3))
    with pytest.raises(LLMTimeError, match="--mixup_alpha must be a finite number >= 0"):
        Mixup(-1.0, 3)


# --- the search -----------------------------------------------------------------------------------------------


def _teacher(cohort, splits, tiny_backbones):
    torch.manual_seed(0)
    cfg = ModelConfig(llm_model="GPT2", llm_path=str(tiny_backbones["gpt2"]), **TINY_WIDTHS)
    return build_model(cfg, _data(cohort), splits.scaler, splits.description).eval()


def _config(cohort, tiny_backbones, seed, **fields) -> PipelineConfig:
    return PipelineConfig(teacher="gpt2", teacher_path=str(tiny_backbones["gpt2"]), student="MLP",
                          grid=parse_grid("0.5,0.5,0;1,0,0"), data=_data(cohort, patients=["1001"]),
                          model=ModelConfig(**TINY_WIDTHS), train=TrainConfig(seed=seed), distill_epochs=2,
                          student_epochs=2, **fields)


def _search(cfg, splits, teacher_model, tmp_path, val_loss):
    """search_weights with training stubbed: each candidate 'trains' to ``val_loss(name)``; returns the search and
    what each trained candidate was given."""
    configs = phase_configs(cfg, "1001", ["1001"])
    teacher_dir = tmp_path / f"teacher_s{cfg.train.seed}"
    teacher_dir.mkdir(exist_ok=True)
    (teacher_dir / "checkpoint.pt").write_bytes(b"weights")
    teacher = SimpleNamespace(model=teacher_model, run_dir=teacher_dir)
    baseline = SimpleNamespace(run_dir=tmp_path, fit={"best_val_loss": 1.0, "train_seconds": 0.0})
    trained = {}

    def train_phase(run_cfg, name, own, build, make_objective, extra):
        trained[name] = SimpleNamespace(splits=own, extra=extra, objective=make_objective(), seed=run_cfg.train.seed)
        return SimpleNamespace(fit={"best_val_loss": val_loss(name), "train_seconds": 1.0}, run_dir=Path(name),
                               row={"rmse_30": 20.0 + val_loss(name), "rmse_60": 30.0 + val_loss(name)})

    group = Group(cfg, "1001", configs, splits, teacher, baseline)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search, "train_phase", train_phase)
        return search.search_weights(group, seeded_builder(configs["baseline"], splits), 0), trained


def test_the_search_tries_every_share_and_alpha_per_seed_and_can_choose_neither(cohort, splits, tiny_backbones,
                                                                                   tmp_path):
    teacher = _teacher(cohort, splits, tiny_backbones)
    cfg = _config(cohort, tiny_backbones, 2021, teacher_data="0,1", mixup_alpha="0,0.5")
    space = cfg.search_space
    assert space[0] == Candidate(LossWeights(0.5, 0.5, 0.0)) and Candidate(LossWeights(1.0, 0.0, 0.0)) in space
    assert len(space) == 5  # (0.5, 0.5, 0) x 2 shares x 2 alphas; (1, 0, 0) has no teacher term: neither lever
    plain_wins = lambda name: 0.1 if name.endswith("_g0") else 0.5  # noqa: E731
    found, trained = _search(cfg, splits, teacher, tmp_path, plain_wins)
    assert found.candidate == space[0] and (found.candidate.teacher_data, found.candidate.mixup_alpha) == (0.0, 0.0)
    assert len(trained) == 4  # (1, 0, 0) is the baseline's own objective: its run stands for it
    # every trained candidate's validation loss and test RMSE are kept for the row (each lever's effect, reported)
    assert list(found.losses) == list(found.tests) == [c for c in space if c.weights.beta]
    assert found.tests[space[0]] == (20.1, 30.1) and found.losses[space[0]] == 0.1
    names = {c.label(): n for n in trained for c in space if n.endswith(c.label())}
    td = trained[names["a0.5_b0.5_g0_td1"]]
    assert isinstance(td.splits.train, TeacherDataWindows) and td.extra["teacher_data"] == 1.0
    assert "teacher_data" not in trained[names["a0.5_b0.5_g0"]].extra  # runs without the levers keep their settings
    mixed = trained[names["a0.5_b0.5_g0_mix0.5"]].objective.mixup
    assert mixed.alpha == 0.5 and mixed.rng.bit_generator.state == np.random.default_rng(
        [2021, MIXUP_STREAM]).bit_generator.state  # seeded by the run's seed
    assert found.data_cache is not None and found.data_cache.windows_run == len(found.data_cache.pred)

    # another seed: its own search, its own draws; teacher data with mixup chosen when validation says so
    other = _config(cohort, tiny_backbones, 2022, teacher_data="0,1", mixup_alpha="0,0.5")
    found2, trained2 = _search(other, splits, teacher, tmp_path, lambda n: 0.1 if n.endswith("_td1_mix0.5") else 0.5)
    assert (found2.candidate.teacher_data, found2.candidate.mixup_alpha) == (1.0, 0.5)
    assert {t.seed for t in trained2.values()} == {2022}
    td2 = trained2[next(n for n in trained2 if n.endswith("_td1"))]
    assert not np.array_equal(td.splits.train.drawn[0], td2.splits.train.drawn[0])


def test_defaults_leave_the_search_names_and_row_keys_as_they_were(cohort, tiny_backbones):
    cfg = _config(cohort, tiny_backbones, 2021)
    assert cfg.search_space == [Candidate(w) for w in cfg.candidates] and all(c.plain for c in cfg.search_space)
    configs = phase_configs(cfg, "1001", ["1001"])
    assert run_names(configs, cfg.search_space[0], False) == run_names(configs, cfg.candidates[0], False)
    assert config_key(cfg, configs) == config_key(replace(cfg, teacher_data="0", mixup_alpha="0.0"), configs)
    levers = replace(cfg, teacher_data="0,1")
    assert config_key(levers, phase_configs(levers, "1001", ["1001"])) != config_key(cfg, configs)


# --- teacher kinds and the standard report ------------------------------------------------------------------------


def test_a_ridge_based_teacher_is_its_own_kind_and_leaves_the_students_alone(cohort, tiny_backbones):
    cfg = _config(cohort, tiny_backbones, 2021, teacher_base="ridge")
    configs = phase_configs(cfg, "1001", ["1001"])
    assert configs["teacher"].model.base == "ridge" and configs["baseline"].model.base == "none"
    assert teacher_kind(configs) == "ridge"
    assert run_names(configs, cfg.candidates[0], False)["teacher"] == "teacher_GPT2-on-ridge"
    assert teacher_kind(phase_configs(replace(cfg, teacher_view="privileged"), "1001", ["1001"])) == \
        "privileged+ridge"


def test_the_plan_lists_the_teacher_kinds_the_reference_and_a_larger_estimate(capsys):
    assert distillation_comparison.main(["--standard", "--plan"]) == 0
    full = capsys.readouterr().out
    assert "3 teacher kinds x 4 students x 3 seeds" in full and "teacher kinds: standard, privileged, ridge" in full
    for run in ("/teacher_MiniLM\n", "/teacher_MiniLM-privileged", "/teacher_MiniLM-on-ridge", "/reference_Ridge",
                "/baseline_MLP", "_td1_mix0.2"):
        assert run in full, run
    assert distillation_comparison.main(["--standard", "--plan", "--teacher-data", "0", "--mixup-alpha", "0"]) == 0
    narrow = capsys.readouterr().out
    hours = [float(text.split("~")[1].split(" h")[0].replace(",", "")) for text in (full, narrow)]
    assert hours[0] > hours[1] and "_td1" not in narrow


def _pooled_rows() -> pd.DataFrame:
    """Per-patient rows of two teacher kinds x three students, 12 patients x 2 seeds: distillation from the privileged
    teacher makes the MLP better on every patient, nothing else moves; the 1-layer MiniLM has the lowest validation
    RMSE but takes 3 ms, the MLP distilled from the privileged teacher the lowest of those under 2 ms."""
    students = {("MiniLM", 1, "pretrained"): (3.0, 0.010), ("BERT-tiny", 2, "random"): (1.2, 0.050),
                ("MLP", 0, "none"): (0.3, 0.030)}
    rows = []
    for kind in ("standard", "privileged"):
        for (student, layers, weights), (ms, val) in students.items():
            for k in range(24):
                patient, seed = k // 2, 2021 + k % 2
                gain = -1.0 - 0.1 * patient if (kind, student) == ("privileged", "MLP") else 0.1 * NOISE[patient]
                base = 20.0 + patient
                rows.append({
                    "teacher": "MiniLM", "student": student, "teacher_layers": 6, "student_layers": layers,
                    "teacher_weights": "pretrained", "student_weights": weights, "teacher_kind": kind,
                    "patient": str(1001 + patient), "group": "all", "seed": seed, "alpha": 0.5, "beta": 0.5,
                    "gamma": 0.0, "teacher_data": 1.0 if kind == "privileged" else 0.0, "mixup_alpha": 0.0,
                    "teacher_rmse_30": 16.0 if kind == "privileged" else 19.0, "teacher_rmse_60": 27.0,
                    "baseline_rmse_30": base, "distilled_rmse_30": base + gain,
                    "baseline_rmse_60": base + 8, "distilled_rmse_60": base + 8 + gain,
                    "ridge_rmse_30": base - 2.0 + 0.3 * NOISE[patient],
                    "ridge_rmse_60": base + 7.0 + 0.3 * NOISE[patient],
                    "persistence_rmse_30": base + 4, "persistence_rmse_60": base + 12,
                    "int8_latency_b1_ms": ms, "int8_size_mb": 1.5 if student == "MLP" else 9.0,
                    "baseline_val_mse": (val + 0.01) ** 2,
                    "distilled_val_mse": (val - (0.01 if (kind, student) == ("privileged", "MLP") else 0)) ** 2})
    return pd.DataFrame(rows)


def test_the_summary_opens_with_the_two_answers(tmp_path):
    csv = tmp_path / "rows.csv"
    _pooled_rows().to_csv(csv, index=False)
    rows = pd.read_csv(csv, dtype={"patient": str})
    summary = summarise_standard(rows, compare.pair_label, compare.student_label)
    for col in ("teacher_kind", "student", "alone_rmse_30", "alone_rmse_60", "distilled_rmse_30", "distilled_rmse_60",
                "ridge_rmse_30", "ridge_rmse_60", "persistence_rmse_30", "persistence_rmse_60", "p_raw_30", "p_raw_60",
                "p_holm_30", "p_holm_60", "latency_b1_ms", "int8_mib"):
        assert col in summary, col
    assert len(summary) == 6 and set(summary["student"]) == {"MiniLM-L1", "BERT-tiny (random)", "MLP"}
    raw = [p for m in (30, 60) for p in summary[f"p_raw_{m}"]]  # one Holm family: every pair at both horizons
    assert [p for m in (30, 60) for p in summary[f"p_holm_{m}"]] == pytest.approx(holm(raw))
    text = standard_markdown(summary, rows, compare.pair_label)
    assert text.startswith("## Which teacher kind made which student better than the same student alone?")
    answer = text.split("\n## ")[0]
    assert ("for 1 of 6 (teacher kind, student) pair(s). Distillation beat it: privileged teacher: MiniLM→MLP"
            in answer)

    best = best_deployable(summary, rows, compare.pair_label)
    assert best.name == "MLP distilled from the privileged teacher" and best.candidates == 6  # MiniLM-L1 takes 3 ms
    assert best.tests[("ridge", 30)].mean_diff == pytest.approx(np.mean([2.0 - 0.3 * n - 1.0 - 0.1 * k for k, n in
                                                                         enumerate(NOISE)]))
    assert list(best.p_holm.values()) == pytest.approx(holm([t.p for t in best.tests.values()]))
    deploy = text.split("## The best deployable student (under 2 ms at batch 1) against Ridge (MS) and persistence")[1]
    assert "**MLP distilled from the privileged teacher**" in deploy
    assert "0.30 ms at batch 1 (INT8 ONNX Runtime)" in deploy
    assert "INT8 1.50 MiB" in deploy and "- At 30 min: test RMSE" in deploy and "- At 60 min: test RMSE" in deploy
    assert "it beat persistence" in deploy
    assert "## Each teacher kind's own accuracy" in text and "the ceiling a student chases" in text

    # the 2 ms bound: with every student slower, none is deployable, and the summary says which was fastest
    slow = summarise_standard(rows.assign(int8_latency_b1_ms=rows["int8_latency_b1_ms"] + 2.5), compare.pair_label,
                              compare.student_label)
    assert best_deployable(slow, rows, compare.pair_label) is None
    assert "No student forecast in under 2 ms at batch 1; the fastest, MLP, took 2.80 ms" in standard_markdown(
        slow, rows, compare.pair_label)



@pytest.mark.slow
def test_a_pipeline_with_teacher_data_and_mixup_trains_and_records_its_choice(cohort, tiny_backbones, tmp_path):
    """End to end on the tiny GPT-2 teacher and an MLP student: four candidates ((0.5, 0.5, 0) x teacher data 0, 1 x
    mixup 0, 0.5), each epoch of a teacher-data candidate twice the labelled windows; the row, the run's
    distillation.json and its config.json say what was chosen."""
    args = ["--teacher", "gpt2", "--teacher-path", str(tiny_backbones["gpt2"]), "--student", "mlp",
            "--root-path", str(cohort), "--patients", "1001", "--max-train-windows", str(LABELLED),
            "--max-val-windows", "24", "--teacher-epochs", "1", "--student-epochs", "2", "--distill-epochs", "2",
            "--latency-repeats", "2", "--int8", "0", "--grid", "0.5,0.5,0", "--teacher-data", "0,1",
            "--mixup-alpha", "0,0.5", "--out", str(tmp_path), *TINY_FLAGS]
    assert pipeline.main(args) == 0
    row = pd.read_csv(tmp_path / "distillation.csv", dtype={"patient": str}).iloc[0]
    assert row["weights_chosen_by"] == "validation (4 candidates)"
    runs = Path(row["distilled_run"]).parent
    seen, val = {}, {}
    for suffix in ("", "_td1", "_mix0.5", "_td1_mix0.5"):
        run = runs / f"distilled_MLP_from_GPT2_a0.5_b0.5_g0{suffix}"
        fit = json.loads((run / "metrics.json").read_text())["fit"]
        seen[suffix], val[suffix] = fit["windows_seen"], fit["best_val_loss"]
        settings = json.loads((run / "distillation.json").read_text())
        assert json.loads((run / "config.json").read_text())["distillation"] == settings
        assert settings.get("teacher_data", 0.0) == (1.0 if "td1" in suffix else 0.0)
        assert settings.get("mixup_alpha", 0.0) == (0.5 if "mix" in suffix else 0.0)
    assert seen == {"": 2 * LABELLED, "_td1": 4 * LABELLED, "_mix0.5": 2 * LABELLED, "_td1_mix0.5": 4 * LABELLED}
    phases = pd.read_csv(tmp_path / "runs" / PHASE_CSV_NAME).set_index("run_id")
    per_epoch = {suffix: phases.loc[f"distilled_MLP_from_GPT2_a0.5_b0.5_g0{suffix}", "train_windows_per_epoch"]
                 for suffix in seen}
    assert per_epoch == {"": LABELLED, "_td1": 2 * LABELLED, "_mix0.5": LABELLED, "_td1_mix0.5": 2 * LABELLED}
    chosen = min(val, key=val.get)
    assert Path(row["distilled_run"]).name.endswith(f"g0{chosen}")
    assert (row["teacher_data"], row["mixup_alpha"]) == (1.0 if "td1" in chosen else 0.0,
                                                         0.5 if "mix" in chosen else 0.0)
    assert row["teacher_cache_mb"] > 0 and row["distilled_rmse_30"] > 0
    # both forecast caches (the labelled windows', the teacher-data cover's) are kept for the teacher's next student
    assert len(list((Path(row["teacher_run"]) / STORE_DIR).glob("*.pt"))) == 2
