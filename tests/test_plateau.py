"""The plateau schedule: a constant rate after warm-up, halved only after an epoch whose validation loss is no new
best, so validation, never the epoch cap, lowers the rate and early stopping ends the run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from builders import Linear, sine_windows
from configs import TrainConfig
from data_provider.data_factory import make_loader
from exp.schedules import PlateauSchedule, after_validation, make_schedule
from exp.trainer import Trainer
from utils.seed import seed_everything


def _stepped(sched: PlateauSchedule, opt: torch.optim.Optimizer, n: int) -> list[float]:
    rates = []
    for _ in range(n):
        opt.step()
        sched.step()
        rates.append(sched.get_last_lr()[0])
    return rates


def test_the_rate_warms_up_holds_and_halves_only_after_an_epoch_without_a_new_best():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_schedule(TrainConfig(learning_rate=0.1, lradj="plateau", warmup_steps=3, train_epochs=3), opt, 10)
    assert isinstance(sched, PlateauSchedule)
    assert _stepped(sched, opt, 4) == pytest.approx([0.05, 0.075, 0.1, 0.1])
    after_validation(sched, 0.5)  # a new best: the rate holds
    assert _stepped(sched, opt, 2) == pytest.approx([0.1, 0.1])
    after_validation(sched, 0.6)  # no new best: halved
    assert _stepped(sched, opt, 2) == pytest.approx([0.05, 0.05])
    after_validation(sched, 0.4)
    after_validation(sched, 0.45)
    assert _stepped(sched, opt, 1) == pytest.approx([0.025])


def test_other_schedules_ignore_the_validation_loss():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_schedule(TrainConfig(learning_rate=0.1, lradj="constant"), opt, 10)
    after_validation(sched, 1.0)
    after_validation(sched, 2.0)
    assert _stepped(sched, opt, 3) == pytest.approx([0.1] * 3)


def test_a_restored_schedule_continues_at_the_interrupted_runs_rate():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = PlateauSchedule(opt, warmup_steps=0)
    after_validation(sched, 1.0)
    after_validation(sched, 1.5)
    state = sched.state_dict()
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    resumed = PlateauSchedule(opt2, warmup_steps=0)
    resumed.load_state_dict(state)
    assert _stepped(resumed, opt2, 2) == pytest.approx([0.05, 0.05])
    assert _stepped(sched, opt, 2) == pytest.approx([0.05, 0.05])


def test_the_trainer_hands_the_schedule_every_epochs_validation_loss(monkeypatch):
    """The engine tells the schedule each epoch's validation loss, after validating and before the next epoch's
    first step, and the plateau schedule it builds reads them."""
    import exp.trainer

    seen = []
    monkeypatch.setattr(exp.trainer, "after_validation",
                        lambda sched, loss: (seen.append((type(sched), loss)), after_validation(sched, loss)))
    seed_everything(0)
    cfg = TrainConfig(batch_size=32, learning_rate=0.05, train_epochs=3, patience=3, lradj="plateau")
    result = Trainer(cfg, Linear()).fit(make_loader(sine_windows(), 32, True, 0),
                                        make_loader(sine_windows(seed=1), 128, False, 0))
    assert [loss for _, loss in seen] == pytest.approx([r["val_loss"] for r in result.history])
    assert {kind for kind, _ in seen} == {PlateauSchedule}
