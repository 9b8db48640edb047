#!/usr/bin/env bash
# Time-LLM on every OhioT1DM patient: one pooled model (POOLED=1, default) or one model per patient (POOLED=0).
# Usage: OHIO_ROOT=dataset/ohio bash scripts/TimeLLM_ohio_all.sh [BACKBONE] [extra run_main.py flags...]
# Runs from any folder: OHIO_ROOT defaults to the repository's dataset/ohio; a relative OHIO_ROOT, other relative
# paths and the runs' checkpoints/ are relative to the folder you run it from.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
backbone=${1:-MiniLM}; shift $(( $# > 1 ? 1 : $# ))
root=${OHIO_ROOT:-$repo/dataset/ohio}
if [ "${POOLED:-1}" = 1 ]; then
  exec python "$repo/run_main.py" --data ohio --root_path "$root" --llm_model "$backbone" --model_id ohio_all \
    --max_train_windows 0 --max_val_windows 0 "$@"
fi
for f in $(find "$root" -name '*-ws-training.xml*' | sort); do
  id=$(basename "$f"); id=${id%%-ws-training*}
  python "$repo/run_main.py" --data ohio --root_path "$root" --patients "$id" --llm_model "$backbone" \
    --model_id "ohio_${id}" --max_train_windows 0 --max_val_windows 0 "$@"
done
