#!/usr/bin/env bash
# Distillation pipeline: teacher -> student baseline -> distilled student -> evaluation, one CSV row per patient.
# Usage: bash scripts/distill_pipeline.sh --teacher bert --student tinybert --patients 1001,1002 \
#          --teacher-epochs 2 --student-epochs 2 --distill-epochs 2 [--dry-run] [...]
# Runs from any folder once the project is installed (pip install --no-build-isolation -e ., see README). Relative
# paths (--out, default ./distillation_runs; --csv; --root-path) are relative to the folder you run it from.
# All flags: python -m distillation.pipeline --help
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_installed distillation
exec python -m distillation.pipeline "$@"
