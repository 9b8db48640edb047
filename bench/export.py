"""Deployable forecasters: a trained model as an ONNX graph (onnxruntime), and that graph quantised to INT8.

Both are checked against the float model they came from (forecast error in mg/dL), timed at batch 1 and sized on
disk, so a student is only called deployable with numbers that say what the conversion cost.

ONNX: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) is used because it works offline
with what is installed (the dynamo exporter needs onnxscript). Time-LLM's prompt is assembled outside the graph: its
statistics need sorting and FFTs and its token ids come from Python lookup tables, none of which belong in an
inference graph. Decoder backbones (teachers, never students) are refused: transformers builds their causal mask
with ``torch.vmap``, which the TorchScript exporter cannot trace. The graph therefore takes
``(x, prompt_ids, prompt_lengths)`` with the ids right-padded with zeros to a fixed width (``OnnxForecaster``
builds them with the model's own ``PromptBuilder``), and the batch axis is dynamic. Everything that is fixed after
training (the text prototypes and their reprogramming keys/values) is folded into the graph as constants, so the
30M-parameter vocabulary mapping is not part of it.

INT8: ONNX Runtime's dynamic quantiser (``onnxruntime.quantization.quantize_dynamic``) on the exported graph:
weights of matrix products and embedding tables stored as int8 (one scale per output channel), activations quantised
per batch at run time. It replaces torch's ``torch.ao.quantization.quantize_dynamic``, which is deprecated, and
yields a file that is deployed as it is, with the runner above. Quantising every such op moved the standard report's
distilled 1-layer MiniLM student's forecasts by up to 21.6 mg/dL with one scale per tensor and 10.1 with one per
channel, most of it from the feed-forward layers, whose activations have outliers that one int8 scale per batch
cannot hold (``python -m scripts.int8_calibration`` prints each op's own error). So the INT8 graph is calibrated: on
windows the caller names (validation windows, never the test windows its error is reported on), each op is quantised
alone to measure its own error, and the most sensitive ones stay in float, worst first, until the whole graph's
largest forecast change is within ``INT8_TOLERANCE_MGDL``; the result says how many stayed float. The
reprogramming's keys and values, constants in the graph, feed ``Einsum`` ops, which the dynamic quantiser does not
take: they stay in float.

Weight range per CPU: ONNX Runtime's dynamic INT8 products multiply uint8 activations by int8 weights. On x86 CPUs
without VNNI (AVX2 only) its kernels add pairs of those products in 16-bit lanes, which saturate with full-range
weights: on a 2-core AMD EPYC with AVX2 only, a tiny student's forecasts moved by 25% of their size and the
standard benchmark's MiniLM-L1 by 10.4 mg/dL. Reduced range (7-bit weights) cannot saturate there, so
``int8_range`` picks it on those CPUs and full range (one more bit of weight precision) where the CPU has VNNI or
AMX; the chosen range is part of every INT8 report.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from bench.latency import batch1_latency_ms
from bench.throughput import batch_throughput
from data_provider.events import longest_event_text
from exp.accelerator import cpu_flags
from models.backbones import FAMILIES
from models.prompt import EVENT_SEPARATOR
from models.time_llm import TimeLLM
from utils.errors import LLMTimeError
from utils.io import atomic_path

OPSET = 17
# Highest integer a prompt slot is sized for when fixing the graph's prompt width; CGM sensors read 40-400 mg/dL.
PROMPT_VALUE_CEILING = 999


def uses_prompt(model: nn.Module) -> bool:
    return model.prompt is not None


def prompt_width(model: TimeLLM) -> int:
    """Prompt width the exported graph is built for: the constant parts plus each slot's longest spelling (mg/dL
    statistics up to PROMPT_VALUE_CEILING, lags up to seq_len // 2, the trend words). Every padded column costs a
    token per window, so the width is no larger than what a window can need."""
    builder = model.prompt

    def longest(values: Tensor) -> int:
        return int(builder.numbers.lookup(values)[1].max())

    width = 0
    for part in builder.parts:
        if isinstance(part, tuple):
            width += int(part[1][0])
        elif part.name == "trend":
            width += int(builder.trend[1].max())
        elif part.name.startswith("lag"):
            width += longest(torch.arange(1, model.seq_len // 2 + 1))
        elif part.name == "events":
            width += len(builder.tokens.mid_text([EVENT_SEPARATOR + longest_event_text(builder.event_words)])[0])
        else:
            width += longest(torch.arange(0, PROMPT_VALUE_CEILING + 1))
    return width


def padded_prompt(model: TimeLLM, x: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """The model's prompt ids for x, right-padded with zeros to ``width`` columns, and their lengths."""
    ids, lengths = model.prompt(x)
    if ids.shape[1] > width:
        raise LLMTimeError(
            f"a prompt needs {ids.shape[1]} tokens but the exported graph takes {width}: the inputs are far "
            "outside the glucose range the graph was sized for; check the input units and scaler"
        )
    return torch.nn.functional.pad(ids, (0, width - ids.shape[1])), lengths


