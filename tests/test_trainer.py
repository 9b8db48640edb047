"""The training engine on a small model: loss falls, best epoch chosen on validation, schedules, DeepSpeed ZeRO-2,
resume (plain and DeepSpeed), precision from the launcher, TensorBoard logging."""

import os

import numpy as np
import pytest
import torch
from torch import nn

from builders import H, L, Linear, sine_windows
from data_provider.data_factory import make_loader
from configs import TrainConfig
from exp.schedules import make_schedule
from exp.objective import Objective
from exp.trainer import Trainer, deepspeed_state_dir
from utils.errors import LLMTimeError
from utils.seed import seed_everything


def _fit(cfg, seed=0):
    seed_everything(seed)
    ds = sine_windows()
    model = Linear()
    trainer = Trainer(cfg, model)
    before = trainer.evaluate_loss(make_loader(ds, 128, False, 0))
    result = trainer.fit(make_loader(ds, cfg.batch_size, True, seed), make_loader(sine_windows(seed=1), 128, False, 0))
    pred, idx = trainer.predict(make_loader(ds, 100, False, 0))
    return before, result, pred, idx


def test_validation_loss_falls_and_best_epoch_restored():
    cfg = TrainConfig(batch_size=32, learning_rate=1e-2, train_epochs=4, patience=2, lradj="COS")
    before, result, pred, idx = _fit(cfg)
    assert result.best_val_loss < before / 5
    assert result.best_epoch == min(result.history, key=lambda r: r["val_loss"])["epoch"]
    assert pred.shape == (len(idx), H) and sorted(idx) == list(range(len(idx)))
    assert result.train_windows_per_s > 0


def test_the_default_objective_is_the_forecast_loss_with_no_terms_of_its_own():
    model, x = Linear(), torch.randn(4, L, 1)
    batch = {"x": x, "y": torch.randn(4, H), "mask": torch.ones(4, H, dtype=torch.bool)}
    assert Objective()(model, batch).item() == pytest.approx(((model(x) - batch["y"]) ** 2).mean().item())
    assert Objective().epoch_terms() == {}


def test_an_objectives_epoch_terms_join_each_epochs_record():
    class Counted(Objective):
        steps = 0

        def __call__(self, model, batch):
            self.steps += 1
            return super().__call__(model, batch)

        def epoch_terms(self):
            terms, self.steps = {"train_steps": float(self.steps)}, 0
            return terms

    train = make_loader(sine_windows(), 32, True, 0)
    trainer = Trainer(TrainConfig(batch_size=32, train_epochs=2, patience=5), Linear(), Counted())
    fit = trainer.fit(train, make_loader(sine_windows(seed=1), 128, False, 0))
    assert [r["train_steps"] for r in fit.history] == [len(train), len(train)]


def test_same_seed_same_result():
    cfg = TrainConfig(batch_size=32, learning_rate=1e-2, train_epochs=2, lradj="constant")
    a = _fit(cfg, seed=3)[2]
    b = _fit(cfg, seed=3)[2]
    np.testing.assert_array_equal(a, b)


def _epoch_rates(lradj, epochs, lr=0.1, steps=4):
    """The learning rate each epoch's steps run at (constant within an epoch for the per-epoch schedules)."""
    cfg = TrainConfig(learning_rate=lr, train_epochs=epochs, lradj=lradj)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make_schedule(cfg, opt, steps_per_epoch=steps)
    rates = []
    for _ in range(epochs):
        within = []
        for _ in range(steps):
            within.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert len(set(within)) == 1
        rates.append(within[0])
    return rates


def test_time_llm_type2_and_type3_schedules():
    """Time-LLM's adjust_learning_rate: type2, its table of absolute rates; type3, 3 epochs at the rate, then x0.9."""
    assert _epoch_rates("type2", 21) == pytest.approx(
        [0.1, 5e-5, 5e-5, 1e-5, 1e-5, 5e-6, 5e-6, 1e-6, 1e-6, 5e-7, 5e-7, 5e-7, 5e-7, 5e-7, 1e-7, 1e-7, 1e-7, 1e-7,
         1e-7, 5e-8, 5e-8])
    assert _epoch_rates("type3", 6) == pytest.approx([0.1, 0.1, 0.1, 0.09, 0.081, 0.0729])


@pytest.mark.parametrize("lradj", ["type1", "type2", "type3", "COS", "TST", "constant"])
def test_schedules_cover_the_run(lradj):
    cfg = TrainConfig(learning_rate=0.1, train_epochs=3, lradj=lradj)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_schedule(cfg, opt, steps_per_epoch=10)
    lrs = []
    for _ in range(30):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    if lradj == "type1":
        assert lrs[8] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.05) and lrs[20] == pytest.approx(0.025)
    elif lradj == "constant":
        assert set(lrs) == {0.1}
    elif lradj == "type3":
        assert set(lrs[:-1]) == {0.1}  # the last entry is the rate a 4th epoch would start at
    elif lradj == "type2":
        assert lrs[8] == pytest.approx(0.1) and lrs[10] == pytest.approx(5e-5)
    else:
        assert lrs[-1] < 0.01 and max(lrs) <= 0.1 + 1e-9


def test_bad_precision_and_schedule_are_user_errors():
    with pytest.raises(LLMTimeError, match="mixed_precision"):
        Trainer(TrainConfig(mixed_precision="fp8"), Linear())
    with pytest.raises(LLMTimeError, match="lradj"):
        make_schedule(TrainConfig(lradj="warp"), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), 1)


def test_bf16_autocast_trains_on_cpu():
    cfg = TrainConfig(batch_size=64, learning_rate=1e-2, train_epochs=2, mixed_precision="bf16")
    before, result, _, _ = _fit(cfg)
    assert result.best_val_loss < before


