"""The shape of the library, computed from its imports: no circle, and every module's notebook comes after the
notebooks of the modules it imports, in reading order.

Reading order: the reference's foundation (nbs/reference/01-09: fastai-free, imports only itself) opens the library,
so any lesson may use it; then the course (nbs/course, in lesson order); then the rest of the reference
(nbs/reference/10-, in file order)."""
import ast
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT/'collab_lessons'
FOUNDATION_END = 10   # reference notebooks numbered below this are the foundation


# The target layout (issue 20, item 4: at most 8 modules on the longest chain of imports). Floors, lowest first;
# a module imports only modules on lower floors:
#   1  ratings, measure, outputs, ranking, scale, bench_report; the course's own models (bias, dot_product, ...), interpret
#   2  own_ratings, splits, fast (tensors and loaders), recommend, errors (exception classes name their own `kind`)
#   3  model_kinds (the registry, the scorers, `train_kind`; the fast kinds), course, evaluate
#   4  fastai_models, bayes, kernel_ae, rankers, bayes_fm, model_files, cli_options, distributed
#   5  kinds (registers the course, fastai, bpmf, kernel_ae and blend kinds, imports rankers and bayes_fm), products, launch
#   6  cli (the commands), bench_query, bench_scale, bench_ranking
#   7  bench (a wing: it imports the library)
#   8  entry (the `collab-lessons` console script: the commands of cli, and bench and `train --nproc`, the wings)
MAX_CHAIN = 8


def module_imports(path):
    "Names of the `collab_lessons` modules that the module at `path` imports (at any level of its code)."
    mods, found = {p.stem for p in LIB.glob('[!_]*.py')}, set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom) and node.module:
            name = node.module.removeprefix('collab_lessons.') if node.level == 0 else node.module
            if node.level == 1 or node.module.startswith('collab_lessons.'): found.add(name.split('.')[0])
            elif node.module == 'collab_lessons': found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('collab_lessons.')}
    return sorted(found & mods - {path.stem})


def graph():
    return {p.stem: module_imports(p) for p in sorted(LIB.glob('[!_]*.py'))}


def notebook(module):
    "The notebook a module is exported from (nbdev's header), relative to nbs/."
    m = re.search(r'File to edit: \.\./nbs/(\S+?\.ipynb)', (LIB/f'{module}.py').read_text(encoding='utf-8'))
    assert m, f'collab_lessons/{module}.py has no nbdev header naming its notebook'
    return Path(m.group(1))


def reading_position(nb):
    "Sort key of a notebook in reading order: foundation, course, rest of the reference."
    number = int(re.match(r'\d+', nb.name).group())
    if nb.parent.name == 'reference': return (0 if number < FOUNDATION_END else 2, nb.name)
    assert nb.parent.name == 'course', f'{nb}: a module notebook outside nbs/course and nbs/reference'
    return (1, nb.name)


def circles(g):
    "Every import circle found by depth-first search, as a list of module names."
    found, state = [], {}
    def visit(m, path):
        state[m] = 'open'
        for d in g[m]:
            if state.get(d) == 'open': found.append(path[path.index(d):] + [d])
            elif d not in state: visit(d, path + [d])
        state[m] = 'done'
    for m in g:
        if m not in state: visit(m, [m])
    return found


def longest_chain(g):
    "The longest chain of imports (a list of modules, the importer first)."
    @lru_cache(None)
    def chain(m): return (m,) + max((chain(d) for d in g[m]), key=len, default=())
    return list(max((chain(m) for m in g), key=len))


def forward_imports(g):
    "(module, imported module) where the imported module's notebook comes later in reading order."
    return [(m, d) for m, deps in g.items() for d in deps
            if reading_position(notebook(d)) > reading_position(notebook(m))]


def test_no_import_circle():
    assert not circles(graph())


def test_every_notebook_comes_after_the_notebooks_it_imports():
    bad = forward_imports(graph())
    assert not bad, 'modules that import a module whose notebook comes later:\n' + '\n'.join(
        f'  {m} ({notebook(m)}) imports {d} ({notebook(d)})' for m, d in bad)


def test_foundation_needs_no_fastai_to_import():
    "The foundation imports neither fastai nor anything outside itself when it loads, so any lesson may use it."
    g = graph()
    for m in g:
        nb = notebook(m)
        if reading_position(nb)[0] != 0: continue
        top = ast.parse((LIB/f'{m}.py').read_text(encoding='utf-8')).body
        fastai = [n for n in top if isinstance(n, (ast.Import, ast.ImportFrom))
                  and any(a.startswith(('fastai', 'fastcore')) for a in ([n.module or ''] if isinstance(n, ast.ImportFrom) else [x.name for x in n.names]))]
        assert not fastai, f'{m} ({nb}) imports fastai at load time'
        outside = [d for d in g[m] if reading_position(notebook(d))[0] != 0]
        assert not outside, f'{m} ({nb}) imports {outside}, which are not in the foundation'


def test_the_checks_catch_planted_faults():
    g = {'a': ['b'], 'b': ['c'], 'c': ['a'], 'd': []}
    assert circles(g) == [['a', 'b', 'c', 'a']]
    assert longest_chain({'a': ['b'], 'b': ['c'], 'c': [], 'd': ['c']}) == ['a', 'b', 'c']
    assert reading_position(Path('reference/03_splits.ipynb')) < reading_position(Path('course/10_data.ipynb')) \
        < reading_position(Path('reference/11_recommend.ipynb'))


def test_longest_chain_is_at_most_8():
    chain = longest_chain(graph())
    print(' -> '.join(chain), f'({len(chain)} modules)')
    assert len(chain) <= MAX_CHAIN, f"the longest chain of imports has {len(chain)} modules: {' -> '.join(chain)}"
