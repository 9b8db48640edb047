#!/usr/bin/env bash
# The distillation guide's command, run from the repository root: the same as scripts/distill_pipeline.sh (which it
# runs with the same arguments), e.g.
#   bash distill_pipeline.sh --teacher bert --student tinybert --patients 570 --dataset ohiot1dm --root-path dataset/ohio
# All flags: bash distill_pipeline.sh --help
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/distill_pipeline.sh" "$@"
