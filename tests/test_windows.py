"""Window cutting: gaps, splits, BGLP test indexing, patients, scaler fit and scenarios."""

import numpy as np
import pandas as pd
import pytest

from builders import cgm_times, sine_glucose, write_patient_xml
from data_provider.data_factory import build_splits, make_loader, target_times
from data_provider.ohio import load_cohort
from data_provider.scenarios import apply_scenario
from data_provider.windows import (
    PatientSeries,
    fill_short_gaps,
    join_for_test,
    bglp_origins,
    train_val_origins,
)
from configs import DataConfig
from utils.errors import LLMTimeError

L, H = 6, 3


def _series(values, start="2021-01-01 00:00"):
    values = np.asarray(values, dtype=float)
    index = pd.date_range(start, periods=len(values), freq="5min")
    return PatientSeries("p", index, values[:, None], values.copy())


def test_fill_short_gaps_only_interior_and_short():
    v = np.array([1, np.nan, 3, np.nan, np.nan, np.nan, 7, np.nan])
    np.testing.assert_allclose(fill_short_gaps(v, 2), [1, 2, 3, np.nan, np.nan, np.nan, 7, np.nan])
    np.testing.assert_allclose(fill_short_gaps(v, 3), [1, 2, 3, 4, 5, 6, 7, np.nan])


def test_train_windows_never_cross_long_gaps_or_missing_targets():
    v = np.arange(40, dtype=float) + 100
    v[10] = np.nan  # short gap: filled for inputs, but breaks windows that score it as a target
    v[20:30] = np.nan  # long gap (50 min > 30): breaks windows
    s = _series(v)
    tr, va, filled, split = train_val_origins(s, L, H, max_gap_fill_min=30, val_fraction=0.2, fill="linear")
    assert filled[10, 0] == pytest.approx(110)  # linear fill of the short gap
    for o in np.concatenate([tr, va]):
        window_in = np.arange(o - L + 1, o + 1)
        window_out = np.arange(o + 1, o + H + 1)
        assert not np.isin(window_in, np.arange(20, 30)).any()
        assert np.isfinite(s.targets[window_out]).all()
        assert np.isfinite(s.targets[o])  # origin is a real reading: fills never borrow from targets
    assert 5 in tr and 6 in tr and 7 not in tr  # 7..9 would score index 10 as a target
    assert 11 in tr  # inputs span the filled short gap
    assert split == 32
    assert all(o + H < split for o in tr) and all(o + 1 >= split for o in va)
    assert list(va) == [35, 36]  # earlier origins would reach into the long gap


def test_carry_fill_trains_on_gaps_as_test_inputs_see_them():
    v = np.arange(40, dtype=float) + 100
    v[10] = np.nan
    v[20:30] = np.nan  # a long gap: carried forward like a test input, never a target
    s = _series(v)
    tr, va, filled, split = train_val_origins(s, L, H, max_gap_fill_min=30, val_fraction=0.2, fill="carry")
    assert filled[10, 0] == 109 and (filled[20:30, 0] == 119).all()  # the last reading, carried
    assert any(np.isin(np.arange(o - L + 1, o + 1), np.arange(20, 30)).any() for o in va)  # inputs in the gap
    for o in np.concatenate([tr, va]):
        assert np.isfinite(s.targets[o + 1 : o + H + 1]).all()  # targets are still never filled
    assert all(o + H < split for o in tr) and all(o + 1 >= split for o in va)


def test_bglp_test_windows_score_every_real_reading_once_per_horizon():
    train = _series(np.arange(30, dtype=float) + 100)
    test_vals = np.arange(40, dtype=float) + 200
    test_vals[[15, 16, 30]] = np.nan  # missing test readings: never scored, inputs carried forward
    test = _series(test_vals, start=str(train.index[-1] + pd.Timedelta(minutes=15)))  # 2 missing slots between
    grids = [pd.DataFrame({"glucose": s.targets}, index=s.index) for s in (train, test)]
    frame, start = join_for_test(*grids)
    joined = PatientSeries("p", frame.index, frame[["glucose"]].to_numpy(), frame["glucose"].to_numpy())
    assert start == 32 and np.isnan(joined.targets[30:32]).all()
    origins, mask, filled = bglp_origins(joined, start, L, H)
    first_scored = start + 12
    real = [t for t in range(len(joined.targets)) if t >= first_scored and np.isfinite(joined.targets[t])]
    for k in range(H):
        scored = sorted(origins[mask[:, k]] + k + 1)
        assert scored == real  # each real reading from 60 min in, at every horizon, exactly once
    # carried forward, never interpolated: the slot after a missing reading repeats the last one
    assert filled[start + 15, 0] == test_vals[14] and filled[start + 16, 0] == test_vals[14]
    assert filled[30, 0] == 129  # training tail carried across the file boundary
    assert np.isfinite(filled[origins.min() - L + 1 :]).all()


def test_scenarios_are_seeded_and_leave_truth_alone():
    g = np.linspace(80, 200, 1000)
    a = apply_scenario(g, "random", 0.3, 5.0, seed=1)
    b = apply_scenario(g, "random", 0.3, 5.0, seed=1)
    c = apply_scenario(g, "random", 0.3, 5.0, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.isnan(a), np.isnan(c))
    assert 0.25 < np.isnan(a).mean() < 0.35
    resid = (a - g)[np.isfinite(a)]
    assert 4 < resid.std() < 6
    p = apply_scenario(g, "periodic", 0.25, 0.0, seed=3)
    assert np.isnan(p).mean() == pytest.approx(0.25, abs=0.02)
    starts = np.flatnonzero(np.diff(np.isnan(p).astype(int)) == 1)
    assert len(set(np.diff(starts))) == 1  # regular period
    assert np.isfinite(g).all()  # input untouched
    with pytest.raises(LLMTimeError):
        apply_scenario(g, "bursty", 0.1, 0, 0)


