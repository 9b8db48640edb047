"""Which accelerator a run trains on: accelerate with the run's mixed precision, optionally DeepSpeed ZeRO-2 and a
TensorBoard tracker, and whether bf16 pays on this hardware (what a run defaults to).

Kept apart from the training loop (``exp.trainer``) because entry points ask the precision question before any
model exists, and the benchmark times training on the same accelerator without the loop. It is also the one place
that deals with accelerate's process-wide state: the environment variables accelerate and DeepSpeed read, the
global state each ``Accelerator`` starts from, and the forward accelerate patches into a model.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from configs import TrainConfig
from utils.errors import LLMTimeError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DS_CONFIG = REPO_ROOT / "configs" / "ds_config_zero2.json"
PRECISIONS = ("no", "bf16", "fp16")


def launcher_precision() -> str:
    """The mixed precision a launcher asked for (``accelerate launch --mixed_precision`` sets
    ``ACCELERATE_MIXED_PRECISION``), lower-case; '' when none did."""
    return os.environ.get("ACCELERATE_MIXED_PRECISION", "").lower()


def _ensure_single_process_env() -> None:
    """DeepSpeed initialises torch.distributed even for one process; give it a local rendezvous if unlaunched."""
    if "RANK" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )


def make_accelerator(cfg: TrainConfig, log_dir: Optional[Path] = None):
    """An ``Accelerator`` for the chosen precision, with a DeepSpeed ZeRO plugin when asked.

    ``cfg.mixed_precision`` is passed explicitly, so the precision recorded in a run's config is the one used; a
    launcher that asked for another (``accelerate launch --mixed_precision``) is told so in one warning line.
    DeepSpeed is only set up for ``use_deepspeed``: merely importing it prints a warning on every CPU machine.
    With ``cfg.report_to`` 'tensorboard' and a ``log_dir`` (a run folder: re-testing, forecasting and sweeps pass
    none, having no training to watch), accelerate's tracker writes event files under ``log_dir``/tensorboard.
    """
    from accelerate import Accelerator
    from accelerate.utils import patch_environment

    if cfg.mixed_precision not in PRECISIONS:
        raise LLMTimeError(f"--mixed_precision must be no, bf16 or fp16, got {cfg.mixed_precision!r}")
    if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise LLMTimeError("--mixed_precision fp16 needs a GPU; on the CPU use --mixed_precision bf16")
    launcher = launcher_precision()
    if launcher not in ("", "no", cfg.mixed_precision):
        warnings.warn(f"the launcher's mixed precision {launcher} is overridden by this run's --mixed_precision "
                      f"{cfg.mixed_precision}", stacklevel=2)
    log_with = _tracker(cfg, log_dir)
    plugin = None
    if cfg.use_deepspeed:
        path = Path(cfg.deepspeed_config) if cfg.deepspeed_config else DEFAULT_DS_CONFIG
        if not path.is_file():
            raise LLMTimeError(f"DeepSpeed config {path} not found: pass --deepspeed_config FILE")
        _ensure_single_process_env()
        from accelerate.utils import DeepSpeedPlugin

        plugin = DeepSpeedPlugin(hf_ds_config=str(path))
    _forget_earlier_accelerators()
    # Given a DeepSpeed plugin, Accelerator flags DeepSpeed in os.environ (ACCELERATE_USE_DEEPSPEED) and leaves it set,
    # where the next Accelerator of this process would take it for a launcher's request. accelerate reads the flag
    # only while an Accelerator is built, so it is set for that long and then put back as it was.
    with patch_environment(accelerate_use_deepspeed="true") if plugin else contextlib.nullcontext():
        return Accelerator(mixed_precision=cfg.mixed_precision, deepspeed_plugin=plugin, log_with=log_with,
                           project_dir=None if log_with is None else str(log_dir))


def _forget_earlier_accelerators() -> None:
    """Drop the state an earlier ``Accelerator`` of this process left, so the next one takes this run's precision
    and engine; the process group of a launched multi-process job is kept.

    accelerate keeps one process-wide state that the first Accelerator fixes, and in-process runs (comparison cells,
    teacher then student) each ask for their own. accelerate has no public call that drops it (checked for 1.16):
    ``AcceleratorState._reset_state`` is what its own test cases and transformers' ``TrainingArguments`` call, and
    this is the project's only call of it.
    """
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=int(os.environ.get("WORLD_SIZE", "1")) == 1)


def remove_autocast_forward(model: nn.Module) -> None:
    """Give ``model`` back its own forward, in place, after accelerate's ``prepare`` patched in one that runs under
    autocast (mixed precision) and converts outputs to float32; a model never patched is left as it is.

    accelerate's public ``unwrap_model(model, keep_fp32_wrapper=False)`` is not used: it leaves a bound copy of the
    original forward as an instance attribute (the model then no longer follows its class's forward), and it imports
    DeepSpeed whenever DeepSpeed is installed, printing DeepSpeed's accelerator warning in every CPU run.
    """
    if model.__dict__.pop("_original_forward", None) is not None:
        del model.__dict__["forward"]  # the instance attribute accelerate set shadows the class's forward


def _tracker(cfg: TrainConfig, log_dir: Optional[Path]) -> Optional[str]:
    """accelerate's ``log_with`` for ``cfg.report_to`` ('none' or 'tensorboard') when there is a folder to log to."""
    if cfg.report_to not in ("none", "tensorboard"):
        raise LLMTimeError(f"--report_to must be none or tensorboard, got {cfg.report_to!r}")
    if cfg.report_to == "none" or log_dir is None:
        return None
    from accelerate.utils import is_tensorboard_available

    if not is_tensorboard_available():
        raise LLMTimeError("--report_to tensorboard needs tensorboardX (pip install tensorboardX) or tensorboard")
    return "tensorboard"


def native_bf16() -> bool:
    """Whether bf16 autocast is faster than fp32 here, so a run may default to it.

    A GPU that supports bf16; a CPU with AMX-BF16 (measured on this project's Intel Xeon with AMX: 2.5x the fp32
    inference rate for the default Time-LLM); an AMD CPU with AVX512-BF16 (2.75x inference, 1.6x training, measured
    on one). An Intel CPU with AVX512-BF16 but no AMX measured bf16 *slower* than fp32
    (docs/results/benchmark_cpu.md), as does any CPU that emulates bf16, so those default to fp32.
    """
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        return cpu_bf16_pays(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def native_precision() -> str:
    """The mixed precision a run defaults to when nothing asks for one: 'bf16' where ``native_bf16``, else 'no'
    (fp32), so no default ever pays for emulated bf16."""
    return "bf16" if native_bf16() else "no"


def device_name() -> str:
    """The machine a run's times were measured on, for its results row: the GPU's name, or the CPU's model with the
    instruction set that decides its speed here (AMX, AVX512-BF16, AVX-512, AVX2), since this project's CPUs differ
    by 2-3x and a wall time means nothing without it."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name()}"
    try:
        return cpu_description(Path("/proc/cpuinfo").read_text(), os.cpu_count())
    except OSError:
        return f"CPU: {platform.processor() or platform.machine()}"


def cpu_description(cpuinfo: str, cores: Optional[int]) -> str:
    """``device_name`` for a CPU described by the text of /proc/cpuinfo, e.g. 'CPU: AMD EPYC 7B13, AVX2, 2 cores'."""
    model = _cpuinfo_field(cpuinfo, "model name") or platform.machine()
    flags = frozenset(_cpuinfo_field(cpuinfo, "flags").split())
    isa = next((name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"),
                                          ("avx2", "AVX2")) if flag in flags), "no AVX2")
    return f"CPU: {model}, {isa}, {cores} cores"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where the file is absent or has no flags line)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    return frozenset(_cpuinfo_field(text, "flags").split())


def _cpuinfo_field(cpuinfo: str, name: str) -> str:
    """The value of the first ``name : value`` line of /proc/cpuinfo's text ('' where there is none)."""
    return next((line.partition(":")[2].strip() for line in cpuinfo.splitlines() if line.startswith(name)), "")


def cpu_bf16_pays(cpuinfo: str) -> bool:
    """``native_bf16`` for a CPU described by the text of /proc/cpuinfo."""
    return "amx_bf16" in cpuinfo or ("avx512_bf16" in cpuinfo and "AuthenticAMD" in cpuinfo)
