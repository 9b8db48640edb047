"""What a comparison runs: presets, rows (variants), cells (row x patient group x seed, each with its configuration),
the patients and seeds asked for, and the shards a job array splits the ordered grid into.

A cell's key names its row, patients, seed and the identity of its settings (``configs.identity``), so a finished
cell is found again by key in the tidy tables and a changed result-relevant setting never reuses an old row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from configs import DataConfig, RunConfig
from configs.flags import flag, internal
from utils.cli import seed_list, split_list
from utils.errors import LLMTimeError

GRID_ROLES = ("baseline", "timellm", "ablation")  # the registry roles (models.spec.ROLES) a preset grid runs


@dataclass(frozen=True)
class Preset:
    """Defaults a preset fills in for flags left unset. ``n_patients`` None = every patient found; ``epochs`` None =
    each model's recipe; ``standard``: the ranking grid of ``comparison.standard`` (its rows, recipes and budgets)."""

    n_patients: Optional[int]
    seeds: tuple[int, ...]
    epochs: Optional[int]
    max_train_windows: Optional[int]
    max_val_windows: Optional[int]
    extras: bool  # random-backbone and no-prompt Time-LLM
    standard: bool = False


# quick: minutes-scale on a CPU, real MiniLM weights, every test window; a smoke run, not a result.
# full: 12 patients, one model each, 3 seeds, no caps; hours on a GPU, not meant for a laptop.
# standard: the comparison that ranks the methods (comparison/standard.py says what it runs and what was cut).
# custom (no preset flag): the run_main.py defaults of the time the runner was written.
PRESETS = {
    "quick": Preset(n_patients=2, seeds=(2021,), epochs=2, max_train_windows=1000, max_val_windows=300, extras=True),
    "full": Preset(n_patients=None, seeds=(2021, 2022, 2023), epochs=10, max_train_windows=None,
                   max_val_windows=None, extras=True),
    "standard": Preset(n_patients=None, seeds=(2021, 2022, 2023), epochs=None, max_train_windows=None,
                       max_val_windows=None, extras=True, standard=True),
    "custom": Preset(n_patients=None, seeds=(2021,), epochs=10, max_train_windows=12_000, max_val_windows=3_000,
                     extras=False),
}


WINDOW_CAPS = ("max_train_windows", "max_val_windows")  # the run-configuration flags GridFlags.caps holds when given
# A run-configuration flag the grid takes: declared on the DataConfig, ModelConfig or TrainConfig field of its name.
RUN_FLAG = internal("a run-configuration flag (its declaration is on the config field of the same name); the "
                    "training ones None: the preset's setting, with --standard each model's recipe")


@dataclass(kw_only=True)
class GridFlags:
    """What the comparison's command line asks of a grid, as ``scripts/compare_models.py`` parsed it: the grid's own
    flags, declared here, and the run-configuration flags it takes (declared on their config fields, whose defaults
    the parser gives), so nothing below the entry point reads argparse."""

    models: Optional[str] = field(default=None, metadata=flag(
        "comma-separated model names (default: every registered baseline, Time-LLM and ablation; with --standard: "
        "its row names, e.g. DLinear,TimeLLM_text, to run only those rows)"))
    backbones: str = field(default="MiniLM", metadata=flag("comma-separated backbone rows for the Time-LLM models"))
    patients: Optional[str] = field(default=None, metadata=flag(
        "comma-separated patient ids (default: the preset's / all)"))
    pooled: bool = field(default=False, metadata=flag("one model on all listed patients instead of one each"))
    seeds: Optional[str] = field(default=None, metadata=flag("comma-separated seeds"))
    random_backbone: Optional[bool] = field(default=None, metadata=flag(
        "add Time-LLM on a randomly initialised backbone (default: on in presets)"))
    no_prompt_ablation: Optional[bool] = field(default=None, metadata=flag(
        "add Time-LLM without its prompt prefix (default: on in presets)"))
    features: Optional[str] = field(default=None, metadata=flag(
        "S: glucose only (default); MS: + basal, bolus and carbs (Time-LLM: as prompt text and channels); with "
        "--standard, keep only the rows with these inputs", choices=("S", "MS")))
    epochs: Optional[int] = field(default=None, metadata=flag(
        "default: the preset's; with --standard each recipe's", minimum=1))
    data: str = field(metadata=RUN_FLAG)
    root_path: Optional[str] = field(metadata=RUN_FLAG)
    train_draw: str = field(metadata=RUN_FLAG)
    llm_path: Optional[str] = field(metadata=RUN_FLAG)
    eval_batch_size: int = field(metadata=RUN_FLAG)
    batch_size: Optional[int] = field(metadata=RUN_FLAG)
    learning_rate: Optional[float] = field(metadata=RUN_FLAG)
    patience: Optional[int] = field(metadata=RUN_FLAG)
    mixed_precision: Optional[str] = field(metadata=RUN_FLAG)
    caps: dict[str, Optional[int]] = field(default_factory=dict, metadata=internal(
        "the window caps (WINDOW_CAPS) given on the command line, None meaning no cap; one not given is absent and "
        "the preset's or the model family's applies"))


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: a registered model, its backbone (LLM models only) and Time-LLM switches.

    The standard grid's rows also carry their inputs (``features``) and a report name (``name``, e.g.
    ``TimeLLM_text`` for Time-LLM reading events as text only); the other presets take ``--features`` for all rows.
    """

    model: str
    backbone: str = ""
    llm_weights: str = "pretrained"
    use_prompt: bool = True
    features: str = ""
    event_text: bool = True
    event_channels: bool = True
    name: str = ""

    @property
    def model_name(self) -> str:
        return self.name or self.model

    @property
    def tags(self) -> str:
        return ", ".join(t for t in ("random LLM" if self.llm_weights == "random" else "",
                                     "" if self.use_prompt else "no prompt",
                                     "" if self.event_channels else "events as text only",
                                     "" if self.event_text else "events as channels only") if t)

    @property
    def label(self) -> str:
        if self.features:
            return f"{self.model_name} ({self.features})"
        extras = ", ".join(t for t in (self.backbone, self.tags) if t)
        return f"{self.model} ({extras})" if extras else self.model


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a row on a patient group with a seed, and the configuration it trains with."""

    variant: Variant
    patients: tuple[str, ...]
    seed: int
    settings: str
    config: RunConfig = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.variant.label}|{'+'.join(self.patients)}|s{self.seed}|{self.settings}"

    @property
    def group(self) -> str:
        return self.patients[0] if len(self.patients) == 1 else f"pooled{len(self.patients)}"

    @property
    def run_name(self) -> str:
        label = re.sub(r"[^A-Za-z0-9]+", "-", self.variant.label).strip("-")
        return f"{label}_{self.group}_s{self.seed}_{self.settings}"


