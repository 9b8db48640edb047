#!/usr/bin/env bash
# Whether the terse event text (--event_words terse: the same facts in about half the prompt tokens, 1.12x the
# training windows/s of the full text, docs/results/benchmark_cpu.md) costs Time-LLM anything on validation: the
# batch sweep's point at batch 128, plateau, 3e-3 (scripts/batch_sweep.sh, whose row in
# docs/results/schedules/sweep.csv is the full text's) run again with the terse words, everything else the same.
# Resumable. Usage: bash scripts/event_words_sweep.sh [OUT_CSV]  (default: the repository's
# checkpoints/schedules/event_words.csv; the published row: docs/results/schedules/event_words.csv)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts
out=${1:-$repo/checkpoints/schedules/event_words.csv}
python -m scripts.tune --model TimeLLM --features MS --from_recipe 1 --extend_edges 0 --out "$out" \
  --grid event_words=terse \
  --set batch_size=128 learning_rate=3e-3 lradj=plateau warmup_steps=5 max_train_windows=2000 max_val_windows=1000 \
  train_epochs=30 patience=3 seed=2021 llm_model=MiniLM llm_layers=1 prompt_domain=0
