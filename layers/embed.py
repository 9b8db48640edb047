"""Patching and patch-token embedding for Time-LLM.

A window is cut into overlapping patches (length ``patch_len``, step ``stride``) after replicating its last value
``stride`` times, so the most recent readings, the most informative for a forecast, always form a full patch of
their own. Each patch becomes a ``d_model`` token through a 1-D convolution over neighbouring patches.

With several input channels (glucose plus meal/insulin channels, or the carried-forward marker) every channel is cut
at the same patch boundaries and one patch's channels are embedded together into one token: one reprogrammed token
stream per window, so a token says "glucose did this while 40 g of carbohydrate arrived", rather than a
channel-independent copy of the whole model per covariate as the reference code would run.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from utils.errors import LLMTimeError


def n_patches(seq_len: int, patch_len: int, stride: int) -> int:
    """Patches per window after padding by ``stride``: (seq_len - patch_len) // stride + 2."""
    if patch_len < 1 or stride < 1 or seq_len + stride < patch_len:
        raise LLMTimeError(
            f"patch_len {patch_len} / stride {stride} do not fit seq_len {seq_len}: "
            "use 1 <= patch_len <= seq_len + stride and stride >= 1"
        )
    return (seq_len - patch_len) // stride + 2


def patchify(x: Tensor, patch_len: int, stride: int) -> Tensor:
    """[B, L] series -> [B, n_patches, patch_len] overlapping patches, after repeating the last value ``stride`` times.

    Written as cat + gather rather than replicate padding + unfold, with the same values, because the TorchScript
    ONNX exporter cannot trace unfold once the batch axis is dynamic.
    """
    padded = torch.cat([x, x[:, -1:].expand(-1, stride)], dim=1)  # [B, L + stride]
    count = (x.shape[1] + stride - patch_len) // stride + 1
    index = torch.arange(count, device=x.device)[:, None] * stride + torch.arange(patch_len, device=x.device)
    return padded[:, index]


class PatchEmbedding(nn.Module):
    """[B, L, C] windows -> [B, n_patches, d_model] patch tokens (C = ``channels``)."""

    def __init__(self, d_model: int, patch_len: int, stride: int, dropout: float, channels: int = 1) -> None:
        super().__init__()
        self.patch_len = patch_len
        self.stride = stride
        # Kernel 3 over the patch axis with circular padding, no bias: the published token embedding. The patches
        # (times channels) are the convolution's input channels, so each token also sees its two neighbouring patches.
        self.token = nn.Conv1d(patch_len * channels, d_model, kernel_size=3, padding=1, padding_mode="circular",
                               bias=False)
        nn.init.kaiming_normal_(self.token.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, length, c = x.shape
        series = x.transpose(1, 2).reshape(b * c, length)
        patches = patchify(series, self.patch_len, self.stride)  # [B * C, N, patch_len]
        patches = patches.view(b, c, -1, self.patch_len).transpose(1, 2).reshape(b, -1, c * self.patch_len)
        tokens = self.token(patches.transpose(1, 2)).transpose(1, 2)  # [B, N, d_model]
        return self.dropout(tokens)
