#!/usr/bin/env bash
# Cheaper training and inference steps, each measured in one run against the step it replaces, on the default
# run's Time-LLM (MiniLM real weights, inputs MS, no dataset description, first layer only, 5 lags, fp32 unless the
# CPU computes bf16 natively): the last layer at the patch positions only (patch_readout) against the whole
# sequence; a prompt without its lags against 5 lags; the terse event text against the full one; 1 layer against 2
# and all 6; batch 64 and 128 against 32; one thread
# against two; and the straightforward reference code path (every lever off). Rows go to OUT/benchmark.csv, the
# summary table is printed at the end; docs/results/benchmark_cpu.md quotes them as same-run ratios.
# Usage: bash scripts/step_levers.sh [OUT] [ROUNDS]   (default: the repository's checkpoints/bench_steps, 1 round;
#   the published rows: OUT docs/results/bench_steps_idle)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts
out=${1:-$repo/checkpoints/bench_steps}
rounds=${2:-1}
base=(--features MS --prompt_domain 0 --patients 1001,1002,1003 --llm_layers 1 --repeats 2 --steps 8
      --out "$out")
bench() { python -m scripts.benchmark "${base[@]}" "$@"; }
for _ in $(seq "$rounds"); do
  bench --label default_b32
  bench --levers_off patch_readout --label full_last_layer_b32
  bench --top_k 0 --label nolags_b32
  bench --event_words terse --label terse_events_b32
  bench --llm_layers 2 --label layers2_b32
  bench --llm_layers 6 --label layers6_b32
  bench --batch 64 --label default_b64
  bench --batch 128 --label default_b128
  bench --threads 1 --label default_b32_1thread
  bench --levers_off all --label straightforward_b32
done
python -m scripts.benchmark --summarize "$out/benchmark.csv"
