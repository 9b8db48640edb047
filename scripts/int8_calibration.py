"""Where a student's INT8 error comes from: each op's own error, per-tensor against per-channel weights, and what
the calibrated INT8 graph (the one the distillation reports measure) keeps in float.

    python -m scripts.int8_calibration --checkpoint RUN_DIR [--patients 1001 1007] [--windows 256]

``RUN_DIR`` is a saved Time-LLM run (a distilled student, say). Its data is cut as the run cut it (the run's own
scaler), optionally on fewer patients to save time. Errors are the largest |INT8 - float| forecast in mg/dL: the
ranking and the calibration use validation windows (``INT8_CALIBRATION_WINDOWS``), the reported errors ``--windows``
test windows, as ``bench.export.compare_deployables`` does.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from utils.cli import OneLineArgumentParser, run_cli
from utils.errors import LLMTimeError


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        p = OneLineArgumentParser(prog="python -m scripts.int8_calibration", description=__doc__.splitlines()[0])
        p.add_argument("--checkpoint", required=True, help="a saved run folder (written by run_main or distillation)")
        p.add_argument("--patients", nargs="+", help="score on these patients only (default: the run's)")
        p.add_argument("--windows", type=int, default=256, help="test windows the errors are reported on")
        args = p.parse_args(argv)
        if args.windows < 1:
            raise LLMTimeError(f"--windows must be >= 1, got {args.windows}")
        import torch

        from bench.export import (INT8_CALIBRATION_WINDOWS, OnnxForecaster, calibrated_int8, export_onnx,
                                  forecast_error_mgdl, int8_error, int8_range, op_sensitivity)
        from data_provider.data_factory import build_splits, window_inputs
        from exp.checkpoint import rebuild_model

        cfg, scaler, model, _ = rebuild_model(args.checkpoint)
        data = cfg.data if not args.patients else dataclasses.replace(cfg.data, patients=args.patients,
                                                                     test_patients=None)
        splits = build_splits(data, scaler=scaler)
        x_val, x_test = window_inputs(splits.val, INT8_CALIBRATION_WINDOWS), window_inputs(splits.test, args.windows)
        std = scaler.glucose[1]
        model.eval()
        with torch.no_grad():
            ref_val, ref_test = model(x_val), model(x_test)
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path, int8_path = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
            runner = export_onnx(model, x_val[:8], onnx_path)

            def on(x: torch.Tensor):
                return lambda path: OnnxForecaster(path, runner.model, runner.width)(x)

            def size() -> str:
                return f"{int8_path.stat().st_size / 2**20:.1f} MiB"

            print(f"{args.checkpoint}: {len(x_val)} validation / {len(x_test)} test windows; float ONNX "
                  f"{onnx_path.stat().st_size / 2**20:.1f} MiB, max |ONNX - torch| "
                  f"{forecast_error_mgdl(ref_test, runner(x_test), std)['max_abs_mgdl']:.4f} mg/dL; INT8 weights "
                  f"{int8_range()} range on this CPU")
            for per_channel in (False, True):
                err = int8_error(onnx_path, int8_path, on(x_test), ref_test, std, per_channel=per_channel)
                print(f"every op INT8, {'per-channel' if per_channel else 'per-tensor '} weights: "
                      f"test max |INT8 - float| {err:.2f} mg/dL, {size()}")
            alone = op_sensitivity(onnx_path, int8_path, on(x_val), ref_val, std)
            print("each op alone in INT8 (per-channel), validation max |INT8 - float| mg/dL:")
            for op, err in sorted(alone.items(), key=lambda kv: -kv[1]):
                print(f"  {err:7.2f}  {op}")
            _, keep, ops = calibrated_int8(onnx_path, int8_path, on(x_val), ref_val, std)
            err = forecast_error_mgdl(ref_test, on(x_test)(int8_path), std)["max_abs_mgdl"]
            print(f"calibrated: {len(keep)} of {ops} ops left in float ({', '.join(keep) or 'none'}); test max "
                  f"|INT8 - float| {err:.2f} mg/dL, {size()}")
        return 0

    return run_cli(body, "interrupted: nothing was written (the graphs lived in a temporary folder)")


if __name__ == "__main__":
    raise SystemExit(main())
