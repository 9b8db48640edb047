"""The standard comparison: the grid that ranks the methods on 2 CPU cores, every gradient-trained row at one
budget. ``--plan`` gives an upper bound (every epoch up to the cap, at the rates in each model's registry entry,
``comparison/costs.py``); early stopping ends most runs sooner. On 2 cores it runs as two 1-thread shards
(``--shard 1/2``, ``2/2``, then ``--merge``), one core each: two 1-thread processes train 1.18x as many windows per
second as one 2-thread process (``docs/results/benchmark_cpu.md``).

What runs (``python -m scripts.compare_models --standard``, ``--plan`` prints it with a time estimate):

- all 12 bundled patients, POOLED: one model per row and seed, trained on every patient's training windows and
  tested on every test window of every patient; the per-patient metrics come from that one run;
- seeds 2021, 2022, 2023 for every row;
- rows (report names; the runs use the registered classes with their switches): Persistence, Ridge, DLinear and
  PatchTST on inputs S (glucose) and MS (glucose + basal, bolus, carbs); TimeLLM on S (no events) and on MS (events
  as prompt text and as channels); on MS only: TimeLLM_text (events as text only), TimeLLM_channels (as channels
  only), TimeLLM_random (randomly initialised backbone), TimeLLM_noprompt (no prompt prefix), and the Tan et al.
  ablations TimeLLM_woLLM, TimeLLM_LLM2Attn, TimeLLM_LLM2Trsf;
- one budget for every gradient-trained row (``TRAIN_PER_EPOCH`` windows drawn afresh each epoch from all training
  windows, stratified by patient, for at most ``EPOCHS`` epochs; best epoch and early stopping on ``VAL_WINDOWS``
  fixed validation windows), each model's own optimiser recipe (``exp/recipes.py``: learning rate, batch size,
  warm-up, schedule, patience, all chosen on validation); a run the cap ends while still improving says "capped";
  Ridge in closed form on every training window, the row a practitioner would pick; every test window scored; fp32
  on every machine (``--mixed_precision bf16`` opts in), so the grid's cells stay the same across the CPUs it runs on;
- Time-LLM and its variants as validation chose them (``exp.recipes.GRID_TIMELLM_MODEL``: the default run's MiniLM
  first layer without the dataset description, with the terse event words), the backbone MiniLM unless
  ``--backbones`` names another.

What was cut to fit the budget: pooled training instead of one model per patient (``--full`` trains one per patient:
GPU hours); a window budget per epoch instead of every window (how each family's error moves with more windows is
the scaling study, ``comparison/scaling.py``); the event ablations, the random backbone, the prompt-less model and the
LLM ablations run on MS only.

The committed report in ``docs/results/standard/`` was made before this protocol, with unequal budgets (Time-LLM's
family an evenly spaced 2,000 windows, the same every epoch, 6 layers; DLinear and PatchTST 20,000; cosine schedules
to the cap); ``--train_draw fixed`` with those caps reproduces its runs, and its summary says so.
"""

from __future__ import annotations

from typing import Optional

from comparison.grid import Cell, Variant
from utils.cli import split_list
from utils.errors import LLMTimeError

# One budget for every gradient-trained row, so that a row's place ranks its method, not its share of the data:
# TRAIN_PER_EPOCH windows drawn afresh each epoch from all training windows, for at most EPOCHS epochs (a cap of
# TRAIN_PER_EPOCH x EPOCHS presentations), best epoch and early stopping
# on VAL_WINDOWS fixed validation windows. Rows with nothing to train by gradients fit on, or read, every window.
# 2,000 x 30 is the budget every recipe's schedule was chosen at on validation (scripts/schedule_sweep.sh: early
# stopping, not the cap, ended those runs). --plan bounds the grid at 15.2 h on 2 CPU cores (LLM2Trsf trains at ~18
# windows/s on one AVX2 thread); seed 2021's Time-LLM runs took 20-28 of their 31 planned minutes.
TRAIN_PER_EPOCH, EPOCHS, VAL_WINDOWS = 2_000, 30, 1_000
REFERENCE = "TimeLLM (MS)"  # the row every other row is compared with, patient by patient
PAIRED_PLOTS = {30: "timellm_minus_each_30.png", 60: "timellm_minus_each_60.png"}  # REFERENCE minus each row


def rows(backbone: str) -> list[Variant]:
    """The standard grid's rows in display order: the registry's baselines on S and MS, then Time-LLM on S and MS
    with its event, backbone and prompt variants on MS, then its ablations on MS (roles from ``models.MODELS``)."""
    from models import models_in_role  # deferred: the registry loads torch, which --help does not need

    b = backbone
    return [
        *(Variant(model, features=f) for model in models_in_role("baseline") for f in ("S", "MS")),
        *(v for model in models_in_role("timellm") for v in timellm_rows(model, b)),
        *(Variant(model, b, features="MS") for model in models_in_role("ablation")),
    ]


def timellm_rows(model: str, b: str) -> list[Variant]:
    """A Time-LLM model's rows: S and MS, then on MS events as text only or as channels only, a random backbone and
    no prompt."""
    return [
        Variant(model, b, features="S"),
        Variant(model, b, features="MS"),
        Variant(model, b, features="MS", event_channels=False, name=f"{model}_text"),
        Variant(model, b, features="MS", event_text=False, name=f"{model}_channels"),
        Variant(model, b, features="MS", llm_weights="random", name=f"{model}_random"),
        Variant(model, b, features="MS", use_prompt=False, name=f"{model}_noprompt"),
    ]


def select(grid: list[Variant], models: Optional[str], features: Optional[str], random_backbone: bool,
           no_prompt: bool) -> list[Variant]:
    """The rows kept by ``--models`` (report names, any case), ``--features`` and the two Time-LLM switches."""
    keep = grid
    if models is not None:
        names = {v.model_name.lower(): v.model_name for v in grid}
        wanted = split_list(models, unique=True)
        unknown = [n for n in wanted if n.lower() not in names]
        if not wanted or unknown:
            raise LLMTimeError(f"unknown --models {', '.join(unknown) or '(empty)'} for --standard; choose from: "
                               f"{', '.join(dict.fromkeys(names.values()))}")
        keep = [v for v in keep if v.model_name.lower() in {n.lower() for n in wanted}]
    if features is not None:
        keep = [v for v in keep if v.features == features]
    if not random_backbone:
        keep = [v for v in keep if v.llm_weights != "random"]
    if not no_prompt:
        keep = [v for v in keep if v.use_prompt]
    return keep


def budget(model: str) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """(training windows per epoch, epoch cap, validation windows) of a registered model in this grid: the one
    budget of every gradient-trained row, or (None, None, None) for a model with nothing to train (every window, its
    recipe-free run)."""
    from models import model_spec

    if not model_spec(model).gradient_trained:
        return None, None, None
    return TRAIN_PER_EPOCH, EPOCHS, VAL_WINDOWS


def run_order(cells: list[Cell]) -> list[Cell]:
    """Seed-major (all cells of the first seed, then the next), cheapest first within a seed, so a partial grid
    covers every row early."""
    from comparison.costs import estimate_seconds

    seeds = list(dict.fromkeys(c.seed for c in cells))
    return sorted(cells, key=lambda c: (seeds.index(c.seed), estimate_seconds(c)))
