"""The configuration of every cell, from what the command line asked (``comparison.grid.GridFlags``, which
``scripts/compare_models.py`` builds from its parsed flags): the settings all cells share, then per cell its model,
switches, patients and seed, and on the standard grid its inputs, its model's recipe and its family's window budget.

The quick, full and custom presets train every model with one training setting (the flags, or their defaults
below); the standard grid starts each model from its recipe (``exp.recipes``), and a training flag given explicitly
overrides that field for every model, as on ``run_main.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from comparison import standard
from comparison.grid import (PRESETS, Cell, Grid, GridFlags, Preset, Variant, canonical_models, choose_patients,
                             default_models, parse_seeds, variants)
from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from configs.flags import check_config
from configs.identity import identity
from exp.recipes import GRID_TIMELLM_MODEL, apply_recipe
from utils.cli import split_list
from utils.errors import LLMTimeError

# Flags left unset on the quick, full and custom grids (the standard grid: each model's recipe, S and MS rows).
SHARED_TRAIN = {"batch_size": 32, "learning_rate": 1e-3, "patience": 3, "features": "S", "mixed_precision": "no"}
# Recipe fields (exp.recipes.RECIPE_FLAGS) the comparison's flags can set: field -> GridFlags field.
RECIPE_ARGS = {"batch_size": "batch_size", "learning_rate": "learning_rate", "train_epochs": "epochs",
               "patience": "patience"}


def _cap(flags: GridFlags, name: str, default: Optional[int]) -> Optional[int]:
    """The window cap ``name`` as given (0 on the command line is None: no cap), else ``default`` (the preset's or
    the model family's)."""
    return flags.caps.get(name, default)


def _precision(flags: GridFlags) -> str:
    """--mixed_precision, else fp32 on every machine: a grid runs for days across sessions and CPUs, and a cell's
    settings (and so its key and its numbers) must not change with the CPU it resumes on. fp32 is the precision every
    CPU of this project computes natively; bf16 is one flag away where it pays (``exp.accelerator.native_bf16``)."""
    return flags.mixed_precision if flags.mixed_precision is not None else SHARED_TRAIN["mixed_precision"]


def base_config(flags: GridFlags, preset: Preset, runs_dir: Path) -> RunConfig:
    """Everything shared by the grid's cells; a cell sets model, backbone, switches, patients and seed (and on the
    standard grid its inputs, recipe and window budget). Every value is held to its field's declaration."""
    check_config(flags)
    from data_provider.data_factory import dataset_name  # deferred: it loads torch, which --help does not need

    data_name = dataset_name(flags.data)
    if flags.root_path is None and data_name != "simulated":
        raise LLMTimeError(f"--data {data_name} needs --root_path pointing at its XML files")
    where = dict(model_id="compare", des="compare", checkpoints=str(runs_dir),
                 results_csv=str(runs_dir / "results.csv"))
    precision = _precision(flags)
    if preset.standard:
        base = RunConfig(**where, data=DataConfig(data=data_name, root_path=flags.root_path,
                                                  train_draw=flags.train_draw),
                         model=ModelConfig(llm_path=flags.llm_path, prompt_domain=False),
                         train=TrainConfig(eval_batch_size=flags.eval_batch_size, mixed_precision=precision,
                                           resume=True))
        check_config(base)
        return base
    shared = {k: SHARED_TRAIN[k] if getattr(flags, k) is None else getattr(flags, k)
              for k in ("batch_size", "learning_rate", "patience", "features")}
    data = DataConfig(data=data_name, root_path=flags.root_path, covariates=shared["features"] == "MS",
                      train_draw=flags.train_draw,
                      max_train_windows=_cap(flags, "max_train_windows", preset.max_train_windows),
                      max_val_windows=_cap(flags, "max_val_windows", preset.max_val_windows))
    train = TrainConfig(batch_size=shared["batch_size"], eval_batch_size=flags.eval_batch_size,
                        learning_rate=shared["learning_rate"],
                        train_epochs=preset.epochs if flags.epochs is None else flags.epochs,
                        patience=shared["patience"], mixed_precision=precision, resume=True)
    base = RunConfig(**where, data=data, model=ModelConfig(llm_path=flags.llm_path), train=train)
    check_config(base)
    return base


def cell_config(base: RunConfig, v: Variant, patients: tuple[str, ...], seed: int,
                recipes: Optional[dict] = None) -> RunConfig:
    """``base`` for one cell. ``recipes``: the training fields set explicitly, over each model's recipe (standard
    grid); None keeps ``base``'s training settings for every model. A row's own inputs override ``base``'s."""
    data = dataclasses.replace(base.data, patients=list(patients))
    if v.features:
        data = dataclasses.replace(data, covariates=v.features == "MS")
    train = dataclasses.replace(base.train, seed=seed)
    if recipes is not None:
        train = apply_recipe(train, v.model, recipes)
    return dataclasses.replace(
        base, data=data, train=train,
        model=dataclasses.replace(base.model, model=v.model, llm_model=v.backbone or base.model.llm_model,
                                  llm_weights=v.llm_weights, use_prompt=v.use_prompt, event_text=v.event_text,
                                  event_channels=v.event_channels),
    )


def standard_cell(base: RunConfig, v: Variant, patients: tuple[str, ...], seed: int,
                  flags: GridFlags) -> Cell:
    """A standard-grid cell: the model's recipe (flags given override it), the grid's one budget of windows per epoch
    and epochs for every gradient-trained row (the window and epoch flags, when given, override those), Time-LLM's
    family as the default run builds it; its key holds the identity of its configuration (``configs.identity``),
    which is held to the fields' declarations (a training flag given reaches the cells only, not the base)."""
    given = {name: getattr(flags, attr) for name, attr in RECIPE_ARGS.items() if getattr(flags, attr) is not None}
    train_cap, epochs, val_cap = standard.budget(v.model)
    if epochs is not None:  # the grid's one epoch cap, unless --epochs overrides it
        given.setdefault("train_epochs", epochs)
    cfg = cell_config(base, v, patients, seed, recipes=given)
    from models import model_spec  # deferred: the registry loads torch, which --help does not need

    if model_spec(v.model).timellm_family:  # Time-LLM as validation chose it (exp/recipes.py)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **GRID_TIMELLM_MODEL))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, max_train_windows=_cap(flags, "max_train_windows", train_cap),
        max_val_windows=_cap(flags, "max_val_windows", val_cap)))
    check_config(cfg)
    return Cell(v, patients, seed, identity(cfg), cfg)


