"""A lesson runs on its own: copied alone into an empty folder (as a learner downloads it, or opens it in Colab)
and executed there with the installed `collab_lessons` and nothing else of the checkout (no `nbs/`, no sibling
notebooks, no relative paths).

Cells flagged with the project's `tst_flags` (`#| slow`, `#| notest`) and `#| eval: false` are left out, as in a
plain `nbdev-test`; COLLAB_LESSONS_STANDALONE_SLOW=1 runs the `#| slow` cells too (lesson 70's take ~6 minutes).
"""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'/'course'   # the lessons; the reference is in nbs/reference
sys.path.insert(0, str(ROOT/'tools'))
import colab_cell  # noqa: E402

SLOW = os.environ.get('COLLAB_LESSONS_STANDALONE_SLOW') == '1'
# Run first in the kernel: where it runs and what it can import from.
PROBE = """import json, os, sys
print(json.dumps({'cwd': os.getcwd(), 'files': sorted(os.listdir('.')), 'path': sys.path}))"""


def skipped(cell):
    "True for cells a plain `nbdev-test` skips: a `tst_flags` flag (unless slow ones are wanted) or `eval: false`."
    flags = {'notest'} | (set() if SLOW else {'slow'})
    for line in cell.source.splitlines():
        m = re.match(r'#\|\s*(.*?)\s*$', line)
        if not m: break
        if m.group(1) in flags or re.fullmatch(r'eval:\s*false', m.group(1)): return True
    return False


def run_alone(lesson, folder):
    "Copy `lesson` alone into `folder` (with its Colab cell), run it there; the probe's findings."
    nb_path = folder/lesson
    shutil.copy(NBS/lesson, nb_path)
    colab_cell.add_cell(nb_path)
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells = [nbformat.v4.new_code_cell(PROBE)] + [c for c in nb.cells if not (c.cell_type == 'code' and skipped(c))]
    env_path = os.environ.pop('PYTHONPATH', None)   # the kernel inherits the environment: nothing extra on its path
    try: NotebookClient(nb, timeout=1800, kernel_name='python3', resources={'metadata': {'path': str(folder)}}).execute()
    finally:
        if env_path is not None: os.environ['PYTHONPATH'] = env_path
    return json.loads(nb.cells[0].outputs[0]['text'])


@pytest.mark.slow
@pytest.mark.parametrize('lesson', [
    '10_data.ipynb',
    '70_course.ipynb',
])
def test_lesson_runs_alone_in_an_empty_folder(lesson, tmp_path, ml100k):
    probe = run_alone(lesson, tmp_path)
    assert Path(probe['cwd']).resolve() == tmp_path.resolve()
    assert probe['files'] == [lesson], probe['files']
    checkout = [p for p in probe['path'] if p and Path(p).resolve() in (ROOT, NBS.parent, NBS)]
    assert not checkout, f"the checkout is on the kernel's sys.path: {checkout}"


def _nb(*cells):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(c[3:]) if c.startswith('md:') else nbformat.v4.new_code_cell(c)
                                           for c in cells])


def test_colab_install_goes_into_the_setup_cell_after_the_title(tmp_path):
    nb_path = tmp_path/'lesson.ipynb'
    nbformat.write(_nb('md:# 제목\n\n> A lesson.', 'md:소개야.', "#| hide\nimport warnings",
                       "import sys\n'google.colab' in set(sys.modules)", '#| export\nfrom collab_lessons.bias import DotProductBias'), nb_path)
    assert colab_cell.misplaced(nbformat.read(nb_path, as_version=4)) == 'no Colab install cell'
    assert colab_cell.add_cell(nb_path) and not colab_cell.add_cell(nb_path)
    nb = nbformat.read(nb_path, as_version=4)
    assert [c.cell_type for c in nb.cells] == ['markdown', 'markdown', 'code', 'code', 'code'] and colab_cell.misplaced(nb) is None
    setup = nb.cells[3].source
    assert setup.startswith('import sys\nif ' + colab_cell.GUARD) and '!pip install' in setup and setup.endswith("in set(sys.modules)")
    assert not any(l.startswith('#| export') for l in setup.splitlines())   # nbdev-export ignores it
    NotebookClient(nb, timeout=120, kernel_name='python3', resources={'metadata': {'path': str(tmp_path)}}).execute()
    assert nb.cells[3].outputs[0]['data']['text/plain'] == 'False'   # outside Colab nothing is installed


def test_colab_cell_before_the_title_is_moved_after_it(tmp_path):
    "The old layout (install cell first) is fixed; a lesson with no setup cell gets a hidden install cell after its intro."
    nb_path = tmp_path/'lesson.ipynb'
    nb = _nb('md:# 제목', 'md:소개야.', '#| export\nfrom collab_lessons.bias import DotProductBias', 'DotProductBias')
    nb.cells.insert(0, nbformat.from_dict(colab_cell.colab_cell()))
    nbformat.write(nb, nb_path)
    assert colab_cell.misplaced(nbformat.read(nb_path, as_version=4)) == 'the title is not the first cell'
    assert colab_cell.add_cell(nb_path) and not colab_cell.add_cell(nb_path)
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.cells[0].source == '# 제목' and nb.cells[2].id == colab_cell.CELL_ID and colab_cell.misplaced(nb) is None
    with pytest.raises(SystemExit, match='lesson.ipynb'):
        nb.cells[2], nb.cells[3] = nb.cells[3], nb.cells[2]   # the library imported before it is installed
        nbformat.write(nb, nb_path)
        colab_cell.main(['--check', str(nb_path)])


def test_kernel_metadata_survives_nbdev_clean(tmp_path):
    "What JupyterLab compares on open (tools/lab_kernel.py stamps it) is kept by nbdev-clean, so the tab opens clean."
    import lab_kernel
    from nbdev.clean import nbdev_clean
    nb_path = tmp_path/'40_bias.ipynb'
    shutil.copy(NBS/'40_bias.ipynb', nb_path)
    lab_kernel.stamp(nb_path)
    cwd = os.getcwd()
    os.chdir(ROOT)   # nbdev reads [tool.nbdev] from the project's pyproject.toml
    try: nbdev_clean(str(nb_path))
    finally: os.chdir(cwd)
    meta = json.loads(nb_path.read_text(encoding='utf-8'))['metadata']
    assert meta['language_info'] == lab_kernel.language_info() and meta['kernelspec'] == lab_kernel.KERNELSPEC
    assert not lab_kernel.stamp(nb_path)
    assert not lab_kernel.stamp(NBS/'40_bias.ipynb'), "nbs/course/40_bias.ipynb: run `python tools/lab_kernel.py stamp` on it"


def _lessons():
    "Numbered notebooks with code of their own (the glossary has none)."
    def has_code(p): return any(c['cell_type'] == 'code' and c.get('id') != colab_cell.CELL_ID for c in json.loads(p.read_text(encoding='utf-8'))['cells'])
    return [p for p in sorted(NBS.parent.glob('*/[0-9]*.ipynb')) if has_code(p)]


@pytest.mark.parametrize('nb_path', _lessons(), ids=lambda p: p.stem)
def test_every_lesson_has_the_colab_cell_and_opens_clean(nb_path):
    "Each lesson installs the library in Colab, and stores the kernel metadata JupyterLab writes (so its tab opens unmodified)."
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    assert colab_cell.has_cell(nb), f'{nb_path.name}: run python tools/colab_cell.py on it'
    assert nb['metadata'].get('kernelspec', {}).get('display_name') == 'python3' and 'language_info' in nb['metadata'], \
        f'{nb_path.name}: run python tools/lab_kernel.py stamp on it'
