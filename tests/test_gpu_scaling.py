"""The GPU scaling script (issue 22, section 6): without a GPU one line and status 0, nothing written; a bad
argument one line and status 2. Its cells are the CPU study's, whose tests are in test_scaling.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_scaling.sh"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here: the script would run the cells")
def test_without_a_gpu_it_says_so_in_one_line_and_writes_nothing(tmp_path):
    done = _run("--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "no CUDA GPU on this machine: nothing run (the CPU study: python -m scripts.compare_models --scaling)"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (("--bogus",), "error: unknown argument '--bogus'"),
    (("--budget-s", "ten"), "error: --budget-s takes whole seconds, got 'ten'"),
])
def test_a_bad_argument_is_one_line_and_status_2(args, message):
    done = _run(*args)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1
