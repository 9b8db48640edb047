"""Datasets and loaders for a run: patients -> series -> windows -> scaled batches.

The scaler is fit on the training region (the training file minus its validation tail) of the training patients
only, then applied to every split, channel by channel.

Patients come from the run's dataset (``data_provider/datasets.py``: XML, CSV, ...) and become input channels in one
place (``data_provider/channels.py``: ``channel_names``, ``model_inputs``), for every split and the forecast command.

Batches are gathered with one NumPy fancy-index per batch (``__getitems__``), so a loader does no per-window Python
work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from data_provider.draws import DRAWS, EpochDraw, stratified_draw
# channel_names, COVARIATES, data_root, dataset_name and description are imported from here by their callers
from data_provider.channels import COVARIATES, channel_names, marker_index, model_inputs  # noqa: F401
from data_provider.datasets import DATASETS, check, data_root, dataset, dataset_name, description  # noqa: F401
from data_provider.datasets import load_records
from data_provider.ohio import PatientRecord
from data_provider.scenarios import apply_scenario
from data_provider.windows import (
    FILLS,
    STEP_MINUTES,
    TEST_WARMUP_MIN,
    PatientSeries,
    join_for_test,
    bglp_origins,
    train_val_origins,
)
from configs import DataConfig
from utils.errors import LLMTimeError
from utils.seed import worker_init

BUNDLED = {d.name: d.bundled for d in DATASETS.values() if d.bundled is not None}


@dataclass
class Scaler:
    """Per-channel standardisation fit on training data; channel 0 is glucose (mg/dL)."""

    mean: np.ndarray
    std: np.ndarray

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def glucose_to_mgdl(self, scaled: np.ndarray) -> np.ndarray:
        return scaled * self.std[0] + self.mean[0]

    @property
    def glucose(self) -> tuple[float, float]:
        return float(self.mean[0]), float(self.std[0])

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> "Scaler":
        return cls(np.asarray(d["mean"], dtype=float), np.asarray(d["std"], dtype=float))


class WindowDataset(Dataset):
    """Windows over several patients' series, stored once and gathered by index.

    ``inputs``/``targets`` are the patients' series concatenated; ``origins`` are global indices into them, and each
    window's span lies inside its own patient's segment.
    """

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        origins: np.ndarray,
        mask: np.ndarray,
        patient: np.ndarray,
        origin_time: np.ndarray,
        seq_len: int,
        pred_len: int,
        targets_mgdl: np.ndarray | None = None,
    ):
        self.inputs = torch.from_numpy(inputs.astype(np.float32))
        self.targets = torch.from_numpy(np.nan_to_num(targets, nan=0.0).astype(np.float32))
        # The readings as read (mg/dL, NaN where none), aligned with ``targets``: scores and predictions.csv use these,
        # since unscaling the float32 ``targets`` gives 143.00000003703119 for a reading of 143.
        self.targets_mgdl = targets_mgdl
        self.origins = torch.from_numpy(origins.astype(np.int64))
        self.mask = torch.from_numpy(mask)
        self.patient = patient
        self.origin_time = origin_time
        self.seq_len, self.pred_len = seq_len, pred_len
        self._in_offsets = torch.arange(-seq_len + 1, 1)
        self._out_offsets = torch.arange(1, pred_len + 1)

    def __len__(self) -> int:
        return len(self.origins)

    def __getitems__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(idx, dtype=torch.int64)
        o = self.origins[index]
        return {
            "x": self.inputs[o[:, None] + self._in_offsets],
            "y": self.targets[o[:, None] + self._out_offsets],
            "mask": self.mask[index],
            "index": index,
        }

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


def batch_collate(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Batches arrive already stacked from ``__getitems__``."""
    return batch


@dataclass
class Splits:
    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    scaler: Scaler
    description: str
    train_patients: list[str]
    test_patients: list[str]
    # Windows each training epoch draws afresh from ``train`` (data_provider.draws); None: all of them every epoch
    train_per_epoch: int | None = None


