#!/usr/bin/env bash
# Start JupyterLab on the lessons (nbs/): bash tools/jupyterlab.sh [more `jupyter lab` options, e.g. --port 8890]
# As root (a container) it adds --allow-root; in a container also pass --ip 0.0.0.0 to reach it from the host.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
# The kernel's display name must be what nbdev-clean stores, or every lesson opens marked modified.
.venv/bin/python tools/lab_kernel.py install >/dev/null
as_root=()
[ "$(id -u)" = 0 ] && as_root=(--allow-root)
exec .venv/bin/jupyter lab "${as_root[@]}" --notebook-dir nbs "$@"