class _PromptGraph(nn.Module):
    """What gets traced for a prompted Time-LLM: the forward with the prompt given as inputs."""

    def __init__(self, model: TimeLLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, ids: Tensor, lengths: Tensor) -> Tensor:
        return self.model(x, prompt=(ids, lengths))


def export_onnx(model: nn.Module, example: Tensor, path: str | Path) -> "OnnxForecaster":
    """Write ``model`` (eval mode, float) as an ONNX graph with a dynamic batch axis; return a runner for it.

    ``example`` is a [B, seq_len, C] batch of real scaled windows used for tracing.
    """
    model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if model.backbone_row is not None and FAMILIES[model.backbone_row.family].causal:  # a based Time-LLM too
        raise LLMTimeError(
            f"ONNX export covers encoder backbones (every student row) and the baselines; {model.backbone_row.name} "
            "builds its causal mask with torch.vmap, which the TorchScript exporter cannot trace"
        )
    width = None
    if uses_prompt(model):
        width = prompt_width(model)
        ids, lengths = padded_prompt(model, example, width)
        # eval() on the wrapper too: the exporter puts every module back into the wrapper's mode afterwards.
        graph, args = _PromptGraph(model).eval(), (example, ids, lengths)
        names = ["x", "prompt_ids", "prompt_lengths"]
    else:
        graph, args, names = model, (example,), ["x"]
    axes = {name: {0: "batch"} for name in names} | {"forecast": {0: "batch"}}
    fastpath = torch.backends.mha.get_fastpath_enabled()
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python-side shape arithmetic it records as constants (the fixed prompt width and
        # patch count): intended here, the batch axis is the only dynamic one.
        warnings.simplefilter("ignore")
        # nn.TransformerEncoderLayer's fused inference kernel (PatchTST) has no ONNX form; trace the plain ops.
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            # One untraced forward first: Time-LLM's prototypes and their keys/values are cached outside training
            # on it, so the trace takes them as constants instead of recording the vocabulary mapping.
            graph(*args)
            torch.onnx.export(graph, args, str(tmp), input_names=names, output_names=["forecast"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
    return OnnxForecaster(path, model if width is not None else None, width)


class OnnxForecaster:
    """Runs an exported graph with onnxruntime on the CPU: scaled [B, seq_len, C] windows -> [B, pred_len].

    For a prompted Time-LLM, ``model`` supplies the prompt (its ``PromptBuilder`` and tokenizer tables); the
    graph itself holds every weight that runs.
    """

    def __init__(self, path: str | Path, model: Optional[TimeLLM] = None, width: Optional[int] = None,
                 threads: Optional[int] = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        # Idle worker threads would otherwise spin for a while after each run, stealing the CPU from whatever runs
        # next in the process (and from other processes on a shared machine).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.model, self.width = model, width

    def __call__(self, x: Tensor) -> Tensor:
        feeds = {"x": x.detach().float().cpu().numpy()}
        if self.model is not None:
            ids, lengths = padded_prompt(self.model, x, self.width)
            feeds |= {"prompt_ids": ids.cpu().numpy(), "prompt_lengths": lengths.cpu().numpy()}
        return torch.from_numpy(np.asarray(self.session.run(["forecast"], feeds)[0]))


INT8_TOLERANCE_MGDL = 1.0  # largest forecast change allowed on the calibration windows: a CGM reports whole mg/dL
INT8_CALIBRATION_WINDOWS = 256  # validation windows the calibration runs on (spread over the set)
# x86 features whose int8 dot products accumulate in 32 bits (no 16-bit saturation): full-range weights are safe
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
INT8_RANGES = ("auto", "full", "reduced")


def int8_range(requested: str = "auto", flags: Optional[frozenset[str]] = None) -> str:
    """The INT8 weight range to quantise with: ``full`` or ``reduced``. ``auto`` takes full range only where the
    CPU has VNNI or AMX (``VNNI_FLAGS``) and reduced range elsewhere, the one that is right on every CPU."""
    if requested not in INT8_RANGES:
        raise LLMTimeError(f"INT8 range must be one of {', '.join(INT8_RANGES)}, got {requested!r}")
    if requested != "auto":
        return requested
    return "full" if (cpu_flags() if flags is None else flags) & VNNI_FLAGS else "reduced"


# The ops quantised (matrix products; embedding lookups, most of a student's file) -> the input holding the weights
WEIGHT_INPUT = {"MatMul": 1, "Gemm": 1, "Gather": 0}


def quantisable_ops(onnx_path: str | Path) -> list[str]:
    """Names of the graph's nodes whose weights the INT8 quantiser stores as int8: the matrix products by a constant
    matrix, and the lookups into constant tables (the word, position and token-type embeddings). Products of two
    activations (attention scores) are left out: the dynamic quantiser keeps them in float anyway."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    constants = {i.name for i in graph.initializer}
    constants |= {out for n in graph.node if n.op_type == "Constant" for out in n.output}
    return [n.name for n in graph.node if n.op_type in WEIGHT_INPUT and n.input[WEIGHT_INPUT[n.op_type]] in constants]


def quantize_onnx_int8(onnx_path: str | Path, int8_path: str | Path, keep_float: Sequence[str] = (),
                       per_channel: bool = True, weight_range: str = "auto") -> Path:
    """Write the dynamic-INT8 copy of the ONNX graph at ``onnx_path`` to ``int8_path`` (run it with OnnxForecaster),
    the nodes named in ``keep_float`` left in float.

    Signed int8 weights (QInt8), by default with one scale per output channel rather than per tensor (compare them:
    ``python -m scripts.int8_calibration``). The quantiser rewrites a ``Gemm`` as a ``MatMul`` named
    ``<name>_MatMul`` before it reads the exclusions, so a Gemm is excluded under both names. ``weight_range``:
    ``int8_range``'s choice (``auto``: by this CPU).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = Path(int8_path)
    exclude = [name for node in keep_float for name in (node, node + "_MatMul")]
    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        with atomic_path(int8_path) as tmp:
            quantize_dynamic(str(onnx_path), str(tmp), op_types_to_quantize=list(WEIGHT_INPUT),
                             weight_type=QuantType.QInt8, per_channel=per_channel, nodes_to_exclude=exclude,
                             reduce_range=int8_range(weight_range) == "reduced")
    finally:
        root.removeFilter(_no_preprocessing_advice)
    return int8_path


Forecast = Callable[[Path], Tensor]  # runs a graph file on the calibration windows -> scaled forecasts


def int8_error(onnx_path: str | Path, int8_path: str | Path, forecast: Forecast, reference: Tensor,
               glucose_std: float, keep_float: Sequence[str] = (), per_channel: bool = True) -> float:
    """Quantise (``quantize_onnx_int8``) and return the largest |INT8 - ``reference``| forecast, in mg/dL."""
    quantize_onnx_int8(onnx_path, int8_path, keep_float, per_channel)
    return forecast_error_mgdl(reference, forecast(Path(int8_path)), glucose_std)["max_abs_mgdl"]


def op_sensitivity(onnx_path: str | Path, int8_path: str | Path, forecast: Forecast, reference: Tensor,
                   glucose_std: float) -> dict[str, float]:
    """Each quantisable op's own error: the largest forecast change (mg/dL) with it alone quantised."""
    ops = quantisable_ops(onnx_path)
    return {op: int8_error(onnx_path, int8_path, forecast, reference, glucose_std, [o for o in ops if o != op])
            for op in ops}


def calibrated_int8(onnx_path: str | Path, int8_path: str | Path, forecast: Forecast, reference: Tensor,
                    glucose_std: float, tolerance_mgdl: float = INT8_TOLERANCE_MGDL) -> tuple[Path, list[str], int]:
    """The INT8 graph whose largest forecast change on the calibration windows is within ``tolerance_mgdl``:
    (its path, the ops left in float, how many ops could be quantised).

    ``forecast(path)`` runs a graph on the calibration windows and ``reference`` is the float model's forecast of
    them. Each op's own error (``op_sensitivity``) ranks the ops; the worst stay float, one more at a time, until
    the whole graph is within the tolerance (at worst every op stays float and the file is the float one re-saved).
    """
    args = (onnx_path, int8_path, forecast, reference, glucose_std)
    keep: list[str] = []
    ops = quantisable_ops(onnx_path)
    if int8_error(*args) > tolerance_mgdl:
        alone = op_sensitivity(*args)
        for op in sorted(ops, key=lambda o: -alone[o]):
            keep.append(op)
            if int8_error(*args, keep) <= tolerance_mgdl:
                break
    return Path(int8_path), keep, len(ops)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """Drop the quantiser's "consider pre-processing" log line: that step (shape inference and graph fusion) is for
    static, calibrated quantisation; the dynamic quantisation here quantises the same weights without it."""
    return "pre-processing before quantization" not in record.getMessage()


def forecast_error_mgdl(reference: Tensor, candidate: Tensor, glucose_std: float) -> dict[str, float]:
    """Max and mean absolute difference of two scaled forecasts, in mg/dL."""
    diff = (candidate.float().cpu() - reference.float().cpu()).abs() * glucose_std
    return {"max_abs_mgdl": float(diff.max()), "mean_abs_mgdl": float(diff.mean())}


def compare_deployables(model: nn.Module, x: Tensor, glucose_std: float, onnx_path: str | Path, calibration: Tensor,
                        latency_calls: int = 100, batch: int = 32) -> dict[str, dict[str, Any]]:
    """Float, ONNX and INT8-ONNX forecasts of windows x: error against the float model (mg/dL), batch-1 latency,
    throughput at ``batch`` and, for the two files, their size (``file_mb``); for the INT8 file also the ops it left
    in float (``float_ops``, names) out of ``ops``, chosen on the ``calibration`` windows (``calibrated_int8``), and
    its weight range (``weight_range``: ``int8_range`` on this CPU).

    The INT8 graph is written beside ``onnx_path`` (``<name>.int8.onnx``). The float model is timed in fp32 eval mode
    here whatever the benchmark's precision, so the three rows compare conversions, not precisions.
    """
    model.eval()
    x, calibration = x.detach().cpu(), calibration.detach().cpu()
    onnx_path = Path(onnx_path)
    int8_path = onnx_path.with_name(onnx_path.stem + ".int8.onnx")
    out: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        reference = model(x)
        # One at a time, float first: a live onnxruntime session must not share the CPU with another variant's
        # timing. The INT8 graph is made from the ONNX file, so it comes after it.
        prompt: dict = {}  # what the INT8 runner needs to build prompts like the ONNX one (no live session kept)
        chosen: dict[str, Any] = {}

        def build_onnx() -> OnnxForecaster:
            runner = export_onnx(model, x[: min(len(x), 8)], onnx_path)
            prompt.update(model=runner.model, width=runner.width)
            return runner

        def build_int8() -> OnnxForecaster:
            _, keep, ops = calibrated_int8(onnx_path, int8_path,
                                           lambda path: OnnxForecaster(path, **prompt)(calibration),
                                           model(calibration), glucose_std)
            chosen.update(float_ops=keep, ops=ops, weight_range=int8_range())
            return OnnxForecaster(int8_path, **prompt)

        builders = {"float": lambda: model, "onnx": build_onnx, "int8": build_int8}
        for name, build in builders.items():
            run = build()
            error = forecast_error_mgdl(reference, run(x), glucose_std)
            timing = batch1_latency_ms(run, x, latency_calls)
            out[name] = error | {"latency_ms_p50": timing["p50"], "latency_ms_p95": timing["p95"],
                                 "windows_per_s": batch_throughput(run, x, batch)}
            del run
    out["onnx"]["file_mb"] = onnx_path.stat().st_size / 2**20
    out["int8"] |= chosen | {"file_mb": int8_path.stat().st_size / 2**20}
    return out
