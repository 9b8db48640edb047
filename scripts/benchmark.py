"""Benchmark any forecaster on real windows of a cohort: training and inference throughput, batch-1 latency, memory,
parameters, checkpoint size, FLOPs and prompt length; optionally its ONNX and INT8 copies beside it.

Run from the repository root::

    python -m scripts.benchmark                                   # the reference: Time-LLM + MiniLM (real weights)
    python -m scripts.benchmark --mixed_precision bf16
    python -m scripts.benchmark --llm_model MiniLM --llm_layers 1 --export --no_train   # a deployable student
    python -m scripts.benchmark --model DLinear --export
    python -m scripts.benchmark --checkpoint checkpoints/RUN --export  # a trained run's own model and scaler
    python -m scripts.benchmark --summarize docs/results/bench_levers/benchmark.csv   # medians per label, as markdown

Prints a table, writes ``<out>/<label>.json`` and appends a row to ``<out>/benchmark.csv``. Throughputs are
medians over ``--repeats`` (the min and max are kept in the JSON); the machine's load average before and after
is recorded, because on a shared machine it says how far to trust the numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from data_provider.data_factory import build_splits, make_loader, subset
from configs import DataConfig, ModelConfig
from exp.run import provenance
from utils.efficiency import PRECISIONS, BenchSettings, run_benchmark
from utils.errors import USER_ERROR_EXIT, LLMTimeError
from utils.io import write_json
from utils.levers import LEVERS, Straightforward, parse_levers
from utils.results import append_row

DEFAULT_OUT = "docs/results/bench"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # noqa: D401
        raise LLMTimeError(f"{message} (see python -m scripts.benchmark --help)")


def _bool(text: str) -> bool:
    if str(text).lower() in ("1", "true", "yes"):
        return True
    if str(text).lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected 0/1, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(description="LLM-TIME efficiency benchmark", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    m = p.add_argument_group("model (defaults: the reference configuration)")
    m.add_argument("--model", default="TimeLLM", help="a name from models.MODELS")
    m.add_argument("--llm_model", default="MiniLM")
    m.add_argument("--llm_weights", default="pretrained", choices=["pretrained", "random"])
    m.add_argument("--llm_path", default=None)
    m.add_argument("--llm_layers", type=int, default=None)
    m.add_argument("--prompt_domain", type=_bool, default=True)
    m.add_argument("--use_prompt", type=_bool, default=True)
    for name in ("patch_len", "stride", "d_model", "d_ff", "n_heads", "num_tokens", "top_k", "e_layers"):
        m.add_argument(f"--{name}", type=int, default=getattr(ModelConfig(), name))
    m.add_argument("--checkpoint", default=None, help="benchmark a saved run's model (its config, weights, scaler)")
    m.add_argument("--levers_off", default=None, metavar="LEVERS",
                   help="Time-LLM: switch fast-path levers off to measure them, comma-separated or 'all' "
                        "(short_prompt, vectorised_prompt, sdpa, prototype_cache, eval_backbone, prefix_cache; "
                        "see utils/levers.py)")
    m.add_argument("--compile", action="store_true", help="torch.compile the model before timing")
    d = p.add_argument_group("data")
    d.add_argument("--data", default="simulated")
    d.add_argument("--root_path", default=None)
    d.add_argument("--patients", default="1001,1002,1003", help="patients whose training windows are used")
    d.add_argument("--features", default="MS", choices=["S", "MS"],
                   help="S: glucose; MS: + basal, bolus, carbs (run_main's default: events as text and channels)")
    d.add_argument("--seq_len", type=int, default=72)
    d.add_argument("--pred_len", type=int, default=12)
    d.add_argument("--windows", type=int, default=1024, help="real windows drawn (evenly spaced) for timing")
    t = p.add_argument_group("timing")
    t.add_argument("--mixed_precision", default="no", choices=PRECISIONS)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--repeats", type=int, default=5)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--steps", type=int, default=20, help="timed batches per repeat")
    t.add_argument("--latency_calls", type=int, default=100)
    t.add_argument("--deepspeed", action="store_true", help="time training through DeepSpeed ZeRO-2")
    t.add_argument("--fused_adamw", action="store_true", help="time training with AdamW(fused=True)")
    t.add_argument("--no_train", action="store_true", help="skip the training measurement")
    t.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    t.add_argument("--export", action="store_true", help="also the ONNX graph (onnxruntime) and its dynamic-INT8 copy (ONNX Runtime quantiser)")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=DEFAULT_OUT, help="folder for <label>.json and benchmark.csv")
    o.add_argument("--label", default=None, help="row name (default: derived from the settings)")
    o.add_argument("--onnx_path", default=None, help="keep the exported graph here (default: a temporary file)")
    o.add_argument("--summarize", default=None, metavar="CSV",
                   help="only print a markdown table of a benchmark.csv: per label, medians over its runs")
    return p


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


def _label(args: argparse.Namespace, model: torch.nn.Module) -> str:
    parts = [args.model]
    if getattr(model, "uses_llm", False):
        parts.append(model.backbone_row.name + (f"-L{args.llm_layers}" if args.llm_layers else ""))
        parts.append("random" if model.weights_source == "random" else "pretrained")
        if model.prompt is None:
            parts.append("noprompt")
        elif not args.prompt_domain:
            parts.append("nodomain")
        if args.levers_off:
            off = parse_levers(args.levers_off)
            parts.append("off-all" if off == set(LEVERS) else "off-" + "-".join(sorted(off)))
        if args.compile:
            parts.append("compiled")
    parts.append("fp32" if args.mixed_precision == "no" else args.mixed_precision)
    parts += [flag for flag in ("deepspeed", "fused_adamw") if getattr(args, flag)]
    if args.threads:
        parts.append(f"t{args.threads}")
    return "_".join(p.replace("/", "-") for p in parts)


def build(args: argparse.Namespace):
    """(model, splits, data config) for the arguments: a fresh model, or a saved run's with its own scaler."""
    patients = [p.strip() for p in args.patients.split(",") if p.strip()] or None
    if args.checkpoint:
        from exp.checkpoint import rebuild_model

        cfg, scaler, model, _ = rebuild_model(args.checkpoint)
        data = replace(cfg.data, patients=patients, test_patients=patients, max_val_windows=1)
        return model, build_splits(data, scaler=scaler), data
    from models import build_model

    data = DataConfig(data=args.data, root_path=args.root_path, patients=patients, test_patients=patients,
                      seq_len=args.seq_len, pred_len=args.pred_len, max_val_windows=1,
                      covariates=args.features == "MS")
    model_cfg = ModelConfig(
        model=args.model, llm_model=args.llm_model, llm_path=args.llm_path, llm_weights=args.llm_weights,
        llm_layers=args.llm_layers, prompt_domain=args.prompt_domain, use_prompt=args.use_prompt,
        **{k: getattr(args, k) for k in ("patch_len", "stride", "d_model", "d_ff", "n_heads", "num_tokens", "top_k",
                                          "e_layers")},
    )
    splits = build_splits(data)
    torch.manual_seed(0)
    model = build_model(model_cfg, data, splits.scaler, splits.description)
    if hasattr(model, "fit_closed_form"):
        model.fit_closed_form(subset(splits.train, 4096))
    return model, splits, data