def test_released_model_runs_in_its_own_precision():
    """accelerate wraps forward in bf16 autocast; the model the engine hands on must not carry it (an ONNX export of
    a baseline trained in the same process traced bf16 casts that ONNX Runtime rejects)."""
    seed_everything(0)
    ds = sine_windows()
    trainer = Trainer(TrainConfig(batch_size=64, train_epochs=1, mixed_precision="bf16"), Linear())
    trainer.fit(make_loader(ds, 64, True, 0), make_loader(sine_windows(seed=1), 128, False, 0))
    seen = []
    hook = next(trainer.model.children()).register_forward_hook(
        lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    trainer.predict(make_loader(ds, 8, False, 0))
    assert seen and all(seen)  # the engine itself predicts under autocast
    seen.clear()
    model = trainer.release()
    with torch.no_grad():
        model(torch.randn(4, L, 1))
    hook.remove()
    assert seen == [False] and "forward" not in model.__dict__


@pytest.mark.slow
def test_deepspeed_zero2_one_process_on_cpu():
    pytest.importorskip("deepspeed")
    cfg = TrainConfig(batch_size=32, learning_rate=1e-2, train_epochs=2, use_deepspeed=True)
    before, result, pred, idx = _fit(cfg)
    assert result.best_val_loss < before
    assert np.isfinite(pred).all()


@pytest.mark.slow
def test_a_deepspeed_run_leaves_no_deepspeed_flag_to_the_next_run(monkeypatch):
    """accelerate flags DeepSpeed in os.environ while it builds a DeepSpeed accelerator; the next run of the same
    process (a comparison's next cell, a student after its teacher) must not read that flag as a launcher's."""
    pytest.importorskip("deepspeed")
    from accelerate.utils import DistributedType

    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert Trainer(TrainConfig(use_deepspeed=True), Linear()).accelerator.distributed_type == DistributedType.DEEPSPEED
    assert "ACCELERATE_USE_DEEPSPEED" not in os.environ
    assert Trainer(TrainConfig(), Linear()).accelerator.distributed_type != DistributedType.DEEPSPEED


class _Crash(Exception):
    pass


def _crash_then_resume(cfg, path):
    """Crash mid-way through epoch 2, resume from ``path``: the result must equal an uninterrupted run's."""
    _, full, full_pred, _ = _fit(cfg, seed=5)

    seed_everything(5)
    calls = {"n": 0}

    class Crashing(Objective):
        def __call__(self, model, batch):
            calls["n"] += 1
            if calls["n"] == 25:  # mid-way through the second epoch (16 batches per epoch)
                raise _Crash()
            return super().__call__(model, batch)

    ds, val = sine_windows(), sine_windows(seed=1)
    with pytest.raises(_Crash):
        Trainer(cfg, Linear(), Crashing()).fit(make_loader(ds, 32, True, 5), make_loader(val, 128, False, 0),
                                               resume_path=path)
    assert path.is_file()
    seed_everything(123)  # the resumed process starts with other RNG states; the saved ones must win
    trainer = Trainer(cfg, Linear())
    resumed = trainer.fit(make_loader(ds, 32, True, 5), make_loader(val, 128, False, 0), resume_path=path)
    pred, _ = trainer.predict(make_loader(ds, 100, False, 0))
    assert resumed.best_val_loss == pytest.approx(full.best_val_loss, rel=1e-6)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.earlier_wall_seconds >= resumed.history[0]["seconds"] > 0  # the crashed part's time counts
    np.testing.assert_allclose(pred, full_pred, rtol=1e-6, atol=1e-7)


def test_interrupted_fit_resumes_to_the_same_result(tmp_path):
    cfg = TrainConfig(batch_size=32, learning_rate=1e-2, train_epochs=3, patience=3, lradj="COS")
    _crash_then_resume(cfg, tmp_path / "last.pt")


@pytest.mark.slow
def test_interrupted_deepspeed_fit_resumes_to_the_same_result(tmp_path):
    """ZeRO's optimiser state goes through accelerate's save_state/load_state (it used to fail with KeyError: 0)."""
    pytest.importorskip("deepspeed")
    cfg = TrainConfig(batch_size=32, learning_rate=1e-2, train_epochs=3, patience=3, lradj="COS", use_deepspeed=True)
    _crash_then_resume(cfg, tmp_path / "last.pt")
    assert [p.name for p in deepspeed_state_dir(tmp_path / "last.pt").iterdir()] == ["epoch3"]  # older epochs go


def test_launcher_precision_overridden_by_the_run_is_said(monkeypatch):
    """accelerate launch --mixed_precision bf16 sets ACCELERATE_MIXED_PRECISION; a run using another one says so."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    with pytest.warns(UserWarning, match="launcher's mixed precision bf16 is overridden .* --mixed_precision no"):
        trainer = Trainer(TrainConfig(mixed_precision="no"), Linear())
    assert trainer.accelerator.mixed_precision == "no"


def test_tensorboard_logs_losses_and_learning_rate(tmp_path):
    cfg = TrainConfig(batch_size=64, learning_rate=1e-2, train_epochs=2, report_to="tensorboard")
    trainer = Trainer(cfg, Linear(), log_dir=tmp_path)
    trainer.fit(make_loader(sine_windows(), 64, True, 0), make_loader(sine_windows(seed=1), 128, False, 0))
    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    data = events.read_bytes()
    assert all(tag in data for tag in (b"train/loss", b"train/lr", b"val/loss"))
    assert not Trainer(cfg, Linear()).accelerator.log_with  # re-testing and forecasting have no run to watch
