#!/usr/bin/env bash
# Build the docs site offline into _site/: nbdev's notebook processing (no Quarto needed), Jupyter Book 1, then
# Pagefind's search index (prefix matching, so Korean words with particles are found).
# Usage: bash tools/docs.sh [--force]   (--force reprocesses every notebook, not only the changed ones)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
stamp=".venv/.docs-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing the docs tools (the 'docs' extra) into .venv ..."
  .venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev,docs]"
  rm -f .venv/.docs-* && touch "$stamp"
fi
force=False
[ "${1:-}" = "--force" ] && force=True
echo "== nbdev: nbs/ -> _proc/ (front matter, show_doc; outputs as stored, nothing is run) =="
.venv/bin/python -c "from nbdev.serve import proc_nbs; proc_nbs(force=$force)"
echo "== Jupyter Book: _proc/ -> _site/ =="
.venv/bin/python docs_src/build_site.py
echo "== Pagefind: search index of _site/ (matches word prefixes: 가중치 finds 가중치를) =="
# Only the article of each page is indexed (not the sidebar, which lists every lesson's title on every page).
.venv/bin/python -m pagefind --site _site --root-selector 'article.bd-article' --exclude-selectors '.headerlink' --quiet
