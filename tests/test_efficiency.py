"""The benchmark's measures on tiny models, and the deployable copies (ONNX, INT8) against the float model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from bench.export import (OnnxForecaster, calibrated_int8, export_onnx, forecast_error_mgdl, int8_range,
                         quantisable_ops, quantize_onnx_int8)
from bench.footprint import parameter_counts
from bench.latency import batch1_latency_ms, latency_ms
from bench.run import run_benchmark
from exp.accelerator import cpu_flags
from bench.settings import BenchSettings
from data_provider.data_factory import build_splits, make_loader, subset
from builders import TINY
from configs import DataConfig, ModelConfig
from models import MODELS, build_model
from models.time_llm import TimeLLM
from scripts import benchmark
from utils.errors import LLMTimeError

DATA = DataConfig(seq_len=24, pred_len=6, patients=["1001"], test_patients=["1001"], max_train_windows=96,
                  max_val_windows=8)
QUICK = BenchSettings(batch=8, warmup=1, steps=2, repeats=2, latency_calls=5)


@pytest.fixture(scope="module")
def splits():
    return build_splits(DATA)


def tiny_student(folders, splits, data=DATA, **model) -> TimeLLM:
    torch.manual_seed(0)
    cfg = ModelConfig(llm_model="BERT", llm_path=str(folders["bert"]), **TINY, **model)
    return TimeLLM(cfg, data, splits.scaler, splits.description)


def windows(splits, n: int = 32) -> torch.Tensor:
    ds = subset(splits.train, n)
    return ds.__getitems__(list(range(len(ds))))["x"]


def test_benchmark_fields_are_sane(tiny_backbones, splits):
    model = tiny_student(tiny_backbones, splits)
    result = run_benchmark(model, windows(splits), make_loader(splits.train, 8, shuffle=True, seed=0), QUICK)
    for key in ("training_windows_per_s", "inference_windows_per_s"):
        assert result[key]["min"] > 0 and len(result[key]["runs"]) == QUICK.repeats
    assert 0 < result["latency_ms_batch1"]["p50"] <= result["latency_ms_batch1"]["p95"]
    assert result["trainable_params"] + result["frozen_params"] == result["total_params"]
    assert result["frozen_params"] == sum(p.numel() for p in model.backbone.parameters())
    assert result["training_gflops_per_window"] > result["inference_gflops_per_window"] > 0
    assert result["checkpoint_mb"] * 2**20 > 4 * result["trainable_params"]  # fp32 weights plus torch.save framing
    assert result["prompt"]["prompt_tokens_min"] > 10
    assert result["inference_peak_mb"] > 0 and result["training_peak_mb"] > 0
    assert json.dumps(result)  # what the CLI writes


def test_training_measurement_restores_the_weights(tiny_backbones, splits):
    model = tiny_student(tiny_backbones, splits)
    before = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    run_benchmark(model, windows(splits), make_loader(splits.train, 8, shuffle=True, seed=0), QUICK)
    for key, value in model.trainable_state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_parameter_counts_of_a_frozen_model():
    model = nn.Linear(3, 2)
    model.weight.requires_grad_(False)
    assert parameter_counts(model) == {"trainable_params": 2, "frozen_params": 6, "total_params": 8}


def test_the_two_latency_summaries_of_one_timing_loop():
    """The benchmark's batch-1 p50/p95 cycles through distinct single windows after 5 untimed calls; the distillation
    rows' figure is the median per window of one fixed batch, on the given threads, which are restored after."""
    seen = []
    x = torch.arange(4.0).view(4, 1, 1)
    timing = batch1_latency_ms(lambda w: seen.append(w), x, calls=7)
    assert len(seen) == 12 and [float(w) for w in seen[:5]] == [0, 1, 2, 3, 0]
    assert all(w.shape == (1, 1, 1) for w in seen) and 0 <= timing["p50"] <= timing["p95"]
    threads = torch.get_num_threads()
    model = nn.Linear(1, 1)
    assert latency_ms(model, x, batch_size=6, repeats=3, threads=1) > 0
    assert torch.get_num_threads() == threads and not model.training


def test_onnx_student_matches_torch_at_any_batch_size(tiny_backbones, splits, tmp_path):
    model = tiny_student(tiny_backbones, splits).eval()
    x = windows(splits, 24)
    runner = export_onnx(model, x[:4], tmp_path / "student.onnx")
    assert not model.training  # the exporter restores the wrapper's mode onto the model
    with torch.no_grad():
        for batch in (1, 5, 24):
            torch.testing.assert_close(runner(x[:batch]), model(x[:batch]), atol=1e-4, rtol=0)


def test_a_terse_event_text_student_exports_with_a_narrower_prompt(tiny_backbones, tmp_path):
    data = replace(DATA, covariates=True)  # meals, insulin and basal as channels and prompt text
    splits = build_splits(data)
    x = windows(splits, 8)
    full = export_onnx(tiny_student(tiny_backbones, splits, data).eval(), x[:4], tmp_path / "full.onnx")
    model = tiny_student(tiny_backbones, splits, data, event_words="terse").eval()
    runner = export_onnx(model, x[:4], tmp_path / "terse.onnx")
    assert runner.width < full.width  # the fixed prompt width leaves room for the longest terse text only
    with torch.no_grad():
        torch.testing.assert_close(runner(x), model(x), atol=1e-4, rtol=0)