def _series(record: PatientRecord, cfg: DataConfig, seed_offset: int, test: bool = False) -> tuple[PatientSeries, int]:
    """The training file's series, or with ``test`` the training and testing files joined on their clock (the test
    inputs may reach back into the training tail), and the index where the last file starts. The input scenario
    degrades each file's glucose with the same seed; the targets stay the readings."""
    parts = [record.train.grid] + ([record.test.grid] if test else [])
    degraded = [
        g.assign(input=apply_scenario(g["glucose"].to_numpy(dtype=float), cfg.missing, cfg.missing_rate,
                                      cfg.noise_std, cfg.scenario_seed * 1000 + seed_offset))
        for g in parts
    ]
    grid, start = join_for_test(*degraded) if test else (degraded[0], 0)
    inputs = model_inputs(grid, cfg, glucose=grid["input"].to_numpy(dtype=float))
    return PatientSeries(record.patient_id, grid.index, inputs, grid["glucose"].to_numpy(dtype=float)), start


def _subsample(origins: np.ndarray, cap: int | None) -> np.ndarray:
    """Evenly spaced subsample, deterministic, so capped runs still see every part of the record."""
    if cap is None or len(origins) <= cap:
        return origins
    return origins[np.unique(np.linspace(0, len(origins) - 1, cap).round().astype(int))]


class _Builder:
    """Accumulates per-patient windows into one WindowDataset."""

    def __init__(self, cfg: DataConfig):
        self.cfg = cfg
        self.inputs: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.origins: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.patients: list[np.ndarray] = []
        self.times: list[np.ndarray] = []
        self.offset = 0

    def add(self, pid: str, index: pd.DatetimeIndex, inputs, targets, origins, mask) -> None:
        # pred_len unscored rows after each patient: test windows near the end of a file index past it (masked)
        pad = self.cfg.pred_len
        inputs = np.concatenate([inputs, np.full((pad, inputs.shape[1]), np.nan)])
        targets = np.concatenate([targets, np.full(pad, np.nan)])
        self.inputs.append(inputs)
        self.targets.append(targets)
        self.origins.append(origins + self.offset)
        self.masks.append(mask)
        self.patients.append(np.full(len(origins), pid, dtype=object))
        self.times.append(index.to_numpy()[origins])
        self.offset += len(targets)

    def build(self, scaler: Scaler) -> WindowDataset:
        c, h = self.cfg, self.cfg.pred_len
        inputs = scaler.transform(np.concatenate(self.inputs)) if self.inputs else np.zeros((0, 1))
        targets = (np.concatenate(self.targets) - scaler.mean[0]) / scaler.std[0] if self.targets else np.zeros(0)
        cat = lambda parts, empty: np.concatenate(parts) if parts else empty  # noqa: E731
        return WindowDataset(
            inputs,
            targets,
            cat(self.origins, np.zeros(0, dtype=np.int64)),
            cat(self.masks, np.zeros((0, h), dtype=bool)),
            cat(self.patients, np.zeros(0, dtype=object)),
            cat(self.times, np.zeros(0, dtype="datetime64[ns]")),
            c.seq_len,
            h,
            targets_mgdl=cat(self.targets, np.zeros(0)),
        )


def fit_scaler(values: list[np.ndarray], unscaled: tuple[int, ...] | list[int] = ()) -> Scaler:
    """Per-channel mean and std of the training region; the ``unscaled`` channels (the 0/1 markers) keep mean 0 and
    std 1, so they read the same in every split and patient."""
    stacked = np.concatenate(values)
    mean = np.nanmean(stacked, axis=0)
    std = np.nanstd(stacked, axis=0)
    std[~(std > 0)] = 1.0
    mean[list(unscaled)], std[list(unscaled)] = 0.0, 1.0
    return Scaler(mean, std)