@pytest.fixture()
def cohort(tmp_path):
    """Patients 1001 and 1002 (levels ~100 and ~200 mg/dL), each a training file and a testing file continuing it."""
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2022-01-01 00:01:37")
    for pid, level in (("1001", 100.0), ("1002", 200.0)):
        tr = sine_glucose(600, level, 20, 20, 1, rng)
        te = sine_glucose(150, level, 20, 20)
        tr[300:340] = np.nan  # a long sensor dropout
        for part, values, offset in (("training", tr, 0), ("testing", te, len(tr))):
            write_patient_xml(tmp_path, pid, part, cgm_times(start, len(values), offset), np.trunc(values),
                              attrs=dict(weight="90", insulin_type="Humalog"), gz=True)
    return tmp_path


def test_splits_pool_patients_without_crossing_and_scaler_from_train_only(cohort):
    cfg = DataConfig(data="simulated", root_path=str(cohort), seq_len=12, pred_len=6)
    sp = build_splits(cfg)
    assert sp.train_patients == ["1001", "1002"]
    for ds in (sp.train, sp.val, sp.test):
        # a window's inputs and targets all belong to its own patient: level ~100 vs ~200 never mixes
        batch = ds.__getitems__(list(range(len(ds))))
        mgdl = sp.scaler.glucose_to_mgdl(np.concatenate([batch["x"][..., 0].numpy(), batch["y"].numpy()], 1))
        is_hi = np.array(ds.patient) == "1002"
        m = np.concatenate([np.ones_like(batch["x"][..., 0].numpy(), bool), batch["mask"].numpy()], 1)
        assert (mgdl[is_hi][m[is_hi]] > 150).all() and (mgdl[~is_hi][m[~is_hi]] < 150).all()
    # scaler: training region only (first 80% of each training file), never validation or test
    recs = load_cohort(cohort)
    region = np.concatenate(
        [r.train.grid["glucose"].to_numpy()[: int(round(len(r.train.grid) * 0.8))] for r in recs.values()]
    )
    assert sp.scaler.mean[0] == pytest.approx(np.nanmean(region))
    assert sp.scaler.std[0] == pytest.approx(np.nanstd(region))
    # test windows: all real readings from 60 min into each test file, at every horizon
    n_scored = sum(r.test.grid["glucose"].iloc[12:].notna().sum() for r in recs.values())
    assert (sp.test.mask.sum(0) == n_scored).all()
    tt = target_times(sp.test)
    assert tt.shape == (len(sp.test), 6)


def test_train_on_some_patients_test_on_others_and_caps(cohort):
    cfg = DataConfig(
        root_path=str(cohort), seq_len=12, pred_len=6, patients=["1001"], test_patients=["1002"],
        max_train_windows=50, max_val_windows=20,
    )
    sp = build_splits(cfg)
    assert set(sp.train.patient) == {"1001"} and set(sp.val.patient) == {"1001"}
    assert set(sp.test.patient) == {"1002"}
    assert sp.train_per_epoch == 50 and len(sp.train) > 50 and len(sp.val) == 20  # 50 drawn afresh each epoch
    loader = make_loader(sp.train, batch_size=16, shuffle=True, seed=0, per_epoch=sp.train_per_epoch)
    assert sum(len(b["y"]) for b in loader) == 50
    batch = next(iter(loader))
    assert batch["x"].shape == (16, 12, 2) and batch["y"].shape == (16, 6) and batch["mask"].all()
    assert set(batch["x"][..., 1].unique().tolist()) <= {0.0, 1.0}  # the filled marker stays 0/1, unscaled
    with pytest.raises(LLMTimeError, match="unknown patient"):
        build_splits(DataConfig(root_path=str(cohort), patients=["9999"]))
    with pytest.raises(LLMTimeError, match="no complete training window"):
        build_splits(DataConfig(root_path=str(cohort), seq_len=2000))


def test_scenario_degrades_inputs_but_not_targets(cohort):
    clean = build_splits(DataConfig(root_path=str(cohort), seq_len=12, pred_len=6))
    noisy = build_splits(DataConfig(root_path=str(cohort), seq_len=12, pred_len=6, noise_std=10.0, scenario_seed=1))
    assert len(noisy.test) == len(clean.test)
    np.testing.assert_array_equal(noisy.test.targets.numpy(), clean.test.targets.numpy())
    assert not np.allclose(noisy.test.inputs.numpy(), clean.test.inputs.numpy())


def test_every_channel_is_scaled_with_training_region_statistics_only():
    """Basal, bolus and carbs (--features MS) are standardised with the first 80% of the training file alone, and
    the 0/1 markers (basal logged, input filled) are left as they are."""
    from data_provider.data_factory import BUNDLED, COVARIATES, channel_names

    cfg = DataConfig(patients=["1001"], covariates=True)
    sp = build_splits(cfg)
    assert channel_names(cfg) == ("glucose", *COVARIATES, "basal_logged", "filled")
    grid = load_cohort(BUNDLED["simulated"], ["1001"])["1001"].train.grid
    region = grid.iloc[: int(round(len(grid) * 0.8))]
    for c, name in enumerate(COVARIATES, start=1):
        values = region[name].fillna(0.0).to_numpy()
        assert sp.scaler.mean[c] == pytest.approx(values.mean())
        assert sp.scaler.std[c] == pytest.approx(values.std())
        assert sp.scaler.mean[c] != pytest.approx(grid[name].fillna(0.0).mean(), rel=1e-9)  # not the whole file
    assert (sp.scaler.mean[-2:] == 0).all() and (sp.scaler.std[-2:] == 1).all()  # the two 0/1 markers
