"Checks on the lesson notebooks themselves: the numbers their Korean prose quotes come from stored outputs."
import json
import re
from pathlib import Path

import pytest

NBS = Path(__file__).parents[1]/'nbs'
LESSONS = sorted(NBS.glob('*/[0-9]*.ipynb'))  # both books: nbs/course and nbs/reference
# Numbers quoted in prose that are not measured by the notebooks: the seed notebook's historical
# result (fastai of its day), the theoretical share of distinct rows under sampling with replacement,
# and GLocal-K's published u1 RMSE.
NOT_MEASURED = {'0.8166', '0.632', '0.8889'}
NUMBER = re.compile(r'(?<![\d.])\d\.\d{3,4}(?!\d)')


def cells(nb_path, kind):
    return [c for c in json.loads(nb_path.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == kind]


def output_text(cell):
    parts = []
    for out in cell.get('outputs', []):
        data = out.get('data', {})
        parts += [''.join(data.get('text/plain', '')), ''.join(data.get('text/html', '')), ''.join(out.get('text', ''))]
    return '\n'.join(parts)


def stored_numbers():
    "Numbers in the lessons' stored outputs and in the benchmark results the speed lesson reads."
    found = set()
    for nb in LESSONS:
        for cell in cells(nb, 'code'):
            found.update(float(x) for x in re.findall(r'-?\d+\.\d+', output_text(cell)))
    for results in (NBS.parent/'bench'/'results').glob('*.json'):
        found.update(float(x) for x in re.findall(r'-?\d+\.\d+', results.read_text()))
    return found


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_prose_numbers_match_stored_outputs(nb):
    stored = stored_numbers()
    prose = ' '.join(''.join(c['source']) for c in cells(nb, 'markdown'))
    for quoted in set(NUMBER.findall(prose)) - NOT_MEASURED:
        digits = len(quoted.split('.')[1])
        assert any(round(abs(x), digits) == float(quoted) for x in stored), f'{nb.name} quotes {quoted}, found in no stored output'


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_every_code_cell_has_run(nb):
    # A code cell whose last line shows a value must have stored output: the notebook was executed, not typed in.
    for cell in cells(nb, 'code'):
        src = ''.join(cell['source']).strip()
        last = src.splitlines()[-1] if src else ''
        shows_value = last and not last.startswith(('#', 'from ', 'import ', ' ', 'with ', 'assert', 'test_', 'class ', 'def ', 'return', 'warnings.', 'set_seed(')) \
            and '=' not in last.split('(')[0] and not src.startswith('#| export') and '#| hide' not in src \
            and '#| eval: false' not in src  # shown, never run (nbdev-test skips it too)
        if shows_value and not cell.get('outputs'):
            pytest.fail(f'{nb.name}: cell ending in {last!r} has no stored output')


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.name)
def test_prose_names_no_private_functions(nb):
    "nbdev links every backticked name to its docs anchor, and private names (`_x`) have none: the link would be broken."
    private = [m for c in cells(nb, 'markdown') for m in re.findall(r'`(_[A-Za-z]\w*)`', ''.join(c['source']))]
    assert not private, f"{nb.name} backticks private names {private}: describe them in words instead."


ALL_NBS = sorted(p for p in NBS.rglob('*.ipynb') if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts))
# Absolute paths of this or any machine, installed-package paths and warnings have no place in what a reader sees.
BAD_OUTPUT = re.compile(r'(?<![\w./~-])(?:/root|/home|/tmp|/work|/usr|/opt|/var|/Users)/|site-packages|\b\w*Warning:|UserWarning|FutureWarning|DeprecationWarning')
# Words about how the course is made (issues, targets set for it) rather than about recommenders.
# An upstream project's issue (a citation such as "fastai GitHub issue #3906" or an /issues/ URL) is fine.
PROCESS_WORDS = re.compile(r'이슈|(?<!GitHub )(?<!/)\bissues?\b(?! tracker)(?!/)|이 프로젝트|프로젝트가 (?:정한|세운)|목표치|(?:정한|세운) 목표|목표인|HOSTILE|리뷰어', re.I)


def bad_output(text): return BAD_OUTPUT.findall(text)


def process_words(text): return PROCESS_WORDS.findall(text)


def test_output_and_prose_checks_catch_planted_strings():
    planted = ['/root/.fastai/data/ml-100k', 'File "/work/x/collab_lessons/fast.py"', '/tmp/tmpab12/model.pt',
               '.venv/lib/python3.11/site-packages/fastai/learner.py', 'UserWarning: The given NumPy array',
               'FutureWarning: You are using torch.load', 'RuntimeWarning: overflow']
    assert all(bad_output(s) for s in planted), [s for s in planted if not bad_output(s)]
    clean = ['epoch 0 train_loss 0.91', 'https://files.grouplens.org/datasets/movielens/ml-100k.zip', 'ml-100k/u.data', 'model.pt']
    assert not any(bad_output(s) for s in clean), [s for s in clean if bad_output(s)]
    for s in ['이 프로젝트가 정한 목표 0.900', 'issue 4의 목표', "The issue's two targets", '목표치를 넘었어', '이슈 10에서']:
        assert process_words(s), s
    for s in ['목표 품질 도달 시간', '타깃(target) 데이터', '이 모델의 목표는 평점을 맞히는 거야', 'a fastai issue tracker',
              'fastai GitHub issue #3906', 'https://github.com/fastai/fastai/issues/3906']:
        assert not process_words(s), s


