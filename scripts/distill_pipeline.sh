#!/usr/bin/env bash
# Distillation pipeline: teacher -> student baseline -> distilled student -> evaluation, one CSV row per patient.
# Usage: bash scripts/distill_pipeline.sh --teacher bert --student tinybert --patients 1001,1002 \
#          --teacher-epochs 2 --student-epochs 2 --distill-epochs 2 [--dry-run] [...]
# Run from the repository root. All flags: python -m distillation.pipeline --help
set -euo pipefail
exec python -m distillation.pipeline "$@"
