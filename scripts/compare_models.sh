#!/usr/bin/env bash
# Baselines vs Time-LLM vs its ablations (Tan et al., NeurIPS 2024) on the bundled cohort, one command.
# Usage: bash scripts/compare_models.sh [quick|standard|full] [extra scripts/compare_models.py flags...]
#   bash scripts/compare_models.sh quick                      # smoke run, minutes on a CPU -> checkpoints/quick/
#   bash scripts/compare_models.sh standard --plan            # the ranking grid's cells and estimated time
#   bash scripts/compare_models.sh standard                   # the ranking grid (hours on 2 CPU cores)
#   bash scripts/compare_models.sh standard --shard 2/4       # one task of a job array; then: standard --merge
#   bash scripts/compare_models.sh full                       # 12 patients x 3 seeds, no caps (GPU hours)
#   bash scripts/compare_models.sh full --backbones MiniLM,GPT2 --out checkpoints/full_gpt2
# Re-running the same command resumes: finished cells are skipped.
# Runs from any folder once the project is installed (README): results go to the repository's checkpoints/PRESET
# unless --out says otherwise (a relative --out is relative to the folder you run it from; the published reports:
# --out docs/results/PRESET).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts
preset=${1:-quick}; shift $(( $# > 0 ? 1 : 0 ))
case "$preset" in
  quick|standard|full) ;;
  *) echo "error: preset must be quick, standard or full, got '$preset'" >&2; exit 2 ;;
esac
exec python -m scripts.compare_models "--$preset" --out "$repo/checkpoints/$preset" "$@"