def flat_row(label: str, args: argparse.Namespace, model: torch.nn.Module, result: dict) -> dict[str, Any]:
    """The CSV row: identity, settings, and the medians (full detail stays in the JSON)."""
    train = result.get("training_windows_per_s") or {}
    prompt = result.get("prompt") or {}
    inner = getattr(model, "model", model)  # the TimeLLM inside a Straightforward wrapper
    row: dict[str, Any] = {
        "label": label, "model": type(inner).__name__, "features": args.features,
        "levers_off": args.levers_off or "", "compiled": args.compile,
        "backbone": model.backbone_row.name if getattr(model, "uses_llm", False) else "",
        "llm_layers": args.llm_layers or "", "weights_source": getattr(model, "weights_source", ""),
        "mixed_precision": args.mixed_precision, "deepspeed": args.deepspeed, "fused_adamw": args.fused_adamw,
        "prefix_cache": bool(getattr(inner, "cache_prompt_prefix", False)), "threads": result["threads"],
        "batch": args.batch, "repeats": args.repeats, "steps": args.steps,
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
    return row


def format_table(label: str, result: dict) -> str:
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
                     + (f", file {v['file_mb']:.2f} MB" if "file_mb" in v else ""))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.summarize:
            print(summarize(args.summarize))
            return 0
        for name in ("batch", "repeats", "steps", "latency_calls", "windows"):
            if getattr(args, name) < 1:
                raise LLMTimeError(f"--{name} must be >= 1")
        if args.windows < args.batch:
            raise LLMTimeError(f"--windows {args.windows} must be at least --batch {args.batch}")
        if args.threads:
            torch.set_num_threads(args.threads)
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        load_before = os.getloadavg()[0]
        model, splits, data = build(args)
        if args.levers_off:
            model = Straightforward(model, parse_levers(args.levers_off), splits.description)
        if args.compile:
            model = torch.compile(model)
        windows = subset(splits.train, args.windows)
        x = windows.__getitems__(list(range(len(windows))))["x"]
        loader = make_loader(windows, args.batch, shuffle=True, seed=0)
        settings = BenchSettings(batch=args.batch, warmup=args.warmup, steps=args.steps, repeats=args.repeats,
                                 latency_calls=args.latency_calls, mixed_precision=args.mixed_precision,
                                 deepspeed=args.deepspeed, fused_adamw=args.fused_adamw, train=not args.no_train)
        label = args.label or _label(args, model)
        extra = None
        with tempfile.TemporaryDirectory() as tmp:
            if args.export:
                from utils.export import compare_deployables

                onnx_path = args.onnx_path or str(Path(tmp) / "model.onnx")
                std = splits.scaler.glucose[1]
                x_cmp = x[:: max(1, len(x) // 256)][:256]  # up to 256 windows spread over the drawn ones

                def extra(m: torch.nn.Module) -> dict:
                    return {"deployables": compare_deployables(m, x_cmp, std, onnx_path, args.latency_calls,
                                                               args.batch)}

            started = time.time()
            result = run_benchmark(model, x, loader, settings, extra)
        result.update(label=label, wall_s=time.time() - started, load_average=[load_before, os.getloadavg()[0]],
                      windows=len(x), patients=splits.train_patients, data=data.data,
                      weights_source=getattr(model, "weights_source", None), provenance=provenance())
        out = Path(args.out)
        write_json(out / f"{label}.json", result)
        append_row(out / "benchmark.csv", flat_row(label, args, model, result))
        print(format_table(label, result))
        print(f"wrote {out / (label + '.json')} and a row of {out / 'benchmark.csv'}")
        return 0
    except LLMTimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
