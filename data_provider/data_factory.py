"""Datasets and loaders for a run: patients -> series -> windows -> scaled batches.

The scaler is fit on the training region (the training file minus its validation tail) of the training patients
only, then applied to every split, channel by channel.

Channels, in order (``channel_names``): glucose; with ``--features MS`` the basal rate (U/h), bolus (U) and carbs
(g) of the pump and meal logs, missing entries read as none (0); with ``filled_channel`` a 0/1 marker of inputs
that were filled (carried forward, or interpolated with ``input_fill linear``) rather than read, left unscaled.

Batches are gathered with one NumPy fancy-index per batch (``__getitems__``), so a loader does no per-window Python
work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from data_provider.ohio import PatientRecord, load_cohort
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

DATASET_DIR = Path(__file__).resolve().parents[1] / "dataset"
BUNDLED = {"simulated": DATASET_DIR / "simulated"}
# Other spellings of a dataset's name -> the name its prompt description (dataset/prompt_bank) and run folders use.
DATASET_ALIASES = {"ohiot1dm": "ohio"}
COVARIATES = ("basal", "bolus", "carbs")
FILLED = "filled"


def channel_names(cfg: DataConfig) -> tuple[str, ...]:
    """Names of the input channels, in the order the windows carry them (glucose first)."""
    return ("glucose",) + (COVARIATES if cfg.covariates else ()) + ((FILLED,) if cfg.filled_channel else ())


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


def dataset_name(name: str) -> str:
    """The one spelling of a ``--data`` name: case-insensitive, and OhioT1DM's full name ('ohiot1dm', 'OhioT1DM') is
    'ohio', so the name people type for the dataset finds its prompt description and names its runs the same way."""
    key = name.strip().lower()
    return DATASET_ALIASES.get(key, key)


def data_root(cfg: DataConfig) -> Path:
    if cfg.root_path:
        return Path(cfg.root_path)
    if dataset_name(cfg.data) not in BUNDLED:
        raise LLMTimeError(
            f"--data {cfg.data} has no bundled copy: pass --root_path to the folder holding its XML files"
        )
    return BUNDLED[dataset_name(cfg.data)]


def description(cfg: DataConfig) -> str:
    """The dataset's prompt description from dataset/prompt_bank/<data>.txt."""
    path = DATASET_DIR / "prompt_bank" / f"{dataset_name(cfg.data)}.txt"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in path.parent.glob("*.txt")))
        raise LLMTimeError(f"no prompt description {path} for --data {cfg.data}; available: {names}")
    return path.read_text().strip()


def _series(record: PatientRecord, part: str, cfg: DataConfig, seed_offset: int) -> PatientSeries:
    grid = getattr(record, part).grid
    glucose = grid["glucose"].to_numpy(dtype=float)
    degraded = apply_scenario(
        glucose, cfg.missing, cfg.missing_rate, cfg.noise_std, cfg.scenario_seed * 1000 + seed_offset
    )
    channels = [degraded]
    if cfg.covariates:
        channels += [grid[c].fillna(0.0).to_numpy(dtype=float) for c in COVARIATES]
    return PatientSeries(record.patient_id, grid.index, np.stack(channels, axis=1), glucose)


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


def fit_scaler(values: list[np.ndarray], unscaled: bool = False) -> Scaler:
    """Per-channel mean and std of the training region; with ``unscaled`` the last channel (the 0/1 filled
    marker) keeps mean 0 and std 1, so it reads the same in every split and patient."""
    stacked = np.concatenate(values)
    mean = np.nanmean(stacked, axis=0)
    std = np.nanstd(stacked, axis=0)
    std[~(std > 0)] = 1.0
    if unscaled:
        mean[-1], std[-1] = 0.0, 1.0
    return Scaler(mean, std)


