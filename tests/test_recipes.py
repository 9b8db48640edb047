"""Per-model recipes, learning-rate warm-up, and the convergence verdict every run records."""

from __future__ import annotations

import pytest
import torch

import run_main
from configs import TrainConfig
from exp.curves import convergence
from exp.recipes import apply_recipe, recipe_for
from exp.schedules import make_schedule
from models import MODELS, model_spec


def _args(*flags: str):
    return run_main.config_from_args(run_main.build_parser().parse_args(["--max_train_windows", "100", *flags]))


def test_a_run_starts_from_its_model_recipe_and_flags_override_it():
    cfg = _args("--model", "PatchTST")
    recipe = model_spec("PatchTST").recipe
    assert (cfg.train.learning_rate, cfg.train.batch_size, cfg.train.lradj, cfg.train.train_epochs) == (
        recipe.learning_rate, recipe.batch_size, recipe.lradj, recipe.train_epochs)
    assert cfg.train.recipe == "PatchTST (exp/recipes.py)"
    cfg = _args("--model", "PatchTST", "--learning_rate", "0.05", "--batch_size", "7")
    assert (cfg.train.learning_rate, cfg.train.batch_size, cfg.train.patience) == (0.05, 7, recipe.patience)
    assert _args("--model", "Ridge").train.recipe.startswith("none")
    assert recipe_for("timellm") is model_spec("TimeLLM").recipe


def test_every_trained_model_has_a_recipe():
    """A registered model's recipe is in its spec exactly when gradients train it, and runs start from it."""
    for name, spec in MODELS.items():
        assert (recipe_for(name) is not None) == spec.gradient_trained
        train = apply_recipe(TrainConfig(), name, {})
        if spec.recipe is not None:
            assert {k: getattr(train, k) for k in spec.recipe.fields()} == spec.recipe.fields()
        else:
            assert train.recipe == "none (nothing to train)"


def test_warmup_ramps_the_learning_rate_linearly_then_hands_over_to_the_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_schedule(TrainConfig(learning_rate=1.0, lradj="constant", warmup_steps=4, train_epochs=1), opt, 10)
    rates = []
    for _ in range(7):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0])


def _history(*val: float) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": 1.0, "val_loss": v} for i, v in enumerate(val)]


def test_convergence_verdicts():
    """Converged only where early stopping fired; a run the epoch cap ended with its best epoch among the last
    ``patience`` is capped, however flat its curve (a cosine schedule flattens it at the cap)."""
    assert convergence(_history(1.0, 0.5, 0.6, 0.7, 0.8), patience=3).verdict == "converged"
    flat = convergence(_history(1.0, 0.5, 0.499), patience=3)  # last gain < 0.5%: 'levelled' before, now capped
    assert flat.verdict == "capped" and flat.capped and not flat.converged
    assert convergence(_history(1.0, 0.5, 0.6), patience=3).verdict == "capped"  # best 2 of 3, patience 3
    assert convergence(_history(1.0, 0.5, 0.6, 0.7), patience=2).verdict == "converged"
    still = convergence(_history(1.0, 0.8, 0.6), patience=3)
    assert still.verdict == "capped" and "still improving" in still.message() and "train longer" in still.message()
    assert still.to_dict()["capped"] and not still.to_dict()["converged"]
    done = convergence([{"epoch": 0, "val_loss": 0.3}], patience=3)
    assert done.verdict == "not trained" and done.converged and not done.capped


def test_bf16_is_a_default_only_where_it_measured_faster():
    from exp.accelerator import cpu_bf16_pays

    assert cpu_bf16_pays("vendor_id : GenuineIntel\nflags : avx512f avx512_bf16 amx_bf16 amx_tile")
    assert cpu_bf16_pays("vendor_id : AuthenticAMD\nflags : avx512f avx512_bf16")
    assert not cpu_bf16_pays("vendor_id : GenuineIntel\nflags : avx512f avx512_bf16")  # measured slower there
    assert not cpu_bf16_pays("vendor_id : GenuineIntel\nflags : avx2 fma")


def test_a_run_names_the_cpu_its_times_were_measured_on():
    """Wall times differ 2-3x between this project's CPUs: each results row says which one ran it."""
    from exp.accelerator import cpu_description

    amx = "model name : Intel(R) Xeon(R) Processor\nflags : avx2 avx512f avx512_bf16 amx_bf16\n"
    assert cpu_description(amx, 2) == "CPU: Intel(R) Xeon(R) Processor, AMX, 2 cores"
    zen4 = "model name : AMD EPYC 9B14\nflags : avx2 avx512f avx512_bf16\n"
    assert cpu_description(zen4, 2) == "CPU: AMD EPYC 9B14, AVX512-BF16, 2 cores"
    assert cpu_description("model name : AMD EPYC 7B13\nflags : fma avx2\n", 2) == "CPU: AMD EPYC 7B13, AVX2, 2 cores"
