"""Did training converge? The learning curve of a fit, its verdict, and the picture.

A run is only worth reporting when validation loss had stopped improving: a curve still falling at the last epoch
means the model was compared before it finished learning, which favours the models that learn fastest (persistence
and ridge need no training at all). Every run records its curve and one of two verdicts:

* ``converged``: early stopping fired (``patience`` epochs without a new best validation loss);
* ``capped``: the epoch cap ended the run with its best epoch among the last ``patience`` epochs, so early stopping
  could not have fired yet. A schedule that takes the learning rate to zero at the cap also flattens the curve
  there; that is the cap speaking, not the model having nothing left to learn, so it is never called converged.
  The message adds whether the last epoch was still the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from utils.plots import plot_learning_curve


@dataclass(frozen=True)
class Convergence:
    verdict: str  # 'converged', 'capped' or 'not trained'
    best_epoch: int
    epochs_run: int
    last_gain: float  # relative validation-loss improvement of the last epoch over the best before it

    @property
    def converged(self) -> bool:
        return self.verdict in ("converged", "not trained")

    @property
    def capped(self) -> bool:
        return self.verdict == "capped"

    def message(self) -> str:
        if self.verdict == "not trained":
            return "convergence: nothing to train (closed form or parameter-free)"
        text = f"convergence: {self.verdict} (best validation epoch {self.best_epoch} of {self.epochs_run}"
        if self.verdict == "converged":
            return text + ", early stopping fired)"
        last_best = self.best_epoch == self.epochs_run
        still = f", the last one still improving by {100 * self.last_gain:.1f}%" if last_best else ""
        return text + f"{still}): the epoch cap ended the run before early stopping could; train longer " \
                      "(--train_epochs) to reach the plateau"

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "converged": self.converged, "capped": self.capped,
                "best_epoch": self.best_epoch, "epochs_run": self.epochs_run, "last_epoch_gain": self.last_gain,
                "message": self.message()}


def convergence(history: list[dict], patience: int) -> Convergence:
    """The verdict for a fit's per-epoch ``history`` (records with 'epoch' and 'val_loss')."""
    val = [(h["epoch"], h["val_loss"]) for h in history if h.get("epoch", 0) > 0 and "val_loss" in h]
    if not val:
        return Convergence("not trained", 0, 0, 0.0)
    best_epoch, best = min(val, key=lambda e: e[1])
    last_epoch = val[-1][0]
    before = min((v for e, v in val[:-1]), default=float("inf"))
    gain = 0.0 if before == float("inf") else max(0.0, (before - val[-1][1]) / before)
    verdict = "converged" if last_epoch - best_epoch >= patience else "capped"
    return Convergence(verdict, best_epoch, last_epoch, gain)


def save_learning_curve(history: list[dict], path: Path, title: str) -> None:
    """The curve as a PNG (nothing to draw for a model that was not trained)."""
    if any(h.get("epoch", 0) > 0 for h in history):
        plot_learning_curve([h for h in history if h.get("epoch", 0) > 0], path, title)
