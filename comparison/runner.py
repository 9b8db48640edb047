"""Running a grid's cells through the engine (``exp.run.train_and_test``), writing each cell's rows as it finishes.

Every cell not yet in a tidy table of ``--out`` runs; its per-patient rows are written first, all in one atomic write
that replaces any rows of the same cell, and its tidy row last, so the tidy row marks a finished cell. A cell whose
run folder finished but whose tidy row was never written (the process was stopped between the two) is not trained
again: the engine returns the saved run (``reuse=True``), and its per-patient rows replace those written before.
Splits are built once per data setting and shared by every cell that uses it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Optional

from tqdm.auto import tqdm

from comparison.grid import Cell
from comparison.tables import PATIENT_METRICS, PERSISTENCE_METRICS, finished_keys, table_names
from utils.progress import progress


def tidy_row(cell: Cell, row: dict[str, Any], model: Any, command: str) -> dict[str, Any]:
    """The engine's results row of a cell's run (``model``: the model it trained or reused), keyed by the cell, with
    the row's report name as ``model`` and the registered class as ``model_class``."""
    v = cell.variant
    row = dict(row)
    # The ablations run no backbone layer; the engine's row would report the backbone's full depth.
    layers = model.backbone_layers_used
    row["llm_layers"] = row.get("llm_layers") if layers is None else layers
    return {"cell_key": cell.key, "label": v.label, "variant": v.tags,
            "group": "pooled" if len(cell.patients) > 1 else "per-patient", "settings": cell.settings,
            "command": command, **row, "model": v.model_name, "model_class": v.model}


def patient_rows(cell: Cell, row: dict[str, Any], metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per test patient: the run's metrics and persistence on the same windows (where the run has them)."""
    persistence = metrics.get("persistence", {}).get("per_patient", {})
    out = []
    for patient, m in metrics.get("per_patient", {}).items():
        rec = {"cell_key": cell.key, "label": cell.variant.label, "model": cell.variant.model_name,
               "features": row.get("features"), "seed": cell.seed, "run_id": row.get("run_id"), "patient": patient,
               **{k: m.get(k) for k in PATIENT_METRICS}}
        if patient in persistence:
            rec.update({f"persistence_{k}": persistence[patient].get(k) for k in PERSISTENCE_METRICS})
        out.append(rec)
    return out


def resumable(cell: Cell) -> Any:
    """The cell's configuration, continuing its interrupted training if a killed grid left some (``last.pt``);
    a cell never started runs plainly, so a fresh grid prints no "nothing to resume" warning for every cell."""
    unfinished = (Path(cell.config.checkpoints) / cell.run_name / "last.pt").is_file()
    train = cell.config.train
    return cell.config if unfinished == train.resume else replace(cell.config, train=replace(train, resume=unfinished))


def run_grid(cells: list[Cell], out: Path, command: str, shard: Optional[tuple[int, int]] = None,
             after_cell: Callable[[], None] = lambda: None) -> int:
    """Run every cell of ``cells`` not yet finished in ``out``; ``after_cell`` runs after each. Returns the number
    of cells run."""
    from data_provider.data_factory import build_splits
    from exp.run import train_and_test
    from utils.results import append_row, append_rows

    tidy_name, patients_name = table_names(shard)
    done = finished_keys(out)
    todo = [c for c in cells if c.key not in done]
    bar = progress(total=len(cells), initial=len(cells) - len(todo), desc="cells", unit="run")
    splits: dict[str, Any] = {}
    for cell in todo:
        data_key = json.dumps(asdict(cell.config.data), sort_keys=True)
        if data_key not in splits:
            splits[data_key] = build_splits(cell.config.data)
        bar.set_postfix_str(f"{cell.variant.label} {cell.group} s{cell.seed}")
        result = train_and_test(resumable(cell), splits=splits[data_key], name=cell.run_name, reuse=True)
        append_rows(out / patients_name, patient_rows(cell, result.row, result.metrics), replace="cell_key")
        row = tidy_row(cell, result.row, result.model, command)
        append_row(out / tidy_name, row)
        tqdm.write(f"{cell.variant.label} {cell.group} s{cell.seed}: RMSE30 {row['rmse_30']:.2f} "
                   f"RMSE60 {row['rmse_60']:.2f} mg/dL ({row['wall_seconds']:.0f} s)")
        bar.update()
        after_cell()
    bar.close()
    return len(todo)
