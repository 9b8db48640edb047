"""scripts/privileged_ridge.py: Ridge fitted on both views of one configuration's data, its table written."""

from __future__ import annotations

import dataclasses

import pytest

from distillation.references import RIDGE_RUN
from distillation.standard import standard_configs
from scripts import privileged_ridge
from scripts.distillation_comparison import build_parser, shared_config


def test_both_views_are_fitted_tested_and_tabulated_and_a_rerun_reuses_them(cohort, tmp_path, capsys):
    cfg = standard_configs(shared_config(build_parser().parse_args(["--standard"])), out=str(tmp_path))[0]
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root_path=str(cohort), patients=["1001"]))
    out = tmp_path / "privileged.md"
    assert privileged_ridge.measure(out, cfg) == 0
    table = out.read_text()
    assert "| history only (Ridge (MS)) |" in table and "| privileged (+ the horizon's logged events) |" in table
    assert "Persistence on the same test windows:" in table
    runs = {p.name for p in tmp_path.glob("runs/*/*") if (p / "metrics.json").is_file()}
    assert runs == {RIDGE_RUN, f"{RIDGE_RUN}-privileged"}
    history, privileged = (line for line in table.splitlines() if line.startswith("| history") or
                           line.startswith("| privileged"))
    assert history != privileged.replace("privileged (+ the horizon's logged events)", "history only (Ridge (MS))")
    capsys.readouterr()
    assert privileged_ridge.measure(out, cfg) == 0 and out.read_text() == table  # reused: the same table


def test_help_needs_no_data(capsys):
    with pytest.raises(SystemExit) as done:
        privileged_ridge.main(["--help"])
    assert done.value.code == 0 and "horizon" in capsys.readouterr().out