def mark_filled(cfg: DataConfig, raw: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """``filled`` inputs plus, with ``filled_channel``, the marker of glucose inputs that were missing in ``raw``."""
    if not cfg.filled_channel:
        return filled
    return np.column_stack([filled, np.isnan(raw[:, 0]).astype(float)])


def validate(cfg: DataConfig) -> None:
    known = sorted(p.stem for p in (DATASET_DIR / "prompt_bank").glob("*.txt"))
    if dataset_name(cfg.data) not in known:
        raise LLMTimeError(f"unknown --data {cfg.data!r}; choose one of: {', '.join(known)} (or ohiot1dm for ohio)")
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
    if cfg.input_fill not in FILLS:
        raise LLMTimeError(f"--input_fill must be one of {', '.join(FILLS)}, got {cfg.input_fill!r}")
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
        records = load_cohort(data_root(cfg), wanted)
    train_ids = list(train_ids or records)
    test_ids = list(test_ids or train_ids)
    train_b, val_b, test_b = _Builder(cfg), _Builder(cfg), _Builder(cfg)
    fit_values: list[np.ndarray] = []
    no_test: list[str] = []
    for k, pid in enumerate(train_ids):
        s = _series(records[pid], "train", cfg, 2 * k)
        tr, va, filled, split = train_val_origins(s, cfg.seq_len, cfg.pred_len, cfg.max_gap_fill_min,
                                                  cfg.val_fraction, cfg.input_fill)
        filled = mark_filled(cfg, s.inputs, filled)
        tr = tr[: int(np.ceil(len(tr) * cfg.percent / 100))]
        fit_values.append(np.column_stack([s.targets[:split], filled[:split, 1:]]))
        train_b.add(pid, s.index, filled, s.targets, tr, np.ones((len(tr), cfg.pred_len), dtype=bool))
        val_b.add(pid, s.index, filled, s.targets, va, np.ones((len(va), cfg.pred_len), dtype=bool))
    for k, pid in enumerate(test_ids):
        rec = records[pid]
        if rec.test is None:
            raise LLMTimeError(f"patient {pid} has no {pid}-ws-testing.xml file to test on")
        joined, start = join_for_test(_series(rec, "train", cfg, 2 * k + 1), _series(rec, "test", cfg, 2 * k + 1))
        origins, mask, filled = bglp_origins(joined, start, cfg.seq_len, cfg.pred_len)
        filled = mark_filled(cfg, joined.inputs, filled)
        if len(origins) == 0:
            no_test.append(pid)
        test_b.add(pid, joined.index, filled, joined.targets, origins, mask)
    scaler = scaler or fit_scaler(fit_values, unscaled=cfg.filled_channel)
    train = subset(train_b.build(scaler), cfg.max_train_windows)
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
    return Splits(train, val, test, scaler, description(cfg), train_ids, test_ids)


def subset(ds: WindowDataset, cap: int | None) -> WindowDataset:
    """A view of ``ds`` keeping an evenly spaced subsample of at most ``cap`` windows."""
    keep = _subsample(np.arange(len(ds)), cap)
    if len(keep) == len(ds):
        return ds
    out = WindowDataset.__new__(WindowDataset)
    out.__dict__.update(ds.__dict__)
    out.origins, out.mask = ds.origins[keep], ds.mask[keep]
    out.patient, out.origin_time = ds.patient[keep], ds.origin_time[keep]
    return out


def window_inputs(ds: WindowDataset, cap: int | None = None) -> torch.Tensor:
    """The input windows of ``subset(ds, cap)``, stacked: [windows, seq_len, channels], scaled."""
    part = subset(ds, cap)
    return part.__getitems__(list(range(len(part))))["x"]


def make_loader(ds: WindowDataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0) -> DataLoader:
    """Shuffling and worker seeds both come from one generator seeded with ``seed``, so a run repeats exactly."""
    if num_workers < 0:
        raise LLMTimeError(f"--num_workers must be >= 0, got {num_workers}")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
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
