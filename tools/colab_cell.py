"""Give lesson notebooks a first cell that installs the course's library when the notebook runs in Google Colab.

    python tools/colab_cell.py nbs/[0-9]*.ipynb          # insert it where it is missing (idempotent)
    python tools/colab_cell.py --check nbs/[0-9]*.ipynb  # exit 1 naming the notebooks without it

The cell is guarded by `'google.colab' in sys.modules`, so nbdev-test, JupyterLab and every other local run skip
the install; it has no `#| export`, so nbdev-export ignores it; `#| hide` keeps it off the docs site.
Run `nbdev-clean` afterwards.
"""
import argparse
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUARD = "'google.colab' in sys.modules"
CELL_ID = 'colab-install'


def install_spec():
    "What Colab installs: the package from the project's repository (named in pyproject.toml), as it is not on PyPI."
    project = tomllib.loads((ROOT/'pyproject.toml').read_text(encoding='utf-8'))['project']
    return f"{project['name']} @ git+{project['urls']['Repository']}"


def colab_cell():
    src = ("#| hide\n"
           "# Google Colab only: install the course's library (does nothing anywhere else)\n"
           "import sys\n"
           f"if {GUARD}:\n"
           f"    !pip install -q '{install_spec()}'")
    return {'cell_type': 'code', 'execution_count': None, 'id': CELL_ID, 'metadata': {}, 'outputs': [],
            'source': src.splitlines(keepends=True)}


def has_cell(nb):
    return any(c['cell_type'] == 'code' and GUARD in ''.join(c['source']) for c in nb['cells'])


def read(path):
    try: return json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as e: sys.exit(f"{path}: not a readable notebook ({e}).")


def add_cell(path):
    "Insert the Colab cell first in the notebook at `path` unless it has one; True when the file changed."
    nb = read(path)
    if has_cell(nb): return False
    nb['cells'].insert(0, colab_cell())
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+')
    ap.add_argument('--check', action='store_true', help="change nothing; exit 1 if a notebook lacks the cell")
    args = ap.parse_args(argv)
    if args.check:
        missing = [nb for nb in args.notebooks if not has_cell(read(nb))]
        if missing: sys.exit(f"No Colab install cell in {', '.join(missing)}: run `python tools/colab_cell.py` on them.")
        return
    changed = [nb for nb in args.notebooks if add_cell(nb)]
    print(f"Added the Colab install cell to {len(changed)} of {len(args.notebooks)} notebooks")


if __name__ == '__main__':
    main()
