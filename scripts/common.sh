# What the shell entry points share; sourced, never run:  source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# It sets `repo`, the repository root, so a script runs from any folder and can still name the repository's files.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# require_installed PACKAGE: stop with one line and status 2 unless PACKAGE imports in this Python, i.e. unless the
# project is installed (`python -m ...` from another folder finds the packages only then).
require_installed() {
  python -c "import $1" 2>/dev/null || {
    echo "error: the project is not installed in this Python: in the repository run" \
      "'pip install --no-build-isolation -e .' (README)" >&2
    exit 2
  }
}
