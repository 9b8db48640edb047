"""Prompt-as-prefix: per-window text that tells the frozen language model what it is looking at.

Time-LLM prefixes the reprogrammed patches with a prompt holding the dataset description, the task and statistics
of the window itself. The statistics are quoted in mg/dL (the scaled inputs are mapped back with the training
scaler), at integer precision:

    "<description> Forecast next 60 minutes from past 360 minutes; mg/dL min 85 max 190 median 121 rising
    lags 12 1 24 2 11"

The wording is terse on purpose. Every prompt token is paid for in every window's pass through the backbone, and
the prompt is most of the sequence (12 patch tokens against ~60 prompt tokens), so the cost of a forecast grows
almost linearly with prompt length. Each word that carries a fact stays (horizon, history, unit, each statistic's
name and value); what goes is what carries none: articles, separators between numbers (a comma is a WordPiece
token of its own), the unit repeated per number, and "Task:"/"Input statistics" framing. With MiniLM's WordPiece
this template costs 26 tokens against 47 for the published sentence-style one, the same numbers included.

- median: the lower median for even lengths (torch semantics);
- trend: rising when the last reading is above the first (the sum of first differences), else falling;
- lags (in 5-minute steps): the k lags with the largest circular autocorrelation of the demeaned window, computed by
  FFT. The circular autocorrelation is symmetric (lag l equals lag L - l) and lag 0 is trivially the largest, so only
  lags 1..L//2 compete; ties keep the smaller lag first.

Building it must not cost a tokenizer call per window: the template's literal pieces are tokenised once at
construction, integers come from a lookup table that grows only when a new range of values shows up, and the
pieces are joined for the whole batch with tensor ops. Each piece is tokenised behind a fixed left context and the
context's tokens dropped, so pieces that start with a space come out as they would inside the full text (checked
against whole-string tokenisation in the tests for WordPiece; byte-level BPE splits at the same spaces).

With ``events=True`` (inputs with basal, bolus and carbs channels, ``--features MS``) the statistics are followed by
the window's meals, boluses, basal rate, insulin on board and carbs on board in words (``data_provider/events.py``,
``docs/events.md``), e.g. ``...; lags 12 1 24; meal 40 g 20 min ago; basal 0.8 U/h; insulin on board 0.0 U; carbs on
board 36 g``, and ``basal not logged`` where the inputs' basal-logged channel says no rate is on record (a
suspended pump reads ``basal 0.0 U/h``); ``event_words="terse"`` says the same facts in about half the tokens
(``meal 40 20 min; basal 0.8; insulin 0.0; carbs 36``). That text has too many shapes for lookup tables, so it is
tokenised with one batched tokenizer call per batch (mid-text, like the other pieces); it comes after every constant
piece, so the cached prefix is unchanged.

With the privileged view's horizon channels among the inputs (``--horizon_events``, a distillation teacher's only),
the prompt ends with the meals and boluses logged within the forecast horizon, e.g. ``...; ahead: meal 50 g in 20
min; bolus 5.0 U in 15 min`` (``data_provider.events.horizon_texts``), tokenised like the event text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from data_provider.channels import AHEAD, BASAL_LOGGED
from data_provider.events import EVENT_WORDS, event_texts, horizon_texts, summarize_events
from utils.cgm import COVARIATES
from utils.errors import LLMTimeError

MINUTES_PER_STEP = 5
_CONTEXT = "a"  # left context for tokenising a piece as it appears mid-text
EVENT_SEPARATOR = "; "  # between the statistics and the event text, as between the task and the statistics
MAX_TABLE_SPAN = 100_000  # integers the number table may cover (CGM readings span about 40..400 mg/dL)


@dataclass(frozen=True)
class Slot:
    """A per-window value in the template: 'min', 'max', 'median', 'trend', 'lag<i>', 'events' or 'horizon'."""

    name: str


Piece = Union[str, Slot]


@dataclass
class WindowStats:
    """Per-window prompt statistics for a batch (all [B] except lags [B, top_k]); mg/dL ints, lags in steps.

    ``events`` holds each window's event text when the prompt states events, else None; ``horizon`` the text of the
    events logged within its forecast horizon when the inputs carry them (the privileged view), else None.
    """

    minimum: Tensor
    maximum: Tensor
    median: Tensor
    upward: Tensor
    lags: Tensor
    events: Optional[list[str]] = None
    horizon: Optional[list[str]] = None


def template(description: Optional[str], seq_len: int, pred_len: int, top_k: int, events: bool = False,
             horizon: bool = False) -> list[Piece]:
    """The prompt as literal pieces and slots; slots are always preceded by a space (the events and horizon slots by
    "; "), literals never end with one."""
    head = (
        f"Forecast next {pred_len * MINUTES_PER_STEP} minutes from past {seq_len * MINUTES_PER_STEP} minutes; "
        "mg/dL min"
    )
    if description:
        head = " ".join(description.split()) + " " + head
    pieces: list[Piece] = [head, Slot("min"), " max", Slot("max"), " median", Slot("median"), Slot("trend")]
    if top_k:  # --top_k 0 states no lags
        pieces += [" lags", *(Slot(f"lag{i}") for i in range(top_k))]
    return pieces + ([Slot("events")] if events else []) + ([Slot("horizon")] if horizon else [])


def window_stats(x_mgdl: Tensor, top_k: int) -> WindowStats:
    """Statistics of [B, L] glucose windows in mg/dL, vectorised over the batch (0 <= top_k <= L // 2)."""
    length = x_mgdl.shape[1]
    z = x_mgdl.double()
    z = z - z.mean(dim=1, keepdim=True)
    spectrum = torch.fft.rfft(z, n=length, dim=1)
    autocorr = torch.fft.irfft(spectrum * spectrum.conj(), n=length, dim=1)[:, 1 : length // 2 + 1]
    order = torch.sort(autocorr, dim=1, descending=True, stable=True).indices[:, :top_k]
    return WindowStats(
        minimum=x_mgdl.min(dim=1).values.round().long(),
        maximum=x_mgdl.max(dim=1).values.round().long(),
        median=x_mgdl.median(dim=1).values.round().long(),
        upward=x_mgdl[:, -1] > x_mgdl[:, 0],
        lags=order + 1,
    )


def render(pieces: list[Piece], stats: WindowStats, i: int) -> str:
    """Window i's prompt as text: for logs, and the reference the token assembly must reproduce."""
    values = _slot_values(stats)
    return "".join(_text(p, stats, values, i) for p in pieces)


def _text(piece: Piece, stats: WindowStats, values: dict[str, Tensor], i: int) -> str:
    if isinstance(piece, str):
        return piece
    if piece.name in ("events", "horizon"):
        return EVENT_SEPARATOR + getattr(stats, piece.name)[i]
    return _word(piece, int(values[piece.name][i]))


def _slot_values(stats: WindowStats) -> dict[str, Tensor]:
    values = {"min": stats.minimum, "max": stats.maximum, "median": stats.median, "trend": stats.upward.long()}
    values.update({f"lag{j}": stats.lags[:, j] for j in range(stats.lags.shape[1])})
    return values


def _word(slot: Slot, value: int) -> str:
    if slot.name == "trend":
        return " rising" if value else " falling"
    return f" {value}"


class _Tokens:
    """Tokenises pieces as they read mid-text, and packs lists of id lists into padded tensors."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.context_len = len(tokenizer(_CONTEXT, add_special_tokens=False)["input_ids"])

    def mid_text(self, texts: list[str]) -> list[list[int]]:
        encoded = self.tokenizer([_CONTEXT + t for t in texts], add_special_tokens=False)["input_ids"]
        return [ids[self.context_len :] for ids in encoded]

    def at_start(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def specials(self) -> tuple[list[int], list[int]]:
        """Special tokens the tokenizer puts before and after a text (e.g. [CLS] ... [SEP], or <s> ...)."""
        plain = self.tokenizer(_CONTEXT, add_special_tokens=False)["input_ids"]
        full = self.tokenizer(_CONTEXT)["input_ids"]
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                return full[:start], full[start + len(plain) :]
        return [], []


def _pack(id_lists: list[list[int]]) -> tuple[Tensor, Tensor]:
    """[n, max_len] ids (zero padded) and [n] lengths."""
    lengths = torch.tensor([len(ids) for ids in id_lists], dtype=torch.long)
    table = torch.zeros(len(id_lists), max(int(lengths.max()), 1), dtype=torch.long)
    for row, ids in enumerate(id_lists):
        table[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return table, lengths


class _IntTable:
    """Token ids of ' <n>' for a contiguous range of integers, grown on demand (one batched tokenizer call)."""

    def __init__(self, tokens: _Tokens, low: int, high: int) -> None:
        self.tokens = tokens
        self._build(low, high)

    def _build(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.ids, self.lengths = _pack(self.tokens.mid_text([f" {n}" for n in range(low, high + 1)]))

    def lookup(self, values: Tensor) -> tuple[Tensor, Tensor]:
        low, high = int(values.min()), int(values.max())
        if low < self.low or high > self.high:
            low, high = min(low, self.low), max(high, self.high)
            if high - low > MAX_TABLE_SPAN:  # the scaler does not fit the inputs: fail instead of tokenising millions
                raise LLMTimeError(
                    f"prompt statistics span {low}..{high} mg/dL: the inputs are not glucose scaled with this "
                    "model's scaler; check the checkpoint's scaler and the input units"
                )
            self._build(low, high)
        rows = values - self.low
        return self.ids[rows], self.lengths[rows]


class PromptBuilder:
    """Scaled [B, L, C] windows -> prompt token ids [B, P_max] (zero padded on the right) and lengths [B].

    ``scaler`` is glucose's (mean, std). With ``events`` the prompt also states each window's meals and insulin:
    ``channels`` names x's channels in order and ``scaler_mean``/``scaler_std`` hold every channel's scaler, so the
    basal, bolus and carbs channels can be read back in U/h, U and g.
    """

    def __init__(self, tokenizer, description: Optional[str], seq_len: int, pred_len: int, top_k: int,
                 scaler: tuple[float, float], events: bool = False, channels: Sequence[str] = ("glucose",),
                 scaler_mean: Optional[Sequence[float]] = None, scaler_std: Optional[Sequence[float]] = None,
                 event_words: str = "full") -> None:
        if not 0 <= top_k <= seq_len // 2:
            raise LLMTimeError(f"--top_k {top_k} must be between 0 (no lags) and seq_len // 2 = {seq_len // 2}")
        if event_words not in EVENT_WORDS:
            raise LLMTimeError(f"--event_words must be one of {', '.join(EVENT_WORDS)}, got {event_words!r}")
        self.mean, self.std = float(scaler[0]), float(scaler[1])
        self.top_k = top_k
        self.events, self.event_words = events, event_words
        if events:
            missing = [name for name in COVARIATES if name not in channels]
            if missing:
                raise LLMTimeError(
                    f"the event prompt needs the {', '.join(missing)} input channels: run with --features MS"
                )
            self.event_index = [list(channels).index(name) for name in COVARIATES]
            # runs made before the basal-logged channel have none: their unlogged basal reads 0 U/h, as it did
            self.logged_index = list(channels).index(BASAL_LOGGED) if BASAL_LOGGED in channels else None
            if self.logged_index is not None:
                self.event_index.append(self.logged_index)
            covered = 0 if scaler_mean is None or scaler_std is None else min(len(scaler_mean), len(scaler_std))
            if covered <= max(self.event_index):
                raise ValueError(f"the event prompt needs scaler_mean and scaler_std for channels {self.event_index}")
            self.event_mean = torch.as_tensor(np.asarray(scaler_mean, dtype=float)[self.event_index])
            self.event_std = torch.as_tensor(np.asarray(scaler_std, dtype=float)[self.event_index])
        # The privileged view's horizon channels (bolus and carbs ahead), read back in U and g for the horizon text.
        self.horizon_index = [list(channels).index(name) for name in AHEAD[1:]] if set(AHEAD) <= set(channels) else None
        self.pred_len = pred_len
        if self.horizon_index is not None:
            self.horizon_mean = torch.as_tensor(np.asarray(scaler_mean, dtype=float)[self.horizon_index])
            self.horizon_std = torch.as_tensor(np.asarray(scaler_std, dtype=float)[self.horizon_index])
        self.tokenizer = tokenizer  # kept for reference renderings (the benchmark's straightforward prompt)
        self.pieces = template(description, seq_len, pred_len, top_k, events, self.horizon_index is not None)
        tokens = self.tokens = _Tokens(tokenizer)
        prefix, suffix = tokens.specials()
        literals = [p for p in self.pieces[1:] if isinstance(p, str)]
        literal_ids = iter(tokens.mid_text(literals))
        first = prefix + tokens.at_start(self.pieces[0])
        # Each part is a fixed [1, w] row (with its length) or a Slot filled per window at call time.
        self.parts: list[Union[tuple[Tensor, Tensor], Slot]] = [_pack([first])]
        for piece in self.pieces[1:]:
            self.parts.append(_pack([next(literal_ids)]) if isinstance(piece, str) else piece)
        if suffix:
            self.parts.append(_pack([suffix]))
        self.numbers = _IntTable(tokens, 0, 400)
        self.trend = _pack(tokens.mid_text([" falling", " rising"]))

    @property
    def constant_length(self) -> int:
        """Tokens every prompt starts with (specials, description, task) before the first per-window value."""
        return int(self.parts[0][1][0])

    def statistics(self, x: Tensor) -> WindowStats:
        """Statistics of channel 0 of scaled [B, L, C] windows, in mg/dL (on the CPU, where the tables live), and
        with ``events`` each window's event text."""
        stats = window_stats(x[..., 0].detach().float().cpu() * self.std + self.mean, self.top_k)
        if self.events:
            if x.shape[-1] <= max(self.event_index):
                raise LLMTimeError(
                    f"the event prompt reads basal, bolus and carbs from input channels {self.event_index}, but the "
                    f"inputs have {x.shape[-1]} channels: run with --features MS"
                )
            logs = x[..., self.event_index].detach().cpu().double() * self.event_std + self.event_mean
            if not bool(torch.isfinite(logs).all()):
                raise LLMTimeError("basal, bolus or carbs inputs contain NaN or inf: fill unlogged events with 0")
            logged = None if self.logged_index is None else logs[..., 3]
            stats.events = event_texts(summarize_events(logs[..., 0], logs[..., 1], logs[..., 2], logged),
                                       self.event_words)
        if self.horizon_index is not None:  # the horizon's logs ride on the window's last pred_len points
            ahead = x[:, -self.pred_len:, self.horizon_index].detach().cpu().double()
            ahead = ahead * self.horizon_std + self.horizon_mean
            stats.horizon = horizon_texts(ahead[..., 0], ahead[..., 1])
        return stats

    def _slot_tokens(self, slot: Slot, stats: WindowStats, values: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        if slot.name in ("events", "horizon"):  # free text: one batched tokenizer call for the whole batch
            return _pack(self.tokens.mid_text([EVENT_SEPARATOR + text for text in getattr(stats, slot.name)]))
        if slot.name == "trend":
            upward = values["trend"]
            return self.trend[0][upward], self.trend[1][upward]
        return self.numbers.lookup(values[slot.name])

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not bool(torch.isfinite(x[..., 0]).all()):
            raise LLMTimeError("glucose inputs contain NaN or inf: fill gaps before forecasting")
        stats = self.statistics(x)
        values = _slot_values(stats)
        batch = x.shape[0]
        ids, valid = [], []
        for part in self.parts:
            if isinstance(part, Slot):
                rows, lengths = self._slot_tokens(part, stats, values)
            else:
                rows, lengths = part[0].expand(batch, -1), part[1].expand(batch)
            ids.append(rows)
            valid.append(torch.arange(rows.shape[1]) < lengths[:, None])
        ids_all, valid_all = torch.cat(ids, dim=1), torch.cat(valid, dim=1)
        lengths = valid_all.sum(dim=1)
        out = torch.zeros(batch, int(lengths.max()), dtype=torch.long)
        # Boolean indexing walks row-major, so each window's valid ids keep their order when packed to the left.
        out[torch.arange(out.shape[1]) < lengths[:, None]] = ids_all[valid_all]
        return out.to(x.device), lengths.to(x.device)
