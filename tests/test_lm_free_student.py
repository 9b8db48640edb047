"""A student without a language model (``--student MLP``, DLinear, PatchTST): distilled on the teacher's forecasts
only, deployed as ONNX and INT8 like the backbone students.

The teacher is a tiny saved GPT-2 (conftest) on a one-patient simulated cohort (1 training day, 6 test hours), one
epoch per phase, on one CPU thread.
"""

from __future__ import annotations

import pandas as pd
import pytest

from builders import pipeline_args
from configs import ModelConfig
from data_provider.data_factory import build_splits
from distillation import compare
from distillation.cli import build_parser, config_from_args
from distillation.config import PipelineConfig, phase_configs, run_names
from distillation.losses import LossWeights, parse_grid
from distillation.phases import seeded_builder
from distillation.pipeline import main
from exp.checkpoint import rebuild_model
from models.mlp import MLP
from models.residual import OnRidge

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_an_mlp_student_distils_end_to_end_and_deploys(cohort, tiny_backbones, tmp_path):
    """Output distillation only (the hidden-state candidate is skipped with one warning line); the row has the
    student's CPU latency and its INT8 (ONNX Runtime) size, batch-1 latency and largest forecast difference."""
    with pytest.warns(UserWarning, match="hidden-state distillation does not apply to MLP") as caught:
        assert main(pipeline_args(cohort, tiny_backbones, tmp_path, "--grid", "0.5,0.5,0;0.5,0.5,0.1;1,0,0",
                                 student="mlp")) == 0
    said = [w for w in caught if "hidden-state" in str(w.message)]
    assert len(said) == 1 and "\n" not in str(said[0].message)
    row = pd.read_csv(tmp_path / "distillation.csv", dtype={"patient": str}).iloc[0]
    assert (row["student"], row["student_layers"], row["student_weights"]) == ("MLP", 0, "none")
    assert row["gamma"] == 0 and row["layer_map"] == "none" and row["weights_chosen_by"] == "validation (2 candidates)"
    assert row["student_latency_b1_ms"] > 0 and row["student_params_total"] < row["teacher_params_total"]
    assert row["int8_size_mb"] > 0 and row["onnx_size_mb"] > 0 and row["int8_ops"] > 0
    assert 0 <= row["int8_max_abs_diff_mgdl"] <= 5
    assert 0 < row["int8_latency_b1_ms"] < 1.0  # median of the timed batch-1 calls: well under a millisecond
    _, _, student, _ = rebuild_model(row["distilled_run"])  # a plain MLP checkpoint, no projections
    assert isinstance(student, MLP)


def test_an_lm_free_student_trains_on_outputs_only_and_names_its_runs(cohort):
    cfg = PipelineConfig(teacher="MiniLM", student="dlinear", grid=parse_grid("0.5,0.5,0;0.5,0.5,0.1"))
    assert cfg.candidates == [LossWeights(0.5, 0.5, 0.0)]
    configs = phase_configs(cfg, "1001", ["1001"])
    assert configs["baseline"].model.model == "DLinear" and configs["teacher"].model.model == "TimeLLM"
    names = run_names(configs, cfg.candidates[0], False)
    assert names["baseline"] == "baseline_DLinear" and names["distilled"].startswith("distilled_DLinear_from_MiniLM")
    based = phase_configs(PipelineConfig(teacher="MiniLM", student="MLP", model=ModelConfig(base="ridge")), "1001",
                          ["1001"])
    assert run_names(based, cfg.candidates[0], False)["baseline"] == "baseline_MLP-on-ridge"
    assert compare.parse_pairs(None, ["MiniLM,MLP"]) == [("MiniLM", None, "MLP", None)]


@pytest.mark.parametrize("flags, message", [
    (["--student", "ridge"], "--student Ridge is not trained by gradients"),
    (["--student", "mlp", "--student-layers", "2"], "MLP has no language model"),
    (["--student", "mlp", "--alpha", "0.5", "--beta", "0.5", "--gamma", "0.1"],
     "hidden-state distillation does not apply to MLP"),
])
def test_lm_free_student_errors_are_one_line(cohort, tmp_path, capsys, flags, message):
    args = ["--teacher", "minilm", "--root-path", str(cohort), "--out", str(tmp_path), "--dry-run", *flags]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_based_student_on_the_pipeline_keeps_its_ridge(cohort, tiny_backbones, tmp_path):
    """--base ridge reaches the student the pipeline builds (and the teacher): the model is an OnRidge."""
    cfg = config_from_args(build_parser().parse_args(pipeline_args(cohort, tiny_backbones, tmp_path, "--base", "ridge",
                                                                 student="mlp")))
    configs = phase_configs(cfg, "1001", ["1001"])
    assert configs["teacher"].model.base == configs["baseline"].model.base == "ridge"
    splits = build_splits(configs["baseline"].data)
    student = seeded_builder(configs["baseline"], splits)()
    assert isinstance(student, OnRidge) and isinstance(student.model, MLP)