@pytest.mark.parametrize('nb', ALL_NBS, ids=lambda p: p.stem)
def test_stored_outputs_have_no_paths_or_warnings(nb):
    found = [(i, m) for i, c in enumerate(json.loads(nb.read_text(encoding='utf-8'))['cells']) if c['cell_type'] == 'code'
             for m in bad_output(output_text(c))]
    assert not found, f'{nb.name}: stored outputs show {found[:5]} (cell index, match): re-run without them'


@pytest.mark.parametrize('nb', ALL_NBS, ids=lambda p: p.stem)
def test_lessons_say_nothing_about_the_process(nb):
    found = [m for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] for m in process_words(''.join(c['source']))]
    assert not found, f'{nb.name} talks about how the course is made ({found}): say what the reader learns instead'


CORE = sorted((NBS/'course').glob('[0-9]*.ipynb'))  # every course lesson


def _colab_cell():
    import importlib.util
    spec = importlib.util.spec_from_file_location('colab_cell', NBS.parent/'tools'/'colab_cell.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize('nb', CORE, ids=lambda p: p.stem)
def test_first_screen_is_the_title_and_the_idea(nb):
    "Title, then the intro; the one setup cell holds only the Colab install and imports; plumbing before the first section is short."
    colab_cell = _colab_cell()
    book = json.loads(nb.read_text(encoding='utf-8'))
    cells = book['cells']
    src = lambda c: ''.join(c['source'])
    assert cells[0]['cell_type'] == 'markdown' and src(cells[0]).startswith('# ') and '\n> ' in src(cells[0]), \
        f'{nb.name}: the first cell must be the title (`# 제목` then a `>` line)'
    assert cells[1]['cell_type'] == 'markdown' and not src(cells[1]).startswith('#'), f'{nb.name}: the intro must follow the title'
    assert colab_cell.misplaced(book) is None, f'{nb.name}: {colab_cell.misplaced(book)} (run python tools/colab_cell.py on it)'
    s = colab_cell.setup_index(book)
    if s is not None and colab_cell.GUARD in src(cells[s]):
        body = [l for l in src(cells[s]).splitlines() if l.strip()]
        assert all(re.match(r"(import |from \S+ import |%|if 'google\.colab'|\s+!pip install)", l) for l in body), \
            f'{nb.name}: the setup cell should hold only the Colab install and imports'
    first_section = next(i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and src(c).startswith('## '))
    for c in cells[:first_section]:
        if c['cell_type'] == 'code' and src(c).startswith('#| hide'):
            assert len(src(c).splitlines()) <= 6 and 'assert' not in src(c) and 'test_' not in src(c).split('import')[0], \
                f'{nb.name}: a hidden cell before the first section is long or checks something: {src(c)[:80]!r}'


# How the project is built and checked, which a learner of the course has no use for.
PROJECT_WORDS = re.compile(r'tests/|\bCI\b|\bpytest\b|TrimHeap|malloc_trim|DivergedError|통과 기준|합격선|개발 (?:컴퓨터|머신|환경)|강의 저장소')


@pytest.mark.parametrize('nb', CORE, ids=lambda p: p.stem)
def test_course_prose_says_nothing_about_the_project(nb):
    found = [m for c in cells(nb, 'markdown') for m in PROJECT_WORDS.findall(''.join(c['source']))]
    assert not found, f'{nb.name} prose names project machinery {found}: say what the learner needs instead'
    assert PROJECT_WORDS.search('`tests/test_course.py`가 확인해') and PROJECT_WORDS.search('콜백 `TrimHeap`')


# The notebooks that document library machinery rather than teach (issue "the course a learner reads"): each is a
# module's notebook in the library reference, and none is a lesson.
MACHINERY = ['ratings', 'own_ratings', 'splits', 'measure', 'outputs', 'model_files', 'products', 'errors', 'cli',
             'bench_query', 'cli_options', 'launch', 'bench_scale', 'bench', 'bench_report']


def topic(nb): return re.sub(r'^\d+[a-z]?_', '', nb.stem)


def test_machinery_is_in_the_reference_not_the_course():
    course = {topic(nb) for nb in (NBS/'course').glob('*.ipynb')}
    reference = {topic(nb) for nb in (NBS/'reference').glob('*.ipynb')}
    assert not course & set(MACHINERY), f'machinery notebooks in the course: {course & set(MACHINERY)}'
    assert set(MACHINERY) <= reference, f'machinery notebooks missing from the reference: {set(MACHINERY) - reference}'


# How the project is built has no place in a lesson's prose: its test files, CI, pass marks, the machine it is developed on.
BUILD_WORDS = re.compile(r'\btests?/|(?<![A-Za-z])CI(?![A-Za-z])|pytest|nbdev-test|통과 기준|합격선|개발(?:용)? (?:컴퓨터|머신)|우리 (?:컴퓨터|머신)|이 저장소')


def test_build_words_check_catches_planted_strings():
    assert all(BUILD_WORDS.search(s) for s in ['`tests/test_course.py`가 확인해', 'CI에서 돌려', '통과 기준은 0.9야', '개발 컴퓨터에서 잰 시간'])
    assert not any(BUILD_WORDS.search(s) for s in ['테스트 세트의 RMSE', 'test_eq로 확인해', 'CIFAR', '검증 세트'])


@pytest.mark.parametrize('nb', sorted((NBS/'course').glob('[0-9]*.ipynb')), ids=lambda p: p.stem)
def test_course_prose_says_nothing_about_how_the_project_is_built(nb):
    found = [m.group(0) for c in cells(nb, 'markdown') for m in BUILD_WORDS.finditer(''.join(c['source']))]
    assert not found, f'{nb.name} talks about how the project is built: {found}'
