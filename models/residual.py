"""A closed-form ridge forecast under a gradient-trained model (``--base ridge``): the model learns a correction.

    forecast(x) = ridge(x) + gate * (model(x) - the window's mean glucose)

Why: on the bundled cohort Ridge (MS), fitted in seconds, beats Time-LLM (MS) by about 3 mg/dL at 30 minutes, so a
model trained from scratch can end below a regression, and a student distilled from it can at best copy it. Put on
top of ridge, gradient training starts from ridge's forecast and spends the model's capacity on what ridge misses.

- ridge: ``models.ridge.Ridge`` on every input channel (with ``--features MS`` the meals, boluses and basal too),
  fitted in ``fit_closed_form`` on the windows a Ridge run fits on, before gradient training. Its coefficients are
  frozen parameters kept in the checkpoint (``trainable_state_dict``), so a reloaded run forecasts the same without
  refitting.
- gate: one scalar initialised to zero, so at initialisation the forecast is ridge's exactly, whatever the model's
  output (zeroing a last layer would not do that for RevIN models, whose zero output is the window mean). Training
  opens it; with Adam the model's own weights move at their full rate as soon as the gate is non-zero.
- the window mean: RevIN models (Time-LLM, PatchTST, MLP) add each window's glucose mean back to their forecast, a
  level ridge already forecasts; taking it off leaves them a correction free of the level. A model without RevIN
  (DLinear) reads the window linearly, so it can add the mean back and loses nothing.

The wrapper reports the inner model's language-model attributes (backbone, weights source, prompt, hidden states), so
the distillation pipeline, the benchmark's ONNX export and the results rows treat a based Time-LLM as a Time-LLM.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor, nn

from data_provider.data_factory import WindowDataset
from models.base import Forecaster
from models.ridge import Ridge
from utils.errors import LLMTimeError

MODEL_PREFIX = "model."


class OnRidge(Forecaster):
    """[B, seq_len, C] -> [B, pred_len]: ``ridge(x)`` plus the gated correction of ``model``."""

    def __init__(self, model: Forecaster, ridge: Ridge) -> None:
        super().__init__()
        self.model, self.ridge = model, ridge
        self.gate = nn.Parameter(torch.zeros(()))
        self.seq_len = ridge.seq_len
        # What callers read off a model to report or export it: the inner model's (fixed once it is built).
        self.uses_llm, self.weights_source = model.uses_llm, model.weights_source
        self.backbone_row, self.backbone_layers_used = model.backbone_row, model.backbone_layers_used
        self.prompt, self.n_patches = model.prompt, model.n_patches
        self.cache_prompt_prefix, self.has_hidden_states = model.cache_prompt_prefix, model.has_hidden_states

    @property
    def backbone(self) -> nn.Module:
        """The inner model's frozen language model (distillation reads its depth and width)."""
        return self.model.backbone

    def fit_closed_form(self, train: WindowDataset) -> None:
        self.ridge.fit_closed_form(train)
        self.model.fit_closed_form(train)

    def forward(self, x: Tensor, **kwargs) -> Union[Tensor, tuple]:
        """The forecast; keyword arguments go to the inner model (``return_hidden`` of ``forward_hidden``, an exported
        graph's ``prompt``), and whatever it returns beside its forecast (hidden states) is passed on unchanged."""
        out = self.model(x, **kwargs)
        pred, rest = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
        level = x[..., 0].mean(dim=1, keepdim=True)
        # Ridge's forecast is the bulk of the output: in float32 even under bf16 autocast, whose 8-bit mantissa would
        # move it by up to half a mg/dL.
        with torch.autocast(x.device.type, enabled=False):
            base = self.ridge(x.float())
        forecast = base + self.gate * (pred - level)
        return (forecast, *rest) if rest else forecast

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The gate, ridge's coefficients and penalty, and the inner model's own checkpointed state."""
        own = {k: v for k, v in self.state_dict().items() if not k.startswith(MODEL_PREFIX)}
        return own | {MODEL_PREFIX + k: v for k, v in self.model.trainable_state_dict().items()}

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        own = {k: v for k, v in state.items() if not k.startswith(MODEL_PREFIX)}
        expected = {k for k in self.state_dict() if not k.startswith(MODEL_PREFIX)}
        if set(own) != expected:
            raise LLMTimeError(f"checkpoint does not fit a model on a ridge base (missing "
                               f"{sorted(expected - set(own))[:3]}, unexpected {sorted(set(own) - expected)[:3]}); "
                               "rebuild the model from the run's config.json")
        self.model.load_trainable_state_dict(
            {k[len(MODEL_PREFIX):]: v for k, v in state.items() if k.startswith(MODEL_PREFIX)})
        self.load_state_dict(own, strict=False)  # strict on own keys above; the inner model's were loaded by it