def validate(cfg: DataConfig) -> None:
    check(cfg)
    if cfg.seq_len < 2 or cfg.pred_len < 1:
        raise LLMTimeError(f"--seq_len must be >= 2 and --pred_len >= 1 (got {cfg.seq_len}, {cfg.pred_len})")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise LLMTimeError(f"--val_fraction must be in (0, 1), got {cfg.val_fraction}")
    if not 0 < cfg.percent <= 100:
        raise LLMTimeError(f"--percent must be in (0, 100], got {cfg.percent}")
    for name in ("max_train_windows", "max_val_windows"):
        cap = getattr(cfg, name)
        if cap is not None and cap < 1:
            raise LLMTimeError(f"--{name} must be a positive number of windows (0 on the command line = no cap)")
    if cfg.train_draw not in DRAWS:
        raise LLMTimeError(f"--train_draw must be one of {', '.join(DRAWS)}, got {cfg.train_draw!r}")
    if cfg.input_fill not in FILLS:
        raise LLMTimeError(f"--input_fill must be one of {', '.join(FILLS)}, got {cfg.input_fill!r}")
    if cfg.horizon_events and cfg.seq_len < cfg.pred_len:
        raise LLMTimeError(f"--horizon_events needs --seq_len >= --pred_len (got {cfg.seq_len} < {cfg.pred_len}): the "
                           "horizon's events ride on the window's last pred_len points")
    if cfg.max_gap_fill_min < 0:
        raise LLMTimeError(f"--max_gap_fill_min must be >= 0 minutes, got {cfg.max_gap_fill_min}")


def build_splits(
    cfg: DataConfig, records: dict[str, PatientRecord] | None = None, scaler: Scaler | None = None
) -> Splits:
    """Load patients and cut train / validation / test windows according to ``cfg``.

    ``scaler`` (from a checkpoint) replaces fitting, so a saved model sees its data scaled exactly as in training.
    """
    validate(cfg)
    train_ids = cfg.patients
    test_ids = cfg.test_patients or cfg.patients
    if records is None:
        wanted = None if train_ids is None and test_ids is None else sorted(set(train_ids or []) | set(test_ids or []))
        records = load_records(cfg, wanted)
    train_ids = list(train_ids or records)
    test_ids = list(test_ids or train_ids)
    train_b, val_b, test_b = _Builder(cfg), _Builder(cfg), _Builder(cfg)
    fit_values: list[np.ndarray] = []
    no_test: list[str] = []
    for k, pid in enumerate(train_ids):
        s, _ = _series(records[pid], cfg, 2 * k)
        tr, va, filled, split = train_val_origins(s, cfg.seq_len, cfg.pred_len, cfg.max_gap_fill_min,
                                                  cfg.val_fraction, cfg.input_fill)
        tr = tr[: int(np.ceil(len(tr) * cfg.percent / 100))]
        fit_values.append(np.column_stack([s.targets[:split], filled[:split, 1:]]))
        train_b.add(pid, s.index, filled, s.targets, tr, np.ones((len(tr), cfg.pred_len), dtype=bool))
        val_b.add(pid, s.index, filled, s.targets, va, np.ones((len(va), cfg.pred_len), dtype=bool))
    for k, pid in enumerate(test_ids):
        rec = records[pid]
        if rec.test is None:
            testing = dataset(cfg.data).testing.format(pid=pid)
            raise LLMTimeError(f"patient {pid} has no {testing} file to test on")
        joined, start = _series(rec, cfg, 2 * k + 1, test=True)
        origins, mask, filled = bglp_origins(joined, start, cfg.seq_len, cfg.pred_len)
        if len(origins) == 0:
            no_test.append(pid)
        test_b.add(pid, joined.index, filled, joined.targets, origins, mask)
    scaler = scaler or fit_scaler(fit_values, unscaled=marker_index(cfg))
    train = train_b.build(scaler)
    per_epoch = cfg.max_train_windows if cfg.max_train_windows and cfg.max_train_windows < len(train) else None
    if cfg.train_draw == "fixed":  # the earlier evenly spaced subset, the same every epoch
        train, per_epoch = subset(train, per_epoch), None
    val = subset(val_b.build(scaler), cfg.max_val_windows)
    test = test_b.build(scaler)
    if len(train) == 0:
        raise LLMTimeError(
            f"patients {', '.join(train_ids)} give no complete training window of {cfg.seq_len}+{cfg.pred_len} "
            "points: use more data or a shorter --seq_len"
        )
    if no_test:  # found now, not after training
        raise LLMTimeError(
            f"{'patient' if len(no_test) == 1 else 'patients'} {', '.join(no_test)} "
            f"{'gives' if len(no_test) == 1 else 'give'} no test window: scoring starts {TEST_WARMUP_MIN} min into the "
            f"testing file, each forecast with {cfg.seq_len} points of input before it; drop them from --test_patients"
        )
    return Splits(train, val, test, scaler, description(cfg), train_ids, test_ids, per_epoch)


