#!/usr/bin/env bash
# One short check of the GPU path on one GPU (at most about 8 minutes): Time-LLM trained in bf16 and fp16 through
# accelerate and once through DeepSpeed ZeRO-2, GPT2- and LLaMA-7B-sized random backbones timed, a killed run
# resumed, an ONNX student exported; the table goes to --out (default checkpoints/gpu.md; the published page:
# --out docs/results/gpu.md; scripts/gpu_check.py says what each check runs). Without a GPU it says so and exits 0.
# Usage: bash scripts/gpu_check.sh [--dry-run] [--out FILE] [--work DIR]   (--dry-run: CPU-sized, ~2 min on 2 cores)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts
exec python -m scripts.gpu_check "$@"
