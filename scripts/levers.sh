#!/usr/bin/env bash
# The fast path lever by lever (its target: 3x faster training, 5x faster inference than a straightforward Time-LLM).
# Reference configuration (MiniLM real weights, seq 72 / pred 12, patch 12 / stride 6, d_model 32, d_ff 128,
# 8 heads, batch 32): the fast path, each lever switched off on its own, and all of them off (the straightforward
# Time-LLM), in fp32 and bf16; the decoder prefix cache on a random-weight GPT-2 row; torch.compile; and students
# with their ONNX / INT8 copies. Rows go to OUT/benchmark.csv; the summary table is printed at the end.
# Usage: bash scripts/levers.sh [OUT] [ROUNDS]   (default: the repository's checkpoints/bench_levers, 1 round;
#   the published rows: OUT docs/results/bench_levers)
# Runs from any folder once the project is installed (README); a relative OUT is relative to the folder you run it from.
# Rounds interleave the settings, so each sees the same machine load; the summary takes medians over rounds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed scripts
out=${1:-$repo/checkpoints/bench_levers}
rounds=${2:-1}
bench() { python -m scripts.benchmark --threads 2 --repeats 3 --steps 10 --out "$out" "$@"; }
for _ in $(seq "$rounds"); do
  bench
  for lever in short_prompt vectorised_prompt sdpa prototype_cache eval_backbone; do
    bench --levers_off "$lever"
  done
  bench --levers_off all
  bench --mixed_precision bf16
  bench --mixed_precision bf16 --levers_off all
  bench --no_train --compile
  bench --llm_model GPT2 --llm_weights random --llm_layers 2
  bench --llm_model GPT2 --llm_weights random --llm_layers 2 --levers_off prefix_cache
  bench --llm_model MiniLM --llm_layers 1 --no_train --export --latency_calls 300
  bench --llm_model BERT-tiny --llm_weights random --no_train --export --latency_calls 300
  bench --model DLinear --no_train --export --latency_calls 300
done
python -m scripts.benchmark --summarize "$out/benchmark.csv"
