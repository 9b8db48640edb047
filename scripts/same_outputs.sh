#!/usr/bin/env bash
# Whether a change left results alone: a small Time-LLM run (MiniLM's first layer) and a small distillation run
# (hidden-state term included) of a git revision, checked out in a temporary worktree, and of this working tree, in
# fp32 (a CPU without AMX emulates bf16: the distillation run would take hours).
# Both write into the same folder in turn (a checkpoint holds its run's config, output folder included, and
# metrics.json its hash). Every predictions.csv must match byte for byte, and every metrics.json once its timing keys
# (seconds, rates) are left out; the outputs stay in OUT/before and OUT/after.
# Usage: bash scripts/same_outputs.sh [REV (default HEAD)] [OUT (default a new temporary folder)]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev=${1:-HEAD}
out=$(realpath "${2:-$(mktemp -d)}")
export LLMTIME_NO_BARS=1 OMP_NUM_THREADS=1

runs() {  # runs TREE DEST: both small runs with the code of TREE, their outputs moved to DEST
  (cd "$1" &&
   python run_main.py --llm_model MiniLM --llm_layers 1 --patients 1001 --max_train_windows 200 \
     --max_val_windows 100 --train_epochs 1 --mixed_precision no --checkpoints "$out/work/run" &&
   python -m distillation.pipeline --teacher minilm --teacher-layers 2 --student bert-tiny --student-weights random \
     --patients 1001 --max-train-windows 200 --max-val-windows 100 --teacher-epochs 1 --student-epochs 1 \
     --distill-epochs 1 --alpha 0.5 --beta 0.3 --gamma 0.2 --num-tokens 100 --mixed-precision no --latency-repeats 1 \
     --int8 0 --out "$out/work/distill")
  mv "$out/work" "$2"
}

git -C "$repo" worktree add --detach "$out/tree" "$rev" >/dev/null
trap 'git -C "$repo" worktree remove --force "$out/tree"' EXIT
runs "$out/tree" "$out/before"
runs "$repo" "$out/after"
python - "$out/before" "$out/after" <<'EOF'
import json, sys
from pathlib import Path

TIMING = ("seconds", "per_s")  # key endings of wall-clock times and rates, which differ from run to run


def untimed(value):
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not k.endswith(TIMING)}
    return [untimed(v) for v in value] if isinstance(value, list) else value


before, after = map(Path, sys.argv[1:])
files = sorted(p.relative_to(before) for name in ("predictions.csv", "metrics.json") for p in before.rglob(name))
differ = [f for f in files if not (after / f).is_file() or (
    (before / f).read_bytes() != (after / f).read_bytes() if f.suffix == ".csv"
    else untimed(json.loads((before / f).read_text())) != untimed(json.loads((after / f).read_text())))]
print(f"{len(files) - len(differ)} of {len(files)} files the same" + "".join(f"\n  differs: {f}" for f in differ))
sys.exit(1 if differ or not files else 0)
EOF
