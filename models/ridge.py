"""Ridge autoregression: every forecast step is a linear function of the whole (scaled) input window.

The strongest cheap baseline for short-horizon glucose: a 6-hour window of CGM (plus insulin and carbohydrate
channels with ``--features MS``) maps linearly to the next hour. It is fit in closed form on the training windows by
``fit_closed_form``, which the runner calls before (skipped) gradient training; validation and test windows are
never seen by the fit.

The ridge penalty is chosen by scikit-learn's ``RidgeCV`` (efficient leave-one-out over ``ALPHAS``) on the training
windows alone. Neighbouring windows overlap, so leave-one-out favours small penalties; with tens of thousands of
windows and at most a few hundred inputs the penalty barely matters, and the chosen value is kept in the
checkpoint (``alpha``) so it can be reported.

Coefficients are stored as frozen parameters (``requires_grad=False``): ``state_dict`` checkpoints them, the
parameter count reports the model's size, and the trainer sees nothing to optimise.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from data_provider.data_factory import Scaler, WindowDataset
from configs import DataConfig, ModelConfig
from models.base import Forecaster
from models.inputs import channel_major, input_channels
from utils.errors import LLMTimeError

ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


class Ridge(Forecaster):
    """[B, seq_len, C] -> [B, pred_len] scaled glucose: ``x.flatten() @ weight.T + bias``."""

    gradient_trained = False

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, scaler: Scaler,
                 description: str) -> None:
        super().__init__()
        self.seq_len, self.channels = data_cfg.seq_len, input_channels(data_cfg)
        n_inputs = self.seq_len * self.channels
        self.weight = nn.Parameter(torch.zeros(data_cfg.pred_len, n_inputs), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(data_cfg.pred_len), requires_grad=False)
        self.register_buffer("alpha", torch.tensor(float("nan"), dtype=torch.float64))

    def fit_closed_form(self, train: WindowDataset) -> None:
        """Fit on every fully scored training window (all of them, for training data)."""
        batch = train.__getitems__(list(range(len(train))))
        keep = batch["mask"].all(dim=1)
        if int(keep.sum()) < 2:
            raise LLMTimeError("Ridge needs at least 2 training windows: use more data or a shorter --seq_len")
        x = channel_major(batch["x"][keep]).double().numpy()
        y = batch["y"][keep].double().numpy()
        if x.shape[1] != self.weight.shape[1]:
            raise LLMTimeError(
                f"training windows carry {x.shape[1] // self.seq_len} channels but the model was built for "
                f"{self.channels}; rebuild it with the run's --features"
            )
        from sklearn.linear_model import RidgeCV  # deferred: scikit-learn is slow to import and only needed here

        fit = RidgeCV(alphas=ALPHAS).fit(x, y)
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(np.asarray(fit.coef_)).to(self.weight.dtype))
            self.bias.copy_(torch.from_numpy(np.asarray(fit.intercept_)).to(self.bias.dtype))
            self.alpha.fill_(float(fit.alpha_))

    def forward(self, x: Tensor) -> Tensor:
        if torch.isnan(self.alpha):
            raise RuntimeError("Ridge must be fit (fit_closed_form) or loaded from a checkpoint before forecasting")
        return nn.functional.linear(channel_major(x), self.weight, self.bias)
