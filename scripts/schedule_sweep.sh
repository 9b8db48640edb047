#!/usr/bin/env bash
# Each gradient-trained model's learning-rate schedule, chosen on validation: its recipe (learning rate, batch size,
# warm-up) with the rate held constant after warm-up, halved after each epoch without a new validation best
# (plateau), or a cosine over a 30-epoch horizon, every run ended by early stopping (patience 3) rather than by a
# rate that reaches zero at the cap. 2,000 training windows per epoch
# drawn fresh from all windows, 1,000 fixed validation windows, the 12 patients pooled, inputs MS, seed 2021;
# Time-LLM and its ablations as the default run builds them (MiniLM's first layer, no dataset description).
# Resumable: finished points are skipped. Usage: bash scripts/schedule_sweep.sh [OUT_CSV] [MODEL ...]
# (default: the repository's checkpoints/schedules/sweep.csv, every model; the published sweep: OUT_CSV
# docs/results/schedules/sweep.csv)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts
out=${1:-$repo/checkpoints/schedules/sweep.csv}
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(DLinear PatchTST MLP TimeLLM TimeLLM_woLLM TimeLLM_LLM2Trsf TimeLLM_LLM2Attn)
for model in "${models[@]}"; do
  extra=()
  case $model in TimeLLM*) extra=(llm_model=MiniLM llm_layers=1 prompt_domain=0) ;; esac
  python -m scripts.tune --model "$model" --features MS --from_recipe 1 --extend_edges 0 --out "$out" \
    --grid lradj=constant,plateau,COS \
    --set max_train_windows=2000 max_val_windows=1000 train_epochs=30 patience=3 seed=2021 "${extra[@]}"
done
