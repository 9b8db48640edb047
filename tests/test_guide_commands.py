"""The distillation guide's commands as written: Python scripts run as files or modules, shell wrappers from any
folder (both need the project installed, ``pip install --no-build-isolation -e .``, as the README's set-up and
``.ci/run`` do), and the dataset names people type.

Each command is a fresh process started from a temporary folder, never the repository root, so an import that only
works because the working directory is the repository fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import run_main
from data_provider.data_factory import dataset_name

REPO = Path(__file__).resolve().parents[1]
PYTHON_SCRIPTS = ("benchmark", "compare_models", "distillation_comparison", "generate_cohort")


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # the venv's Python first on PATH, as after `. .venv/bin/activate`: the shell wrappers call `python`
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "LLMTIME_NO_BARS": "1"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("name", PYTHON_SCRIPTS)
def test_python_scripts_run_as_files_from_another_folder(name, tmp_path):
    proc = _run([sys.executable, str(REPO / "scripts" / f"{name}.py"), "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_distill_pipeline_wrapper_runs_from_another_folder(tmp_path):
    proc = _run(["bash", str(REPO / "scripts" / "distill_pipeline.sh"), "--teacher", "bert", "--student", "tinybert",
                 "--patients", "1001", "--dry-run"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "distillation plan: BERT" in proc.stdout
    # relative output paths land in the folder it was run from
    assert f"results: distillation_runs{os.sep}distillation.csv" in proc.stdout


@pytest.mark.slow
def test_time_llm_wrapper_runs_from_another_folder(tmp_path):
    proc = _run(["bash", str(REPO / "scripts" / "TimeLLM_simulated.sh"), "1001", "MiniLM", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_ohiot1dm_names_the_ohio_dataset(tmp_path):
    assert [dataset_name(n) for n in ("ohiot1dm", "OhioT1DM", "OHIO", " ohio ", "Simulated")] == [
        "ohio", "ohio", "ohio", "ohio", "simulated"]
    cfg = run_main.config_from_args(run_main.build_parser().parse_args(
        ["--data", "OhioT1DM", "--root_path", str(tmp_path)]))
    assert cfg.data.data == "ohio"
