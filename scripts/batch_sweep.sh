#!/usr/bin/env bash
# Whether Time-LLM keeps its accuracy at batch 128 (2.5x the training windows/s of batch 32 on a 2-core CPU,
# docs/results/benchmark_cpu.md), with the learning rate re-chosen on validation: batch 128 at 3e-3 and 1e-2 (the
# grid grown past an edge its winner sits on), the plateau schedule, warm-up over the same 640 windows as the
# recipe's 20 steps of 32. The rest as the schedule sweep (scripts/schedule_sweep.sh), whose batch-32 points it is
# compared with: 2,000 fresh training windows per epoch, 1,000 fixed validation windows, early stopping (patience 3,
# at most 30 epochs), the 12 patients pooled, inputs MS, seed 2021, MiniLM's first layer.
# Resumable. Usage: bash scripts/batch_sweep.sh [OUT_CSV]  (default: the repository's
# checkpoints/schedules/sweep.csv; the published sweep: docs/results/schedules/sweep.csv)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts
out=${1:-$repo/checkpoints/schedules/sweep.csv}
python -m scripts.tune --model TimeLLM --features MS --from_recipe 1 --extend_edges 1 --out "$out" \
  --grid batch_size=128 learning_rate=3e-3,1e-2 \
  --set lradj=plateau warmup_steps=5 max_train_windows=2000 max_val_windows=1000 train_epochs=30 patience=3 \
  seed=2021 llm_model=MiniLM llm_layers=1 prompt_domain=0
