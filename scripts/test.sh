#!/usr/bin/env bash
# Set up whatever is missing, then run the whole test suite (what .ci/run calls).
# pytest exits 5 when it collected no test: that fails here like any other non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
exec .venv/bin/python -m pytest "$@"
