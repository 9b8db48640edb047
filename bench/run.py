"""The whole benchmark: every measure for one model, and a benchmark run as a ``BenchTarget`` describes it (which
model, which windows, where it goes; ``scripts/benchmark.py`` builds it from its flags), timed as ``BenchSettings``
say, recorded as ``<out>/<label>.json`` and a row of ``benchmark.csv``.

Order matters in ``run_benchmark``: the training measurement comes last because it updates the weights and
``accelerate.prepare`` wraps the model's forward; everything measured before it sees the model as given.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.footprint import (checkpoint_bytes, inference_flops_per_window, parameter_counts, prompt_tokens,
                             training_flops_per_window)
from bench.latency import model_batch1_latency_ms
from bench.levers import LEVERS, Straightforward, parse_levers
from bench.memory import PeakMemory, process_peak_rss_mb
from bench.report import flat_row
from bench.settings import BenchSettings, BenchTarget, model_device
from bench.throughput import inference_throughput, summary, training_throughput
from data_provider.data_factory import build_splits, make_loader, subset, window_inputs
from exp.run import provenance
from utils.io import write_json
from utils.results import append_row

# ModelConfig fields the benchmark's command line sets beyond the model, its backbone and its prompt
ARCHITECTURE_FIELDS = ("patch_len", "stride", "d_model", "d_ff", "n_heads", "num_tokens", "top_k", "e_layers")


def run_benchmark(model: nn.Module, x: torch.Tensor, loader: Optional[DataLoader], settings: BenchSettings,
                  extra: Optional[Callable[[nn.Module], dict]] = None) -> dict:
    """Every measure for one model on windows x ([N, seq_len, C] scaled, N >= batch) and a training loader.

    ``extra(model)`` runs after the inference measures and before training (e.g. the ONNX/INT8 comparison, which
    needs the untouched float model); its dict is merged in.
    """
    device = model_device(model)
    x = x.to(device)
    result: dict = {"settings": asdict(settings), "device": str(device), "threads": torch.get_num_threads()}
    result.update(parameter_counts(model))
    result["checkpoint_mb"] = checkpoint_bytes(model) / 2**20
    result["prompt"] = prompt_tokens(model, x[: settings.batch])
    result["inference_gflops_per_window"] = inference_flops_per_window(model, x[: settings.batch]) / 1e9
    with PeakMemory(device) as memory:
        infer = inference_throughput(model, x, settings)
    result["inference_windows_per_s"] = summary(infer) | {"runs": infer}
    result["inference_peak_mb"] = memory.peak_mb
    result["latency_ms_batch1"] = model_batch1_latency_ms(model, x, settings)
    if extra is not None:
        result.update(extra(model))
    trainable = any(p.requires_grad for p in model.parameters())
    if settings.train and trainable and loader is not None:
        first = {k: v.to(device) for k, v in next(iter(loader)).items()}
        result["training_gflops_per_window"] = training_flops_per_window(model, first) / 1e9
        with PeakMemory(device) as memory:
            train = training_throughput(model, loader, settings)
        result["training_windows_per_s"] = summary(train) | {"runs": train}
        result["training_peak_mb"] = memory.peak_mb
    else:
        result["training_windows_per_s"] = None
    result["process_peak_rss_mb"] = process_peak_rss_mb()
    return result


def label_for(target: BenchTarget, settings: BenchSettings, model: nn.Module) -> str:
    """The row name derived from the settings that change what is measured (``--label`` overrides it)."""
    m = target.model
    parts = [m.model]
    if model.uses_llm:
        parts.append(model.backbone_row.name + (f"-L{m.llm_layers}" if m.llm_layers else ""))
        parts.append("random" if model.weights_source == "random" else "pretrained")
        if model.prompt is None:
            parts.append("noprompt")
        elif not m.prompt_domain:
            parts.append("nodomain")
        if target.levers_off:
            off = parse_levers(target.levers_off)
            parts.append("off-all" if off == set(LEVERS) else "off-" + "-".join(sorted(off)))
        if target.compile:
            parts.append("compiled")
    parts.append("fp32" if settings.mixed_precision == "no" else settings.mixed_precision)
    parts += [flag for flag in ("deepspeed", "fused_adamw") if getattr(settings, flag)]
    if target.threads:
        parts.append(f"t{target.threads}")
    return "_".join(p.replace("/", "-") for p in parts)


def build(target: BenchTarget):
    """(model, splits, data config) for the target: a fresh model, or a saved run's with its own scaler."""
    patients = target.data.patients
    if target.checkpoint:
        from exp.checkpoint import rebuild_model

        cfg, scaler, model, _ = rebuild_model(target.checkpoint)
        data = replace(cfg.data, patients=patients, test_patients=patients, max_val_windows=1)
        return model, build_splits(data, scaler=scaler), data
    from models import build_model

    data = replace(target.data, test_patients=patients, max_val_windows=1, covariates=target.features == "MS")
    splits = build_splits(data)
    torch.manual_seed(0)
    model = build_model(target.model, data, splits.scaler, splits.description)
    model.fit_closed_form(subset(splits.train, 4096))
    return model, splits, data


def run_target(target: BenchTarget, settings: BenchSettings) -> tuple[str, dict]:
    """Benchmark ``target``, timed as ``settings`` say; write ``<out>/<label>.json`` and append the CSV row.

    Returns (label, result). The machine's load average before and after is recorded, because on a shared machine
    it says how far to trust the numbers.
    """
    if target.threads:
        torch.set_num_threads(target.threads)
    load_before = os.getloadavg()[0]
    model, splits, data = build(target)
    if target.levers_off:
        model = Straightforward(model, parse_levers(target.levers_off), splits.description)
    if target.compile:
        model = torch.compile(model)
    windows = subset(splits.train, target.windows)
    x = window_inputs(windows)
    loader = make_loader(windows, settings.batch, shuffle=True, seed=0)
    label = target.label or label_for(target, settings, model)
    extra = None
    with tempfile.TemporaryDirectory() as tmp:
        if target.export:
            from bench.export import INT8_CALIBRATION_WINDOWS, compare_deployables

            onnx_path = target.onnx_path or str(Path(tmp) / "model.onnx")
            std = splits.scaler.glucose[1]
            x_cmp = x[:: max(1, len(x) // 256)][:256]  # up to 256 windows spread over the drawn ones
            x_val = window_inputs(splits.val, INT8_CALIBRATION_WINDOWS)  # INT8 calibrated apart from x_cmp

            def extra(m: torch.nn.Module) -> dict:
                return {"deployables": compare_deployables(m, x_cmp, std, onnx_path, x_val, settings.latency_calls,
                                                           settings.batch)}

        started = time.time()
        result = run_benchmark(model, x, loader, settings, extra)
    result.update(label=label, wall_s=time.time() - started, load_average=[load_before, os.getloadavg()[0]],
                  windows=len(x), patients=splits.train_patients, data=data.data,
                  weights_source=model.weights_source if model.uses_llm else None, provenance=provenance())
    out = Path(target.out)
    write_json(out / f"{label}.json", result)
    append_row(out / "benchmark.csv", flat_row(label, target, settings, model, result))
    return label, result
