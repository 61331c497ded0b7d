#!/usr/bin/env bash
# The course's main job: set up .venv on the first run, then `collab-lessons course` (arguments are passed on,
# e.g. --dataset ml-latest-small, --final-only, --out DIR; see .venv/bin/collab-lessons course --help).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
.venv/bin/collab-lessons course "$@"