@dataclass
class Grid:
    """A resolved comparison: its preset, shared settings, cells in run order and rows in display order."""

    preset: str
    base: RunConfig
    cells: list[Cell]
    labels: list[str]


def default_models() -> list[str]:
    """The rows of the quick, full and custom grids when --models is not given: every registered baseline, Time-LLM
    and ablation, in that order (a student such as MLP only when named)."""
    from models import models_in_role

    return models_in_role(*GRID_ROLES)


def canonical_models(text: str) -> list[str]:
    from models import MODELS, resolve_model

    names = split_list(text, unique=True)
    if not names:
        raise LLMTimeError("--models is empty: name at least one model")
    by_lower = {k.lower(): k for k in MODELS}
    for name in names:
        resolve_model(name)  # raises the one-line error listing the choices
    return list(dict.fromkeys(by_lower[n.lower()] for n in names))


def variants(models: list[str], backbones: list[str], random_backbone: bool, no_prompt: bool) -> list[Variant]:
    """Grid rows in display order; the Time-LLM switches follow plain Time-LLM for each backbone."""
    from models import model_spec

    rows: list[Variant] = []
    for model in models:
        spec = model_spec(model)
        if not spec.uses_llm:
            rows.append(Variant(model))
            continue
        for backbone in backbones:
            rows.append(Variant(model, backbone))
            if spec.role == "timellm" and random_backbone:
                rows.append(Variant(model, backbone, llm_weights="random"))
            if spec.role == "timellm" and no_prompt:
                rows.append(Variant(model, backbone, use_prompt=False))
    return rows


def available_patients(data: DataConfig) -> list[str]:
    from data_provider.data_factory import data_root
    from data_provider.ohio import discover

    found = discover(data_root(data))
    return sorted(found, key=lambda p: (int(p), p) if p.isdigit() else (1 << 30, p))


def choose_patients(text: Optional[str], preset: Preset, data: DataConfig) -> list[str]:
    found = available_patients(data)
    if text is None or text.strip().lower() == "all":
        return found if text is not None or preset.n_patients is None else found[: preset.n_patients]
    wanted = split_list(text, unique=True)
    unknown = [p for p in wanted if p not in found]
    if unknown:
        raise LLMTimeError(f"unknown patient id(s) {', '.join(unknown)}; available: {', '.join(found)}")
    return wanted


def parse_seeds(text: Optional[str], preset: Preset) -> list[int]:
    return list(preset.seeds) if text is None else seed_list(text)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (1-based I) as (I, N)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise LLMTimeError(f"--shard must be I/N with 1 <= I <= N (e.g. 2/4), got {text!r}")
    return int(match[1]), int(match[2])


def in_shard(items: list, index: int, count: int) -> list:
    """The items (cells, or their positions) of shard ``index`` of ``count`` (1-based): those whose position in the
    ordered grid is congruent to index-1 mod count, so every shard gets cheap and expensive cells alike and the
    shards cover the grid once."""
    return items[index - 1::count]