def subset(ds: WindowDataset, cap: int | None) -> WindowDataset:
    """A view of ``ds`` keeping an evenly spaced subsample of at most ``cap`` windows."""
    keep = _subsample(np.arange(len(ds)), cap)
    return ds if len(keep) == len(ds) else window_view(ds, keep)


def fit_windows(splits: Splits, seed: int) -> WindowDataset:
    """The training windows a closed-form fit (ridge) sees: with a per-epoch cap, the first epoch's draw, i.e. as
    many distinct windows as one epoch of a gradient-trained model; otherwise every training window."""
    if splits.train_per_epoch is None:
        return splits.train
    return window_view(splits.train, np.sort(stratified_draw(splits.train.patient, splits.train_per_epoch, seed, 1)))


def window_view(ds: WindowDataset, keep: np.ndarray) -> WindowDataset:
    """``ds`` restricted to the windows ``keep`` (indices), sharing its stored series."""
    out = WindowDataset.__new__(WindowDataset)
    out.__dict__.update(ds.__dict__)
    out.origins, out.mask = ds.origins[keep], ds.mask[keep]
    out.patient, out.origin_time = ds.patient[keep], ds.origin_time[keep]
    return out


def window_inputs(ds: WindowDataset, cap: int | None = None) -> torch.Tensor:
    """The input windows of ``subset(ds, cap)``, stacked: [windows, seq_len, channels], scaled."""
    part = subset(ds, cap)
    return part.__getitems__(list(range(len(part))))["x"]


def windows_per_epoch(splits: Splits) -> int:
    """How many training windows one epoch presents: the per-epoch cap, else the training set's own epoch plan
    (labelled plus teacher-only windows, ``distillation.teacher_data``), else every training window."""
    if splits.train_per_epoch is not None:
        return splits.train_per_epoch
    plan = getattr(splits.train, "epoch_sampler", None)
    return len(plan(0)) if plan is not None else len(splits.train)


def make_loader(ds: WindowDataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0,
                per_epoch: int | None = None) -> DataLoader:
    """Shuffling and worker seeds both come from one generator seeded with ``seed``, so a run repeats exactly.
    ``per_epoch``: each epoch draws that many windows afresh (``draws.EpochDraw``, shuffled by its own draw). A
    training set that plans its own epochs (it has ``epoch_sampler(seed)``: a distilled student's labelled windows
    plus teacher-only ones, ``distillation.teacher_data``) brings its sampler instead."""
    if num_workers < 0:
        raise LLMTimeError(f"--num_workers must be >= 0, got {num_workers}")
    generator = torch.Generator().manual_seed(seed)
    if shuffle and hasattr(ds, "epoch_sampler"):
        sampler = ds.epoch_sampler(seed)
    else:
        sampler = EpochDraw(ds.patient, per_epoch, seed) if per_epoch is not None and shuffle else None
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=num_workers,
        worker_init_fn=worker_init if num_workers > 0 else None,
        collate_fn=batch_collate,
        drop_last=False,
    )


def target_times(ds: WindowDataset) -> np.ndarray:
    """Timestamps of each window's targets [N, pred_len]."""
    steps = np.arange(1, ds.pred_len + 1) * np.timedelta64(STEP_MINUTES, "m")
    return ds.origin_time[:, None] + steps[None, :]