def test_onnx_refuses_decoder_backbones(tiny_backbones, splits, tmp_path):
    cfg = ModelConfig(llm_model="GPT2", llm_path=str(tiny_backbones["gpt2"]), **TINY)
    model = TimeLLM(cfg, DATA, splits.scaler, splits.description)
    with pytest.raises(LLMTimeError, match="encoder backbones"):
        export_onnx(model, windows(splits, 4), tmp_path / "gpt2.onnx")


@pytest.mark.parametrize("name", [n for n, spec in MODELS.items() if not spec.uses_llm])
def test_every_baseline_exports_to_onnx(splits, tmp_path, name):
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=name, **TINY), DATA, splits.scaler, splits.description)
    model.fit_closed_form(splits.train)
    model.eval()
    x = windows(splits, 16)
    runner = export_onnx(model, x[:4], tmp_path / f"{name}.onnx")
    with torch.no_grad():
        torch.testing.assert_close(runner(x), model(x), atol=1e-4, rtol=1e-4)


def test_int8_onnx_student_runs_close_to_float(tiny_backbones, splits, tmp_path):
    """ONNX Runtime's quantiser: MatMul and embedding weights stored as int8 in the file, forecasts close to float."""
    import onnx

    model = tiny_student(tiny_backbones, splits).eval()
    x = windows(splits, 16)
    runner = export_onnx(model, x[:4], tmp_path / "student.onnx")
    path = quantize_onnx_int8(tmp_path / "student.onnx", tmp_path / "student.int8.onnx")
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "MatMulInteger" in ops  # torch's deprecated quantize_dynamic gives no ONNX graph at all
    assert float_bytes(path) < 0.5 * float_bytes(tmp_path / "student.onnx")  # the word-embedding table too
    quantized = OnnxForecaster(path, runner.model, runner.width)
    with torch.no_grad():
        ref, out = model(x), quantized(x)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.1 * ref.abs().max()  # scaled units: close, not equal


def test_reduced_range_int8_is_close_to_float_on_any_cpu(tiny_backbones, splits, tmp_path):
    """Reduced-range weights, the range chosen where the CPU has no VNNI, keep the same bound on every CPU (full range
    moved the forecasts by 25% of their size on an AVX2-only EPYC: 0.44 against 1.72)."""
    model = tiny_student(tiny_backbones, splits).eval()
    x = windows(splits, 16)
    runner = export_onnx(model, x[:4], tmp_path / "student.onnx")
    path = quantize_onnx_int8(tmp_path / "student.onnx", tmp_path / "student.int8.onnx", weight_range="reduced")
    with torch.no_grad():
        ref, out = model(x), OnnxForecaster(path, runner.model, runner.width)(x)
    assert (out - ref).abs().max() < 0.1 * ref.abs().max()


def test_int8_range_is_full_only_where_the_cpu_accumulates_without_saturating(tmp_path):
    """VNNI (AVX-512 or AVX) or AMX: full range; AVX2 only, another architecture or no cpuinfo: reduced; a named
    range is taken as it is and an unknown one is a one-line error."""
    avx2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
    assert int8_range("auto", avx2) == "reduced"
    assert int8_range("auto", frozenset()) == "reduced"
    for flag in ("avx512_vnni", "avx_vnni", "amx_int8"):
        assert int8_range("auto", avx2 | {flag}) == "full"
    assert int8_range("full", avx2) == "full" and int8_range("reduced", avx2 | {"avx512_vnni"}) == "reduced"
    with pytest.raises(LLMTimeError, match="INT8 range"):
        int8_range("half")
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni\n\nprocessor\t: 1\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_vnni"}
    assert cpu_flags(tmp_path / "absent") == frozenset()


def float_bytes(graph_path) -> int:
    import onnx
    from onnx import numpy_helper

    inits = onnx.load(str(graph_path)).graph.initializer
    return sum(numpy_helper.to_array(i).nbytes for i in inits if i.data_type == onnx.TensorProto.FLOAT)


def test_int8_ops_kept_in_float_are_not_quantised(tiny_backbones, splits, tmp_path):
    """Every quantisable op named (the head's Gemm included, which the quantiser renames) stays float: the graph is
    then the float one, forecast for forecast; the weights' products and lookups are what is counted."""
    import onnx

    model = tiny_student(tiny_backbones, splits).eval()
    x = windows(splits, 16)
    runner = export_onnx(model, x[:4], tmp_path / "student.onnx")
    ops = quantisable_ops(tmp_path / "student.onnx")
    graph = onnx.load(str(tmp_path / "student.onnx")).graph
    kinds = {n.name: n.op_type for n in graph.node}
    assert {kinds[op] for op in ops} == {"MatMul", "Gemm", "Gather"}
    assert "/model/word_embeddings/Gather" in ops
    assert not any(op.endswith("attention/self/MatMul") for op in ops)  # query x key: two activations
    path = quantize_onnx_int8(tmp_path / "student.onnx", tmp_path / "float.int8.onnx", keep_float=ops)
    assert not {"MatMulInteger", "DynamicQuantizeLinear"} & {n.op_type for n in onnx.load(str(path)).graph.node}
    with torch.no_grad():
        torch.testing.assert_close(OnnxForecaster(path, runner.model, runner.width)(x), model(x), atol=1e-4,
                                   rtol=1e-4)


