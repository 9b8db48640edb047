"""The distilled student as it would be deployed: exported to ONNX, quantised to INT8 (ONNX Runtime), and measured
against the float student it came from, so a row says what the INT8 file costs in size, speed and forecast error.

The measuring is ``bench.export.compare_deployables`` (the project's one export-and-compare path; it calibrates the
INT8 graph on validation windows, leaving the ops in float that would move a forecast by more than
``INT8_TOLERANCE_MGDL``); this module only picks the windows and keeps the figures a distillation row reports.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from bench.export import INT8_CALIBRATION_WINDOWS, compare_deployables
from data_provider.data_factory import Splits, window_inputs

INT8_WINDOWS = 256  # test windows compared (spread over the test set), as many as the calibration's validation ones
INT8_LATENCY_CALLS = 50
INT8_COLUMNS = ("int8_size_mb", "int8_latency_b1_ms", "int8_max_abs_diff_mgdl", "onnx_size_mb", "int8_float_ops",
                "int8_ops", "int8_weight_range")


def int8_figures(student: nn.Module, splits: Splits, enabled: bool, threads: int) -> dict[str, Optional[float]]:
    """INT8 student's file size (MiB, as ``compare_deployables`` reports), batch-1 latency (median ms, on
    ``threads`` threads like the row's other latencies) and largest |INT8 - float| forecast (mg/dL) on up to
    ``INT8_WINDOWS`` test windows; the float ONNX file's size beside it, and how many of the graph's quantisable
    ops the calibration (on validation windows) left in float, and the weight range this CPU quantised with. Every column None when ``enabled`` is false
    (``--int8 0``)."""
    if not enabled:
        return dict.fromkeys(INT8_COLUMNS)
    x, calibration = window_inputs(splits.test, INT8_WINDOWS), window_inputs(splits.val, INT8_CALIBRATION_WINDOWS)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # onnxruntime's session takes torch's thread count too
    try:
        with tempfile.TemporaryDirectory() as tmp:  # measured, not kept: the checkpoint rebuilds the files
            out = compare_deployables(student, x, splits.scaler.glucose[1], Path(tmp) / "student.onnx", calibration,
                                      latency_calls=INT8_LATENCY_CALLS, batch=len(x))
    finally:
        torch.set_num_threads(previous)
    int8 = out["int8"]
    return {"int8_size_mb": round(int8["file_mb"], 3), "int8_latency_b1_ms": round(int8["latency_ms_p50"], 3),
            "int8_max_abs_diff_mgdl": round(int8["max_abs_mgdl"], 4),
            "onnx_size_mb": round(out["onnx"]["file_mb"], 3), "int8_float_ops": len(int8["float_ops"]),
            "int8_ops": int8["ops"], "int8_weight_range": int8["weight_range"]}
