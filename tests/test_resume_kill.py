"""An interrupted run resumes to the same result.

``run_main.py`` (tiny backbone, one synthetic patient, 3 epochs, fixed seed) is SIGKILLed during epoch 2, right
after it wrote ``last.pt`` for epoch 1, and rerun with ``--resume``. Its metrics, predictions and best weights must
equal those of an uninterrupted run with the same seed on the CPU; only timing fields may differ.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from builders import cgm_times, sine_glucose, write_patient_xml
from exp.reuse import CHECKPOINT_HASH

REPO = Path(__file__).resolve().parents[1]
TIMING = ("seconds", "_per_s")  # keys holding wall-clock measurements


def _write_patient(folder: Path) -> None:
    rng = np.random.default_rng(3)
    for part, start, days in (("training", "2024-01-01 00:02:41", 4), ("testing", "2024-01-05 00:07:41", 1)):
        n = days * 288
        write_patient_xml(folder, "7", part, cgm_times(start, n), np.round(sine_glucose(n, 140, 45, 15, 6, rng)))


def _command(data: Path, backbone: Path, checkpoints: Path, *extra: str) -> list[str]:
    return [sys.executable, "run_main.py", "--data", "ohio", "--root_path", str(data), "--patients", "7",
            "--llm_model", "BERT", "--llm_path", str(backbone), "--d_ff", "32", "--num_tokens", "16",
            "--train_epochs", "3", "--patience", "3", "--max_train_windows", "320", "--max_val_windows", "32",
            "--seed", "11", "--checkpoints", str(checkpoints), *extra]


def _without_timing(obj):
    if isinstance(obj, dict):
        # the checkpoint's hash differs too: its saved config records --resume (the weights are compared below)
        return {k: _without_timing(v) for k, v in obj.items()
                if not any(t in k for t in TIMING) and k != CHECKPOINT_HASH}
    if isinstance(obj, list):
        return [_without_timing(v) for v in obj]
    return obj


def _run_dir(checkpoints: Path) -> Path:
    (run,) = [p for p in checkpoints.iterdir() if p.is_dir()]
    return run


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, tiny_backbones):
    data = tmp_path / "data"
    data.mkdir()
    _write_patient(data)
    backbone = tiny_backbones["bert"]
    env = {"LLMTIME_NO_BARS": "1", "PATH": "/usr/bin:/bin"}
    quiet = dict(cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    whole = subprocess.Popen(_command(data, backbone, tmp_path / "whole"), **quiet)
    killed = subprocess.Popen(_command(data, backbone, tmp_path / "killed"), **quiet)

    deadline = time.monotonic() + 240
    while not list((tmp_path / "killed").glob("*/last.pt")):
        assert killed.poll() is None, killed.stderr.read()
        assert time.monotonic() < deadline, "no epoch finished in 240 s"
        time.sleep(0.02)
    time.sleep(0.1)  # into epoch 2 (10 training steps: it is still running)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    run = _run_dir(tmp_path / "killed")
    assert killed.returncode == -signal.SIGKILL and not (run / "metrics.json").exists()
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1  # killed before epoch 2 ended

    resumed = subprocess.run(_command(data, backbone, tmp_path / "killed", "--resume"), **quiet, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    a, b = _run_dir(tmp_path / "whole"), run
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["fit"]["epochs_run"] == 3 and len(ma["fit"]["history"]) == 3
    assert _without_timing(ma) == _without_timing(mb)
    assert (a / "predictions.csv").read_bytes() == (b / "predictions.csv").read_bytes()
    sa, sb = (torch.load(d / "checkpoint.pt", weights_only=True)["state"] for d in (a, b))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