def test_calibrated_int8_keeps_the_most_sensitive_ops_float(tiny_backbones, splits, tmp_path):
    """Calibration on one set of windows: no tolerance -> everything quantised; a tolerance below the all-INT8
    error -> the ops left float bring the calibration windows within it, and they are the worst ones first."""
    model = tiny_student(tiny_backbones, splits).eval()
    x = windows(splits, 16)
    onnx_path, int8_path = tmp_path / "student.onnx", tmp_path / "student.int8.onnx"
    runner = export_onnx(model, x[:4], onnx_path)
    std = splits.scaler.glucose[1]

    def forecast(path):
        return OnnxForecaster(path, runner.model, runner.width)(x)

    with torch.no_grad():
        ref = model(x)
    _, keep, ops = calibrated_int8(onnx_path, int8_path, forecast, ref, std, tolerance_mgdl=float("inf"))
    assert keep == [] and ops == len(quantisable_ops(onnx_path))
    everything = forecast_error_mgdl(ref, forecast(int8_path), std)["max_abs_mgdl"]
    assert everything > 0
    tolerance = everything / 4
    path, keep, _ = calibrated_int8(onnx_path, int8_path, forecast, ref, std, tolerance_mgdl=tolerance)
    error = forecast_error_mgdl(ref, forecast(path), std)["max_abs_mgdl"]
    assert keep and (error <= tolerance or len(keep) == ops)
    assert error < everything


@pytest.mark.slow
def test_cli_writes_json_and_csv_with_export(tiny_backbones, tmp_path, capsys):
    code = benchmark.main([
        "--llm_model", "BERT", "--llm_path", str(tiny_backbones["bert"]), "--patients", "1001",
        "--seq_len", "24", "--pred_len", "6", *sum(([f"--{k}", str(v)] for k, v in TINY.items()), []),
        "--windows", "48", "--batch", "8", "--steps", "1", "--repeats", "2", "--warmup", "1",
        "--latency_calls", "3", "--export", "--out", str(tmp_path), "--label", "tiny",
    ])
    assert code == 0
    result = json.loads((tmp_path / "tiny.json").read_text())
    assert result["deployables"]["onnx"]["max_abs_mgdl"] < 0.05
    int8 = result["deployables"]["int8"]
    assert int8["latency_ms_p50"] > 0 and int8["max_abs_mgdl"] > 0
    assert int8["file_mb"] > 0 and result["deployables"]["onnx"]["file_mb"] > 0
    assert "tiny" in (tmp_path / "benchmark.csv").read_text() and "int8_file_mb" in (tmp_path / "benchmark.csv").read_text()
    printed = capsys.readouterr().out
    assert "onnx   vs float" in printed and "int8   vs float" in printed and "MB" in printed.split("int8   vs float")[1]
    assert f"{len(int8['float_ops'])} of {int8['ops']} ops left in float" in printed
    assert int8["weight_range"] == int8_range() and f"{int8_range()}-range weights" in printed
    assert benchmark.main(["--summarize", str(tmp_path / "benchmark.csv")]) == 0
    assert "| tiny | 1 |" in capsys.readouterr().out


@pytest.mark.slow
def test_int8_calibration_cli_on_a_saved_run(tiny_backbones, tmp_path, capsys):
    """The calibration report on a trained tiny Time-LLM run: the ops' own errors, worst first, and the calibrated
    graph; a folder without a run is one error line."""
    from configs import RunConfig, TrainConfig
    from exp.run import train_and_test
    from scripts import int8_calibration

    model = ModelConfig(llm_model="BERT", llm_path=str(tiny_backbones["bert"]), **TINY)
    run_dir = train_and_test(RunConfig(checkpoints=str(tmp_path / "runs"), data=DATA, model=model,
                                       train=TrainConfig(train_epochs=1))).run_dir
    capsys.readouterr()
    assert int8_calibration.main(["--checkpoint", str(run_dir), "--windows", "16"]) == 0
    out = capsys.readouterr().out
    assert "per-tensor  weights" in out and "per-channel weights" in out and "calibrated:" in out
    errors = [float(line.split()[0]) for line in out.split("mg/dL:\n")[1].split("calibrated:")[0].splitlines()]
    assert errors == sorted(errors, reverse=True) and len(errors) > 5
    assert int8_calibration.main(["--checkpoint", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("error: no checkpoint at")
    assert int8_calibration.main(["--checkpoint", str(run_dir), "--windows", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --windows must be >= 1, got 0"


def test_cli_user_errors(capsys):
    assert benchmark.main(["--batch", "0"]) == 2
    assert "error: --batch must be >= 1" in capsys.readouterr().err
