"""A cap on training windows is a per-epoch draw: fresh windows every epoch, stratified by patient, the same
sequence for the same seed, continued exactly by a resumed run; the old fixed subset stays available."""

import numpy as np
import pytest

from builders import Linear, sine_windows
from configs import DataConfig, TrainConfig
from data_provider.data_factory import build_splits, fit_windows, make_loader
from data_provider.draws import patient_quota, stratified_draw
from exp.objective import Objective
from exp.trainer import Trainer
from utils.errors import LLMTimeError
from utils.seed import seed_everything

PATIENTS = np.array(["a"] * 300 + ["b"] * 100 + ["c"] * 600, dtype=object)


def test_each_epoch_draws_other_windows_and_the_same_seed_the_same_ones():
    first, second = stratified_draw(PATIENTS, 100, seed=7, epoch=1), stratified_draw(PATIENTS, 100, seed=7, epoch=2)
    assert len(first) == len(second) == 100 and len(set(first)) == 100
    assert set(first) != set(second) and len(set(first) & set(second)) < 50
    np.testing.assert_array_equal(first, stratified_draw(PATIENTS, 100, seed=7, epoch=1))
    assert set(first) != set(stratified_draw(PATIENTS, 100, seed=8, epoch=1))


def test_the_draw_keeps_each_patients_share():
    drawn = stratified_draw(PATIENTS, 100, seed=0, epoch=3)
    assert {p: int((PATIENTS[drawn] == p).sum()) for p in "abc"} == {"a": 30, "b": 10, "c": 60}
    assert list(patient_quota(np.array([1, 1, 1]), 2)) in ([1, 1, 0], [1, 0, 1], [0, 1, 1])
    assert patient_quota(np.array([5, 3]), 100).tolist() == [5, 3]  # a cap above the total takes everything


def _dataset():
    """A noiseless sine cut into 401 windows, the first half of the time patient p1's, the rest p2's."""
    return sine_windows(400, noise=0.0, patients=("p1", "p2"))


def _fit(epochs: int, resume_path=None) -> list[list[int]]:
    """Train with 64 windows per epoch; return the window indices each epoch trained on."""
    seen: list[list[int]] = []

    class Recording(Objective):
        def __call__(self, model, batch):
            seen.append(batch["index"].tolist())
            return super().__call__(model, batch)

    seed_everything(0)
    ds = _dataset()
    cfg = TrainConfig(batch_size=16, learning_rate=1e-2, train_epochs=epochs, lradj="constant", patience=10)
    Trainer(cfg, Linear(), Recording()).fit(make_loader(ds, 16, True, seed=5, per_epoch=64),
                                            make_loader(ds, 128, False, 0), resume_path=resume_path)
    return [sum(seen[e * 4:(e + 1) * 4], []) for e in range(len(seen) // 4)]


def test_training_sees_the_draw_and_a_resumed_run_continues_it(tmp_path):
    whole = _fit(3)
    assert len(whole) == 3 and all(len(e) == 64 == len(set(e)) for e in whole)
    assert set(whole[0]) != set(whole[1]) != set(whole[2])
    assert sorted(whole[1]) == sorted(stratified_draw(_dataset().patient, 64, seed=5, epoch=2).tolist())
    resume = tmp_path / "last.pt"
    assert _fit(1, resume) == whole[:1]  # "killed" after epoch 1, its resume state saved
    assert _fit(3, resume) == whole[1:]  # resumed: epochs 2 and 3 draw what the uninterrupted run drew


def test_splits_cap_windows_per_epoch_unless_the_fixed_subset_is_asked_for():
    data = DataConfig(patients=["1001", "1002"], seq_len=24, pred_len=6, max_train_windows=50, max_val_windows=8)
    fresh = build_splits(data)
    assert fresh.train_per_epoch == 50 and len(fresh.train) > 50  # every window stays drawable
    ridge = fit_windows(fresh, seed=1)
    assert len(ridge) == 50 and len(fit_windows(fresh, seed=1)) == 50
    fixed = build_splits(DataConfig(**{**data.__dict__, "train_draw": "fixed"}))
    assert fixed.train_per_epoch is None and len(fixed.train) == 50
    every = build_splits(DataConfig(**{**data.__dict__, "max_train_windows": None}))
    assert every.train_per_epoch is None and len(every.train) == len(fresh.train)
    assert fit_windows(every, seed=1) is every.train
    with pytest.raises(LLMTimeError, match="--train_draw"):
        build_splits(DataConfig(**{**data.__dict__, "train_draw": "sometimes"}))
