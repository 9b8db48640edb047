"""The GPU check script: one line and status 0 without a GPU, a failing check reported in its row while the others
run, and the CPU-sized dry run of every check (what CI can run of the GPU path)."""

from __future__ import annotations

import pytest

from scripts import gpu_check


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "gpu.md")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["no CUDA GPU on this machine: nothing checked (--dry-run runs a CPU-sized version)"]
    assert not (tmp_path / "gpu.md").exists()


def test_a_failing_check_is_its_rows_outcome_and_the_budget_skips_the_rest(monkeypatch, tmp_path):
    def boom(ctx, row):
        raise ValueError("no kernel image is available\nfor execution on the device")

    def fine(ctx, row):
        row.outcome = "ok"

    rows = [(gpu_check.Row("first", "GPU", "bf16"), boom), (gpu_check.Row("second", "GPU", "fp16"), fine)]
    monkeypatch.setattr(gpu_check, "checks", lambda ctx: rows)
    done = gpu_check.run_checks(None, tmp_path / "log")
    assert [r.outcome for r in done] == ["failed: ValueError: no kernel image is available", "ok"]
    assert "Traceback" in (tmp_path / "log").read_text()
    skipped = gpu_check.run_checks(None, tmp_path / "log", budget_s=0)
    assert all(r.outcome == "skipped: the 0-minute budget was spent" for r in skipped)


@pytest.mark.slow
def test_the_dry_run_runs_every_check_at_tiny_shapes(tmp_path, capsys):
    out = tmp_path / "gpu.md"
    assert gpu_check.main(["--dry-run", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| check")]
    assert len(rows) == 6  # bf16, fp32 (fp16 needs a GPU), GPT2, LLaMA, resume, ONNX; no DeepSpeed in a dry run
    assert all("| ok: " in row for row in rows), table
    assert "resumed to 3 epochs" in table and "ONNX" in table and "CPU (dry run)" in table
    published = gpu_check.REPO / "docs" / "results" / "gpu.md"
    assert published.read_text().startswith("# GPU check")  # the dry run never writes docs/results