def backbone_names(flags: GridFlags) -> list[str]:
    from models.backbones import resolve_backbone

    names = list(dict.fromkeys(resolve_backbone(b).name for b in split_list(flags.backbones, unique=True)))
    if not names:
        raise LLMTimeError("--backbones is empty: name at least one backbone row (e.g. MiniLM)")
    if flags.llm_path and len(names) > 1:
        raise LLMTimeError("--llm_path holds one backbone's weights: pass a single --backbones name with it")
    return names


def build_grid(flags: GridFlags, preset_name: str, runs_dir: Path) -> Grid:
    """Every cell of the requested grid with its configuration, in run order, and the rows in display order."""
    preset = PRESETS[preset_name]
    extras = {"random_backbone": preset.extras if flags.random_backbone is None else flags.random_backbone,
              "no_prompt": preset.extras if flags.no_prompt_ablation is None else flags.no_prompt_ablation}
    if preset.standard:
        backbones = backbone_names(flags)
        if len(backbones) > 1:
            raise LLMTimeError("--standard compares one backbone: pass a single --backbones name")
        rows = standard.select(standard.rows(backbones[0]), flags.models, flags.features, **extras)
        if not rows:
            raise LLMTimeError("--models and --features leave no row of the standard grid")
    else:
        models = ",".join(default_models()) if flags.models is None else flags.models
        rows = variants(canonical_models(models), backbone_names(flags), **extras)
    base = base_config(flags, preset, runs_dir)
    patients = choose_patients(flags.patients, preset, base.data)
    seeds = parse_seeds(flags.seeds, preset)
    labels = [v.label for v in rows]
    if preset.standard:
        group = tuple(patients)
        cells = standard.run_order([standard_cell(base, v, group, s, flags) for s in seeds for v in rows])
        return Grid(preset_name, base, cells, labels)
    groups = [tuple(patients)] if flags.pooled else [(p,) for p in patients]
    settings = identity(base)  # configs.identity: a changed result-relevant setting never reuses a cell
    cells = [Cell(v, g, s, settings, cell_config(base, v, g, s)) for g in groups for s in seeds for v in rows]
    return Grid(preset_name, base, cells, labels)
