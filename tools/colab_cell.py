"""Give lesson notebooks the lines that install the course's library when the notebook runs in Google Colab.

    python tools/colab_cell.py nbs/course/[0-9]*.ipynb          # add or move them where needed (idempotent)
    python tools/colab_cell.py --check nbs/course/[0-9]*.ipynb  # exit 1 naming the notebooks where they are missing or misplaced

The install is guarded by `'google.colab' in sys.modules`, so nbdev-test, JupyterLab and every other local run skip it.
A lesson's first screen is its title and its idea, so the install never comes before the title: it goes at the top
of the lesson's setup cell (the first code cell after the title with no `#|` directive, where the lesson imports what
it uses), or, where a lesson has no such cell before its first `collab_lessons` import, into a short `#| hide` cell
of its own right after the title and intro. A guard cell found before the title (the old layout) is moved there.
It never carries `#| export`, so nbdev-export ignores it. Run `nbdev-clean` afterwards.
"""
import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUARD = "'google.colab' in sys.modules"
CELL_ID = 'colab-install'
IMPORTS_LIBRARY = re.compile(r'^\s*(?:from|import)\s+collab_lessons\b', re.M)


def install_spec():
    "What Colab installs: the package from the project's repository (named in pyproject.toml), as it is not on PyPI."
    project = tomllib.loads((ROOT/'pyproject.toml').read_text(encoding='utf-8'))['project']
    return f"{project['name']} @ git+{project['urls']['Repository']}"


def guard_lines():
    return ("import sys\n"
            f"if {GUARD}:  # Google Colab only: install the course's library\n"
            f"    !pip install -q '{install_spec()}'\n")


def colab_cell():
    "The guard as a cell of its own, for a lesson without a setup cell."
    src = "#| hide\n" + guard_lines().rstrip('\n')
    return {'cell_type': 'code', 'execution_count': None, 'id': CELL_ID, 'metadata': {}, 'outputs': [],
            'source': src.splitlines(keepends=True)}


def source(cell): return ''.join(cell['source'])


def has_cell(nb):
    return any(c['cell_type'] == 'code' and GUARD in source(c) for c in nb['cells'])


def title_index(nb):
    "Index of the `# title` markdown cell (None when the notebook has none)."
    return next((i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'markdown' and source(c).startswith('# ')), None)


def setup_index(nb):
    "Index of the lesson's setup cell: the first code cell after the title with no `#|` directive, before any cell importing `collab_lessons`."
    start = (title_index(nb) or 0) + 1
    for i in range(start, len(nb['cells'])):
        c = nb['cells'][i]
        if c['cell_type'] != 'code' or GUARD in source(c): continue
        if not source(c).lstrip().startswith('#|'): return i
        if IMPORTS_LIBRARY.search(source(c)): return None


def misplaced(nb):
    "Why the guard is not where a learner should meet it (None when it is)."
    if not has_cell(nb): return 'no Colab install cell'
    cells, t = nb['cells'], title_index(nb)
    if t is None: return 'no `# title` markdown cell'
    if t != 0: return 'the title is not the first cell'
    g = next(i for i, c in enumerate(cells) if c['cell_type'] == 'code' and GUARD in source(c))
    first_import = next((i for i, c in enumerate(cells) if c['cell_type'] == 'code' and IMPORTS_LIBRARY.search(source(c))), None)
    if first_import is not None and first_import < g: return 'the install comes after a cell that imports collab_lessons'
    return None


def place(nb):
    "Put the guard where `misplaced` wants it: remove a guard-only cell before the title, then merge or insert. True if changed."
    cells, t = nb['cells'], title_index(nb)
    if t is None or not misplaced(nb): return False
    old = [i for i, c in enumerate(cells[:t]) if c['cell_type'] == 'code' and GUARD in source(c)]
    for i in reversed(old): del cells[i]
    if has_cell(nb): return bool(old)  # a guard somewhere after the title: leave it where its author put it
    t = title_index(nb)
    if (s := setup_index(nb)) is not None:
        cells[s]['source'] = (guard_lines() + source(cells[s])).splitlines(keepends=True)
    else:
        at = t + 1 + (t + 1 < len(cells) and cells[t + 1]['cell_type'] == 'markdown')  # after the title and its intro
        cells.insert(at, colab_cell())
    return True


def read(path):
    try: return json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as e: sys.exit(f"{path}: not a readable notebook ({e}).")


def add_cell(path):
    "Add (or move) the Colab install of the notebook at `path` as `place` says; True when the file changed."
    nb = read(path)
    if not place(nb): return False
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+')
    ap.add_argument('--check', action='store_true', help="change nothing; exit 1 if a notebook lacks the install or has it misplaced")
    args = ap.parse_args(argv)
    if args.check:
        bad = [f'{nb} ({why})' for nb in args.notebooks if (why := misplaced(read(nb)))]
        if bad: sys.exit(f"Colab install missing or misplaced in {', '.join(bad)}: run `python tools/colab_cell.py` on them.")
        return
    changed = [nb for nb in args.notebooks if add_cell(nb)]
    print(f"Added or moved the Colab install in {len(changed)} of {len(args.notebooks)} notebooks")


if __name__ == '__main__':
    main()
