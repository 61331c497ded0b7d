#!/usr/bin/env bash
# Run every lesson notebook (training included) and the library's pytest suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "== nbdev-test: every lesson, slow cells included =="
.venv/bin/nbdev-test --flags slow --n-workers 2 --timing --cell-timeout 1800
echo "== pytest =="
.venv/bin/pytest -q "$@"
