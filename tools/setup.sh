#!/usr/bin/env bash
# Create .venv and install the project with its dev tools; skipped when pyproject.toml is unchanged.
# Sourced by tools/course.sh and tools/test.sh, so it must not change the caller's shell options.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || return 1
if [ ! -x .venv/bin/python ]; then
  echo "Creating the virtual environment in .venv ..."
  python3 -m venv .venv || return 1
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing collab_lessons and its dev tools into .venv (the first time takes a few minutes) ..."
  .venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev,bench]" || return 1
  rm -f .venv/.installed-* && touch "$stamp"
fi

# Two shared cores run bs=64 training 10-20x slower with two torch threads than with one.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

# Use a local ML-100k copy instead of downloading when fastai has none yet:
# $ML100K_DIR, or the shared data folder beside this checkout (how tests and CI run offline).
if [ -z "${FASTAI_HOME:-}" ] && [ ! -f "$HOME/.fastai/data/ml-100k/u.data" ]; then
  src="${ML100K_DIR:-../shared/data/ml-100k}"
  if [ -f "$src/u.data" ]; then
    FASTAI_HOME="$(mktemp -d)"
    export FASTAI_HOME
    mkdir -p "$FASTAI_HOME/data" && cp -r "$src" "$FASTAI_HOME/data/ml-100k" && chmod -R u+w "$FASTAI_HOME"
    echo "Using the ML-100k copy from $src (FASTAI_HOME=$FASTAI_HOME)."
  fi
fi
