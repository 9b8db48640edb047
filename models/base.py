"""The forecaster contract: what the engine, distillation and the scripts may call on any model.

Every model in ``models.MODELS`` subclasses ``Forecaster``, and so does anything that stands in for one (the
distillation student with its projections, the benchmark's ``Straightforward`` Time-LLM). The one required method
is ``forward``. The hidden states distillation matches are the other output a model may have: ``forward_hidden``
gives them where ``has_hidden_states`` says there are any. The optional hooks below carry defaults that describe a
model without the feature (no language model, no prompt, nothing fit in closed form, every weight checkpointed), so
callers use plain attributes and calls instead of probing with ``hasattr``, and a model that overrides a hook does
so against a declared name and meaning.

Models built from the registry also take ``(model_cfg, data_cfg, scaler, description)``; that is the registry's
convention (``models/__init__.py``), not part of this class, so wrappers keep their own constructors.
"""

from __future__ import annotations

from typing import Callable, ClassVar, Optional

from torch import Tensor, nn

from data_provider.data_factory import WindowDataset
from models.backbones import BackboneRow
from utils.errors import LLMTimeError

PromptIds = Callable[[Tensor], tuple[Tensor, Tensor]]  # [B, seq_len, C] windows -> (token ids, lengths)


class Forecaster(nn.Module):
    """[B, seq_len, C] scaled inputs (channel 0 = glucose) -> [B, pred_len] scaled glucose forecasts."""

    # Class-level: models.model_uses_llm reads it from the class, before any model is built, to name runs and
    # report the backbone and weights source.
    uses_llm: ClassVar[bool] = False
    # Class-level: whether gradient training has anything to update (False: fitted in closed form or parameter-free),
    # read before building to refuse what could not learn (a ridge base under Ridge, a Persistence student).
    gradient_trained: ClassVar[bool] = True
    # Where the language model's weights came from ('pretrained:<path>', 'random'); results rows, config.json
    # and checkpoints record it.
    weights_source: str = "none"
    # The backbone table row the model runs (None: no language model); the results row reports its depth.
    backbone_row: Optional[BackboneRow] = None
    # Language-model layers that really run when that differs from the configured depth (the ablations: 0);
    # None means as configured. The model comparison reports it in place of --llm_layers.
    backbone_layers_used: Optional[int] = None
    # The prompt builder, x -> (token ids, lengths), or None when the model reads no prompt; the benchmark counts
    # prompt tokens and ONNX export feeds the ids as graph inputs.
    prompt: Optional[PromptIds] = None
    # Patch tokens per window (0: the model does not patch); the benchmark adds them to the prompt length.
    n_patches: int = 0
    # Whether the forward reuses a decoder's cached constant prompt prefix; the benchmark reports it.
    cache_prompt_prefix: bool = False
    # Whether ``forward_hidden`` gives hidden states (a language model's, or the layers that stand in for it), which
    # distillation's hidden-state term needs from teacher and student alike. A model that sets it takes
    # ``forward(x, return_hidden=True)`` as the call that returns them.
    has_hidden_states: ClassVar[bool] = False

    def forward(self, x: Tensor) -> Tensor:
        """[B, seq_len, C] -> [B, pred_len]; the trainer, evaluation and forecasting call only this."""
        raise NotImplementedError

    def forward_hidden(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The forecast and the patch positions' hidden states: [B, pred_len] and a list of [B, n_patches, width]
        tensors, the embedding output first, then one per layer.

        It is ``forward(x, return_hidden=True)`` called through the module, so the forward hooks and a forward that
        accelerate patched in (autocast) apply as they do to the forecast alone, and wrappers that pass keyword
        arguments on (``models.residual.OnRidge``) need nothing of their own.
        """
        if not self.has_hidden_states:
            raise LLMTimeError(f"{type(self).__name__} has no hidden states to match: distil it with --gamma 0")
        return self(x, return_hidden=True)

    def fit_closed_form(self, train: WindowDataset) -> None:
        """Called by the run, tuning and benchmark code before gradient training with the training windows: a
        model with a closed-form fit (Ridge) fits here; the default has nothing to fit."""

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """What a checkpoint keeps (exp/trainer.trainable_state): by default every weight; a model with a frozen
        backbone leaves it out, since it is reloaded from its source."""
        return self.state_dict()

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Put back what ``trainable_state_dict`` gave (best epoch, resume, saved runs): by default a strict load."""
        self.load_state_dict(state)
