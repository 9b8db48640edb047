"""What a benchmark result looks like to a reader: the CSV row, the printed table, and the per-label summary of a
benchmark.csv as markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from torch import nn

from bench.levers import Straightforward
from bench.settings import BenchSettings, BenchTarget
from utils.errors import LLMTimeError

SUMMARY_COLUMNS = {  # CSV column -> table heading
    "train_windows_per_s": "train w/s", "infer_windows_per_s": "infer w/s", "latency_ms_p50": "batch-1 p50 ms",
    "sequence_tokens": "tokens/window", "load_before": "load avg",
}


def summarize(csv_path: str) -> str:
    """Markdown table of a benchmark CSV: one line per label, the median over its runs of each column.

    Runs of different settings interleaved in time see the same machine load, so medians across such rounds
    compare settings more fairly than one run each.
    """
    import pandas as pd

    path = Path(csv_path)
    if not path.is_file():
        raise LLMTimeError(f"--summarize {csv_path}: no such file; pass a benchmark.csv written by this script")
    frame = pd.read_csv(path)
    columns = [c for c in SUMMARY_COLUMNS if c in frame]
    table = frame.groupby("label", sort=False)[columns].median()
    counts = frame.groupby("label", sort=False).size()
    lines = ["| label | runs | " + " | ".join(SUMMARY_COLUMNS[c] for c in columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for label, row in table.iterrows():
        cells = ["-" if pd.isna(row[c]) else f"{row[c]:.1f}" for c in columns]
        lines.append(f"| {label} | {counts[label]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flat_row(label: str, target: BenchTarget, settings: BenchSettings, model: nn.Module,
             result: dict) -> dict[str, Any]:
    """The CSV row: identity, settings, and the medians (full detail stays in the JSON)."""
    train = result.get("training_windows_per_s") or {}
    prompt = result.get("prompt") or {}
    inner = model.model if isinstance(model, Straightforward) else model  # the TimeLLM inside the wrapper
    row: dict[str, Any] = {
        "label": label, "model": type(inner).__name__, "features": target.features,
        "levers_off": target.levers_off or "", "compiled": target.compile,
        "backbone": model.backbone_row.name if model.uses_llm else "",
        "llm_layers": target.model.llm_layers or "", "weights_source": model.weights_source if model.uses_llm else "",
        "mixed_precision": settings.mixed_precision, "deepspeed": settings.deepspeed,
        "fused_adamw": settings.fused_adamw, "prefix_cache": inner.cache_prompt_prefix, "threads": result["threads"],
        "batch": settings.batch, "repeats": settings.repeats, "steps": settings.steps,
        "prompt_tokens": prompt.get("prompt_tokens_mean", 0), "sequence_tokens": prompt.get("sequence_tokens_mean", ""),
        "train_windows_per_s": train.get("median", ""), "infer_windows_per_s": result["inference_windows_per_s"]["median"],
        "latency_ms_p50": result["latency_ms_batch1"]["p50"], "latency_ms_p95": result["latency_ms_batch1"]["p95"],
        "train_peak_mb": result.get("training_peak_mb", ""), "infer_peak_mb": result["inference_peak_mb"],
        "trainable_params": result["trainable_params"], "frozen_params": result["frozen_params"],
        "total_params": result["total_params"], "checkpoint_mb": result["checkpoint_mb"],
        "infer_gflops_per_window": result["inference_gflops_per_window"],
        "train_gflops_per_window": result.get("training_gflops_per_window", ""),
        "load_before": result["load_average"][0], "load_after": result["load_average"][1],
    }
    for kind, values in (result.get("deployables") or {}).items():
        for key in ("max_abs_mgdl", "mean_abs_mgdl", "latency_ms_p50", "windows_per_s", "file_mb"):
            row[f"{kind}_{key}"] = values.get(key, "")  # the float model has no file of its own here
        if "float_ops" in values:
            row[f"{kind}_float_ops"] = len(values["float_ops"])
            row[f"{kind}_weight_range"] = values["weight_range"]
    return row


def format_table(label: str, result: dict) -> str:
    """The result as the lines the benchmark prints: medians with their min and max, then sizes and costs."""
    def rate(entry: Optional[dict]) -> str:
        return "-" if not entry else f"{entry['median']:.1f} (min {entry['min']:.1f}, max {entry['max']:.1f})"

    prompt = result.get("prompt")
    lines = [
        f"benchmark {label}  ({result['device']}, {result['threads']} threads, load average "
        f"{result['load_average'][0]:.2f} -> {result['load_average'][1]:.2f})",
        f"  training windows/s    {rate(result.get('training_windows_per_s'))}",
        f"  inference windows/s   {rate(result['inference_windows_per_s'])}  (batch {result['settings']['batch']})",
        f"  latency batch 1       p50 {result['latency_ms_batch1']['p50']:.2f} ms, "
        f"p95 {result['latency_ms_batch1']['p95']:.2f} ms",
        f"  peak memory           train {result.get('training_peak_mb', float('nan')):.0f} MB, "
        f"inference {result['inference_peak_mb']:.0f} MB",
        f"  parameters            trainable {result['trainable_params']:,}, frozen {result['frozen_params']:,}, "
        f"total {result['total_params']:,}",
        f"  checkpoint            {result['checkpoint_mb']:.2f} MB",
        f"  GFLOPs per window     inference {result['inference_gflops_per_window']:.3f}, training "
        f"{result.get('training_gflops_per_window', float('nan')):.3f}",
    ]
    if prompt:
        lines.append(f"  prompt tokens         mean {prompt['prompt_tokens_mean']:.1f} (min {prompt['prompt_tokens_min']},"
                     f" max {prompt['prompt_tokens_max']}); sequence {prompt['sequence_tokens_mean']:.1f}")
    for kind, v in (result.get("deployables") or {}).items():
        lines.append(f"  {kind:<6} vs float      max {v['max_abs_mgdl']:.4f} mg/dL, mean {v['mean_abs_mgdl']:.4f} mg/dL,"
                     f" batch-1 p50 {v['latency_ms_p50']:.2f} ms, {v['windows_per_s']:.0f} windows/s"
                     + (f", file {v['file_mb']:.2f} MB" if "file_mb" in v else "")
                     + (f", {len(v['float_ops'])} of {v['ops']} ops left in float, {v['weight_range']}-range weights"
                        if "float_ops" in v else ""))
    return "\n".join(lines)
