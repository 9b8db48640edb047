#!/usr/bin/env bash
# Time-LLM on the bundled simulated cohort: per patient, or all patients pooled (PATIENTS=all).
# Usage: bash scripts/TimeLLM_simulated.sh [PATIENTS] [BACKBONE] [extra run_main.py flags...]
#   bash scripts/TimeLLM_simulated.sh 1001 MiniLM
#   bash scripts/TimeLLM_simulated.sh all MiniLM --train_epochs 20
# Runs from any folder; relative paths and the run's checkpoints/ are relative to the folder you run it from.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
patients=${1:-all}; backbone=${2:-MiniLM}; shift $(( $# > 2 ? 2 : $# ))
exec python "$repo/run_main.py" --data simulated --patients "$patients" --llm_model "$backbone" \
  --model_id "sim_${patients//,/-}" "$@"
