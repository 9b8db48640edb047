#!/usr/bin/env bash
# Each model's learning rate, chosen on validation under the protocol the grids run (issue: a fair contest): 2,000
# training windows per epoch drawn fresh from all windows, 1,000 fixed validation windows, at most 30 epochs ended by
# early stopping (patience 3), the 12 patients pooled, inputs MS, seed 2021. The grid is grown past any edge its
# winner sits on (--extend_edges 1) until the winner is interior. Points the schedule sweep already ran (same
# settings) are reused, not run again.
#   DLinear, PatchTST, MLP: their recipe's batch size and schedule (scripts/schedule_sweep.sh chose it).
#   TimeLLM_woLLM, TimeLLM_LLM2Attn, TimeLLM_LLM2Trsf: Time-LLM's optimiser (batch 128, plateau, 5 warm-up steps;
#   scripts/batch_sweep.sh chose it for Time-LLM), so each ablation differs from Time-LLM in its model alone. Their
#   earlier recipes (batch 32, a cosine over 12-20 epochs) were swept with fixed windows and a rate that reached zero
#   at the cap, and at batch 32 they train 2-4x slower on a 2-core CPU.
# Resumable. Usage: bash scripts/rate_sweep.sh OUT_CSV [MODEL ...]  (the published sweep: docs/results/schedules/
# sweep.csv; default models: all six)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts
out=${1:?usage: bash scripts/rate_sweep.sh OUT_CSV [MODEL ...]}
shift
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(DLinear PatchTST MLP TimeLLM_woLLM TimeLLM_LLM2Attn TimeLLM_LLM2Trsf)
protocol=(max_train_windows=2000 max_val_windows=1000 train_epochs=30 patience=3 seed=2021)
for model in "${models[@]}"; do
  case $model in
    DLinear|MLP) grid=(learning_rate=3e-4,1e-3,3e-3); fixed=() ;;
    PatchTST) grid=(learning_rate=1e-3,3e-3,1e-2); fixed=() ;;
    TimeLLM_*) grid=(learning_rate=9e-4,3e-3)
               fixed=(batch_size=128 lradj=plateau warmup_steps=5 llm_model=MiniLM llm_layers=1 prompt_domain=0) ;;
    *) echo "rate_sweep.sh: no rate grid for $model" >&2; exit 2 ;;
  esac
  python -m scripts.tune --model "$model" --features MS --from_recipe 1 --extend_edges 1 --out "$out" \
    --grid "${grid[@]}" --set "${protocol[@]}" "${fixed[@]}"
done
