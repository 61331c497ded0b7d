#!/usr/bin/env bash
# The project's tests, in two tiers.
#   bash tools/test.sh          fast tier (<= 5 min on two cores): unit, property and CLI tests (pytest -m "not slow")
#                               and every notebook with its `#| slow` (training) cells skipped
#   bash tools/test.sh --full   full tier (<= 20 min, what CI runs): the fast tier, then every notebook's slow cells,
#                               the slow tests (the benchmark's smoke run among them), the docs site in chromium, JupyterLab
# Extra arguments go to every pytest call (e.g. -x). Each part prints its wall time. Tests run on two workers
# (pytest-xdist), as the notebooks do; --dist loadscope keeps each test module (and each lesson's exercise solutions, one class per lesson) on one worker.
set -euo pipefail
full=0
if [ "${1:-}" = "--full" ]; then full=1; shift; fi
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

start=$(date +%s)
part_start=$start
part() {  # part NAME: print how long the previous part took, then announce the next one
  local now; now=$(date +%s)
  [ -n "${part_name:-}" ] && echo "-- ${part_name}: $(( now - part_start )) s"
  part_name="$1"; part_start=$now
  [ -n "$1" ] && echo "== $1 =="
  return 0
}

part "notebooks, slow cells skipped (nbdev-test)"
.venv/bin/nbdev-test --n-workers 2 --timing
part "pytest -m 'not slow'"
.venv/bin/pytest -q -n 2 --dist loadscope -m "not slow" "$@"
part ""
fast_s=$(( $(date +%s) - start ))
echo "Fast tier: ${fast_s} s"
[ "$full" = 1 ] || exit 0

# Notebooks that hold slow cells run again whole, with those cells: the cheap cells before them run twice.
# nbdev-test takes one path, so the notebooks are picked by a regex of their file names.
slow_nbs=$(grep -l '"#| slow' nbs/*/[0-9]*.ipynb | xargs -n1 basename | paste -sd'|')
part "notebooks with their slow cells: ${slow_nbs//|/ }"
.venv/bin/nbdev-test --flags slow --n-workers 2 --timing --cell-timeout 1800 --file-re "^(${slow_nbs//./\\.})\$"
part "pytest -m slow"
.venv/bin/pytest -q -n 2 --dist loadscope -m slow "$@"

part "docs site: build offline, then open every page in chromium"
if ! command -v chromium >/dev/null || [ -z "$(fc-list :lang=ko family 2>/dev/null)" ]; then
  echo "The browser tests need Debian's chromium and a Korean font: apt-get install -y chromium fonts-nanum"
  exit 1
fi
bash tools/docs.sh --force
export DOCS_SCREENSHOTS="${DOCS_SCREENSHOTS:-$PWD/docs_screenshots}"
COLLAB_LESSONS_BROWSER=1 .venv/bin/pytest -q tests/browser --ignore=tests/browser/test_jupyterlab.py "$@"
part "JupyterLab: open a lesson in chromium, Run All"
COLLAB_LESSONS_BROWSER=1 .venv/bin/pytest -q tests/browser/test_jupyterlab.py "$@"
echo "Screenshots: $DOCS_SCREENSHOTS/"

part ""
echo "Fast tier: ${fast_s} s; full tier: $(( $(date +%s) - start )) s"
