#!/usr/bin/env bash
# Time-LLM on one OhioT1DM patient (trained and tested on that patient).
# Usage: OHIO_ROOT=dataset/ohio bash scripts/TimeLLM_ohio_patient.sh 559 [BACKBONE] [extra run_main.py flags...]
# Runs from any folder: OHIO_ROOT defaults to the repository's dataset/ohio; a relative OHIO_ROOT, other relative
# paths and the run's checkpoints/ are relative to the folder you run it from.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
patient=${1:?patient id, e.g. 559}; backbone=${2:-MiniLM}; shift $(( $# > 2 ? 2 : $# ))
exec python "$repo/run_main.py" --data ohio --root_path "${OHIO_ROOT:-$repo/dataset/ohio}" --patients "$patient" \
  --llm_model "$backbone" --model_id "ohio_${patient}" --max_train_windows 0 --max_val_windows 0 "$@"
