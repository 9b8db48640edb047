"""Every registered model keeps the contract the rest of the code relies on, checked from its registry entry alone
(as neuralforecast's ``check_model`` does for its models): built tiny, trained one step (or fitted in closed form),
its checkpoint round-tripped through ``exp.checkpoint`` to the same forecasts, its hidden states given as it
declares, and exported to ONNX where its spec says it can be. A throwaway model registered inside a test shows that
an entry is all a new model needs: the same checks, ``--plan`` and the grids take it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bench.export import export_onnx
from builders import TINY
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from data_provider.data_factory import build_splits, make_loader, subset, window_inputs
from exp.checkpoint import rebuild_model, save_checkpoint
from exp.trainer import Trainer, trainable_state
from models import MODELS, build_model, model_spec
from models.base import Forecaster
from models.spec import ModelSpec, Rate, Recipe
from scripts import compare_models as cm
from utils.errors import LLMTimeError
from utils.seed import seed_everything

# Meals, insulin and basal as channels (and, for Time-LLM, as prompt text), the bundled cohort's first patient.
DATA = DataConfig(seq_len=24, pred_len=6, covariates=True, patients=["1001"], test_patients=["1001"])
TRAIN = TrainConfig(batch_size=8, train_epochs=1, max_steps_per_epoch=1, learning_rate=1e-3, lradj="constant",
                    mixed_precision="no")
LLM_MODELS = [name for name, spec in MODELS.items() if spec.uses_llm]


@pytest.fixture(scope="module")
def splits():
    return build_splits(DATA)


def tiny_config(name: str, backbones: dict[str, Path]) -> RunConfig:
    """The run configuration of a tiny ``name``: builders.TINY sizes, and the tiny saved BERT for a language model."""
    model = ModelConfig(model=name, **TINY)
    if model_spec(name).uses_llm:
        model = ModelConfig(model=name, llm_model="BERT", llm_path=str(backbones["bert"]), **TINY)
    return RunConfig(data=DATA, model=model, train=TRAIN)


def built(cfg: RunConfig, splits) -> Forecaster:
    seed_everything(cfg.train.seed)  # as a run seeds before building, so a rebuilt model is the same model
    model = build_model(cfg.model, cfg.data, splits.scaler, splits.description)
    model.fit_closed_form(subset(splits.train, 256))
    return model


def check_model(name: str, backbones: dict[str, Path], splits, folder: Path) -> None:
    """Build, train one step, save and rebuild ``name``: what the engine asks of every registered model."""
    spec, cfg = model_spec(name), tiny_config(name, backbones)
    model = built(cfg, splits)
    assert isinstance(model, spec.cls) and model.uses_llm == spec.uses_llm
    before = trainable_state(model)
    trainer = Trainer(cfg.train, model)
    trainer.fit(make_loader(subset(splits.train, 16), 8, True, 0), make_loader(subset(splits.val, 8), 8, False, 0))
    model = trainer.release().eval()
    after = trainable_state(model)
    assert after.keys() == before.keys()
    moved = any(not torch.equal(before[k], after[k]) for k in before)
    assert moved == spec.gradient_trained, f"{name}: one training step {'left' if not moved else 'moved'} its weights"
    save_checkpoint(folder, after, cfg, splits.scaler)
    _, _, again, _ = rebuild_model(folder)
    x = window_inputs(splits.test, 8)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), model(x), rtol=0, atol=0)
    check_hidden_states(model, x)


def check_hidden_states(model: Forecaster, x: torch.Tensor) -> None:
    """``forward_hidden`` keeps what ``has_hidden_states`` declares: the forecast and a state per patch position
    and layer, or a one-line error naming the model."""
    if not model.has_hidden_states:
        with pytest.raises(LLMTimeError, match=f"^{type(model).__name__} has no hidden states to match: .*--gamma 0$"):
            model.forward_hidden(x)
        return
    with torch.no_grad():
        pred, hidden = model.forward_hidden(x)
        torch.testing.assert_close(pred, model(x), rtol=0, atol=0)
    assert hidden and all(h.shape[:2] == (len(x), model.n_patches) for h in hidden)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registered_model_trains_and_round_trips_its_checkpoint(name, tiny_backbones, splits, tmp_path):
    check_model(name, tiny_backbones, splits, tmp_path)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in LLM_MODELS else n
                                  for n, spec in MODELS.items() if spec.onnx])
def test_every_model_its_spec_calls_exportable_exports_to_onnx(name, tiny_backbones, splits, tmp_path):
    model = built(tiny_config(name, tiny_backbones), splits).eval()
    x = window_inputs(splits.test, 16)
    runner = export_onnx(model, x[:4], tmp_path / f"{name}.onnx")
    with torch.no_grad():
        torch.testing.assert_close(runner(x), model(x), atol=1e-4, rtol=1e-4)


class Drift(Forecaster):
    """The last reading plus a learned step per horizon: a whole new model in a few lines."""

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler, description: str) -> None:
        super().__init__()
        self.step = nn.Parameter(torch.zeros(data_cfg.pred_len))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, :1] + self.step


DRIFT = ModelSpec(Drift, role="baseline", rate=Rate(1_000, 5_000, 1, "a test's guess"),
                  recipe=Recipe(learning_rate=1e-2, batch_size=16, lradj="COS", warmup_steps=0, train_epochs=5,
                                patience=2))


def test_a_model_added_to_the_registry_is_checked_planned_and_gridded(tiny_backbones, splits, tmp_path, monkeypatch,
                                                                        capsys):
    monkeypatch.setitem(MODELS, "Drift", DRIFT)
    check_model("Drift", tiny_backbones, splits, tmp_path / "run")
    export_onnx(built(tiny_config("Drift", tiny_backbones), splits).eval(), window_inputs(splits.test, 4),
                tmp_path / "drift.onnx")
    capsys.readouterr()
    assert cm.main(["--standard", "--plan", "--out", str(tmp_path / "standard")]) == 0
    plan = capsys.readouterr().out
    assert plan.startswith("Plan: 57 of 57 runs")  # the 51 standard runs and Drift on S and MS, 3 seeds each
    assert "Drift (S)" in plan and "Drift (MS)" in plan and "Drift: 1,000 / 5,000 (a test's guess)" in plan
    assert "2,000 / 1,000" in next(line for line in plan.splitlines() if "Drift (MS)" in line)  # the one budget
    assert cm.main(["--plan", "--out", str(tmp_path / "custom"), "--patients", "1001", "--seeds", "1"]) == 0
    assert "Drift" in capsys.readouterr().out  # a baseline: a row of the preset grids without --models


def test_every_registered_model_can_be_planned(tmp_path, capsys):
    """--plan costs each cell from its model's spec, so no registered model is missing a rate (MLP included)."""
    assert cm.main(["--models", ",".join(MODELS), "--plan", "--out", str(tmp_path), "--patients", "1001",
                    "--seeds", "1"]) == 0
    rates = capsys.readouterr().out.split("Rates")[1]
    assert all(f"  {name}: " in rates for name in MODELS)
