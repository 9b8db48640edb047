"""The README's "to add one thing" table, tried: a throwaway backbone, dataset and metric are each added exactly where
the table says (its registry entry, patched in for the test) and work end to end at the smallest scale. The
throwaway model (one file and one registry line) is ``tests/test_conformance.py``'s ``Drift``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pytest
import torch

from builders import TINY
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from data_provider import datasets
from data_provider.data_factory import build_splits, window_inputs
from data_provider.datasets import DATASETS, Dataset, dataset_name, description, patient_ids
from data_provider.ohio import GRID_COLUMNS, PatientPart, PatientRecord
from exp.run import train_and_test
from models import backbones
from models.backbones import BackboneRow, backbone_names, resolve_backbone
from models.time_llm import TimeLLM
from utils import metrics
from utils.metrics import POINT_METRICS

SMALL = DataConfig(seq_len=24, pred_len=6, patients=["1001"], test_patients=["1001"], max_train_windows=64,
                   max_val_windows=32)


def test_a_backbone_is_a_row_of_the_table(monkeypatch):
    """A new BERT-architecture row (no new family): named by its short name, alias or id, it builds a Time-LLM
    (random weights, offline) that forecasts."""
    row = BackboneRow("Throwaway", "example/throwaway-bert", "bert", 32, 32, 2, 2, 30522, 64, 512, 0.1,
                      teacher=False, student=True, aliases=("throwaway-tiny",))
    monkeypatch.setattr(backbones, "BACKBONES", (*backbones.BACKBONES, row))
    monkeypatch.setattr(backbones, "_INDEX", backbones._build_index())  # as importing the module with the row does
    assert "Throwaway" in backbone_names()
    assert resolve_backbone("throwaway-tiny") is resolve_backbone("example/throwaway-bert") is row
    splits = build_splits(SMALL)
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        model = TimeLLM(ModelConfig(llm_model="throwaway-tiny", llm_weights="random", **TINY), SMALL, splits.scaler,
                        splits.description)
    assert model.backbone_row is row and model.weights_source == "random"
    with torch.no_grad():
        assert model.eval()(window_inputs(splits.test, 4)).shape == (4, SMALL.pred_len)


def _text_ids(root: Path, cfg: DataConfig) -> list[str]:
    return sorted(p.stem for p in root.glob("*.txt"))


def _text_records(root: Path, cfg: DataConfig, patients: Optional[list[str]]) -> dict[str, PatientRecord]:
    """A throwaway format: ``<id>.txt``, one CGM reading (mg/dL) a line every 5 minutes; the last fifth is testing."""
    records = {}
    for pid in patients or _text_ids(root, cfg):
        path = root / f"{pid}.txt"
        glucose = np.loadtxt(path)
        grid = pd.DataFrame({name: np.nan for name in GRID_COLUMNS},
                            index=pd.date_range("2024-01-01", periods=len(glucose), freq="5min"))
        grid["glucose"], grid["bolus"], grid["carbs"] = glucose, 0.0, 0.0  # as ohio.build_grid leaves no events
        cut = len(grid) * 4 // 5
        records[pid] = PatientRecord(pid, {}, PatientPart(path, {}, grid.iloc[:cut]),
                                     PatientPart(path, {}, grid.iloc[cut:]))
    return records


def test_a_dataset_is_an_entry_and_its_prompt_description(tmp_path, monkeypatch):
    """A reader, its patient ids and ``prompt_bank/<name>.txt``: ``--data`` finds it in any spelling and its
    records become windows and a prompt description."""
    entry = Dataset("textcgm", ("text-cgm",), _text_records, _text_ids, "a folder of <id>.txt files", "{pid}.txt")
    monkeypatch.setitem(DATASETS, "textcgm", entry)
    bank = tmp_path / "dataset" / "prompt_bank"
    bank.mkdir(parents=True)
    (bank / "textcgm.txt").write_text("Throwaway CGM traces, one reading every 5 minutes.\n")
    monkeypatch.setattr(datasets, "DATASET_DIR", tmp_path / "dataset")  # where prompt_bank/ is, for this test only
    root = tmp_path / "data"
    root.mkdir()
    for k, pid in enumerate(("7", "8")):
        np.savetxt(root / f"{pid}.txt", 120 + 40 * np.sin(np.arange(2 * 288) / (30 + k)))
    cfg = DataConfig(data=dataset_name("Text-CGM"), root_path=str(root), seq_len=24, pred_len=6)
    assert cfg.data == "textcgm" and patient_ids(cfg) == ["7", "8"]
    assert description(cfg) == "Throwaway CGM traces, one reading every 5 minutes."
    splits = build_splits(cfg)
    assert len(splits.train) > 100 and len(splits.val) > 0 and len(splits.test) > 100
    assert sorted(splits.test_patients) == ["7", "8"] and splits.description == description(cfg)


def _bias(err: np.ndarray, rel: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean signed error per horizon step (mg/dL): positive where forecasts run high."""
    return err.sum(axis=0) / n


def test_a_metric_is_an_entry_and_reaches_the_results(tmp_path, monkeypatch):
    """One entry in ``POINT_METRICS``: a run's metrics.json has it per step, per patient and at 30/60 min, and its
    results CSV row has ``bias_30`` and ``bias_60``."""
    monkeypatch.setitem(POINT_METRICS, "bias", _bias)
    data = replace(SMALL, pred_len=12)  # an hour ahead: both named horizons
    cfg = RunConfig(data=data, model=ModelConfig(model="Ridge"), train=TrainConfig(train_epochs=1),
                    checkpoints=str(tmp_path / "runs"))
    result = train_and_test(cfg)
    assert len(result.metrics["pooled"]["bias"]) == data.pred_len
    assert result.metrics["per_patient"]["1001"]["bias_30"] == pytest.approx(result.metrics["pooled"]["bias_30"])
    row = pd.read_csv(tmp_path / "runs" / "results.csv").iloc[-1]
    assert row["bias_30"] == pytest.approx(result.row["bias_30"]) and np.isfinite(row["bias_60"])
    assert metrics.summary_row(result.metrics)["bias_60"] == result.row["bias_60"]
