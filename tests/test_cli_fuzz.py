"""Fuzz test of the command line: hypothesis draws whole argument lists and `cli.main` runs them in-process.

Every run must end with a documented exit code other than 1 (the "unexpected error" code), report an error as one
line on stderr (one JSON object on stdout with `--json`), and leave nothing half-written: no temporary files or
folders, every model file loadable, every course folder complete, and the files it was not asked to write unchanged.

Training runs for real, on a table of a few hundred ratings (the real datasets are swapped for it), with at most
one epoch per model, so an example that gets past the checks reaches real work in about a second.
`COLLAB_LESSONS_EXAMPLES=1000` searches longer; the default keeps this file under a minute on one CPU thread.
"""
import contextlib
import io
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import collab_lessons.cli as cli
import collab_lessons.products as products
from collab_lessons.bias import DotProductBias
from collab_lessons.entry import main
from collab_lessons.errors import EXIT_CODES
from collab_lessons import course
from collab_lessons.course import fit_learner, train_step as real_train_step
from collab_lessons.model_files import COURSE_FILES, ModelFileError, load_model, save_model

EXAMPLES = int(os.environ.get('COLLAB_LESSONS_EXAMPLES', 150))
DOCUMENTED = set(EXIT_CODES.values()) - {EXIT_CODES['error']}
ERROR_LINE = re.compile(r'collab-lessons( \w+)?: 오류: .+ / error: .+')


def _tiny_ratings():
    "24 users x 16 movies, about half the pairs rated (the same table every time)."
    rng = np.random.default_rng(0)
    users, movies = np.meshgrid(np.arange(1, 25), np.arange(1, 17), indexing='ij')
    keep = rng.random(users.shape) < 0.5
    return pd.DataFrame(dict(user=users[keep], movie=movies[keep], rating=rng.integers(1, 6, int(keep.sum())),
                             title=[f'Movie {m} (19{m + 70})' for m in movies[keep]]))

RATINGS = _tiny_ratings()
TITLES = ['#na#'] + sorted(RATINGS.title.unique())
USERS = ['#na#'] + sorted(RATINGS.user.unique().tolist())


def _good_model_bytes():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        return save_model(Path(d)/'m.pt', DotProductBias(len(USERS), len(TITLES), 4), USERS, TITLES, RATINGS).read_bytes()

GOOD_MODEL = _good_model_bytes()


def _sandbox(root):
    "Files of every kind for the drawn paths to point at."
    (root/'good.pt').write_bytes(GOOD_MODEL)
    (root/'junk.pt').write_bytes(np.random.default_rng(1).bytes(500))
    (root/'a_file').write_text('not a folder')
    (root/'empty_dir').mkdir()
    (root/'full_dir').mkdir()
    (root/'full_dir'/'notes.txt').write_text('mine')
    (root/'rates.txt').write_text('# mine\nMovie 3 (1973)=5\nmovie 5 (1975) = 1\n')
    (root/'latin1.txt').write_bytes('Caf\xe9 (1990)=4\n'.encode('latin-1'))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob('*') if p.is_file()}


PATHS = ['good.pt', 'junk.pt', 'a_file', 'a_file/m.pt', 'a_file/deeper/out', 'empty_dir', 'full_dir', 'missing.pt',
         'new_dir/m.pt', 'new_dir', 'rates.txt', 'latin1.txt', '.', 'x' * 300, 'empty_dir/m.pt', 'new dir/ünïcode.pt']
odd_text = st.text(alphabet=st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'), max_size=12)
paths = st.one_of(st.sampled_from(PATHS).map(lambda p: ('sandbox', p)), odd_text)
models = st.one_of(st.just(('sandbox', 'good.pt')), paths)  # often a good model, so that queries reach real work
numbers = st.one_of(st.integers(-3, 4).map(str), st.integers(-2**40, 2**40).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(str),
                    st.sampled_from(['nan', 'inf', '-inf', '1e309', '1e-400', '0x10', '1_0', ' 2 ', '３', 'ten', '', '-0', '2.5']))
titles = st.one_of(st.sampled_from(TITLES[1:4] + ['movie 2 (1972)', '  MOVIE 1 (1971) ', 'Movie', '#na#']), odd_text)
users = st.one_of(st.sampled_from(['1', '24', '25', '0', '#na#', ' 3 ']), odd_text)
rates = st.one_of(st.tuples(titles, numbers).map(lambda t: f'{t[0]}={t[1]}'), odd_text)

COMMON = {'--quiet': None, '--json': None}
OPTIONS = {
    'course': {'--dataset': st.sampled_from(['ml-100k', 'ml-latest-small', 'ml-1m']), '--out': paths,
               '--final-only': None, '--epochs': numbers},
    'train': {'--dataset': st.sampled_from(['ml-100k', 'ml-latest-small']), '--split': st.sampled_from(['random', 'u1', 'ua', 'u9']),
              '--model-kind': st.sampled_from(['bias', 'course', 'fastai_dot', 'fast', 'lazy', 'nn']), '--factors': numbers, '--epochs': numbers,
              '--lr': st.one_of(numbers, st.sampled_from(['1e9', '1e6', '0.01'])), '--wd': numbers, '--bs': numbers,
              '--seed': numbers, '--out': paths},
    'recommend': {'--user': users, '--all-users': None, '--out': paths, '-n': numbers, '--model': models},
    'evaluate': {'--split': st.sampled_from(['u1', 'ua', 'u9']), '--test': paths, '--model': models},
    'similar': {'-n': numbers, '--min-ratings': numbers, '--model': models},
    'rate': {'--file': paths, '-n': numbers, '--model': models},
}
POSITIONAL = {'similar': st.lists(titles, min_size=0, max_size=2), 'rate': st.lists(rates, min_size=0, max_size=3)}


@st.composite
def argv(draw):
    "A command line: a subcommand (now and then a wrong one), some of its options with drawn values, stray tokens."
    command = draw(st.sampled_from(list(OPTIONS) + ['fly', '--version']))
    words = [command]
    options = {**OPTIONS.get(command, {}), **COMMON}
    for name in draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=6)):
        value = options[name]
        words += [name] if value is None else [name, draw(value)]
    words += draw(POSITIONAL.get(command, st.just([])))
    if command in ('train', 'course') and '--epochs' not in words: words += ['--epochs', '1']
    if draw(st.integers(0, 9)) == 0: words.insert(draw(st.integers(0, len(words))), draw(st.one_of(odd_text, numbers)))
    return words


@pytest.fixture(scope='module')
def small_world():
    "Real datasets swapped for `RATINGS` (the canonical splits: its first 80% and the rest), one epoch at most per model."
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(products, 'load_ratings', lambda name: RATINGS)
        mp.setattr(products, 'load_split', lambda name: (RATINGS.iloc[:150], RATINGS.iloc[150:]))
        mp.setattr(course, 'fit_learner', lambda learn, epochs, *a, **k: fit_learner(learn, min(epochs, 1), *a, **k))
        mp.setattr(course, 'train_step', lambda r, s, epochs=5, **k: real_train_step(r, s, epochs=min(epochs, 1), **k))
        yield


def _resolve(words, root):
    "The drawn words with sandbox paths made absolute."
    return [str(root/w[1]) if isinstance(w, tuple) else w for w in words]


def _check_nothing_half_written(root, before, argv):
    "No temporary files or folders; untouched files unchanged; every model file loadable; course folders complete."
    for p in root.rglob('*'):
        rel = p.relative_to(root).as_posix()
        assert not any(part.startswith('.') for part in Path(rel).parts), f'left behind: {rel} after {argv}'
        if p.is_file() and rel in before and str(p) not in argv: assert p.read_bytes() == before[rel], f'{rel} changed by {argv}'
        if p.is_file() and p.suffix == '.pt' and rel != 'junk.pt':
            try: load_model(p)
            except ModelFileError as e: pytest.fail(f'{rel} is not a whole model after {argv}: {e}')
        if p.is_dir() and (p/'results.csv').exists(): assert sorted(q.name for q in p.iterdir()) == sorted(COURSE_FILES)


@contextlib.contextmanager
def _inside(folder):
    "Run the block with `folder` as the working folder (`contextlib.chdir` needs Python 3.11)."
    before = os.getcwd()
    os.chdir(folder)
    try: yield
    finally: os.chdir(before)


def _run(words, root):
    "Exit code, stdout and stderr of `main(words)` run in the folder `root`; argparse's exits come back as codes too."
    out, err = io.StringIO(), io.StringIO()
    with _inside(root), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main(words)
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(words=argv())
def test_any_command_line_ends_cleanly(small_world, words):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        before = _sandbox(root)
        line = _resolve(words, root)
        code, out, err = _run(line, root)
        assert code in DOCUMENTED, (line, code, err)
        if code != 0:
            errors = [l for l in err.splitlines() if ERROR_LINE.fullmatch(l)]
            assert len(errors) == 1 and err.splitlines()[-1] == errors[0], (line, err)
            if '--quiet' in line or code == 2: assert len(err.splitlines()) == 1, (line, err)
        if '--json' in line and line[0] in OPTIONS and (code != 2 or out):  # argparse's errors come before --json is read
            assert json.loads(out).get('exit_code', 0) == code, (line, out)
        _check_nothing_half_written(root, before, line)


def test_the_generator_reaches_real_work_and_every_kind_of_error(small_world):
    "Over a fixed sample, the drawn command lines include successes and each of the usual error kinds."
    seen = set()
    @settings(max_examples=60, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(words=argv())
    def sample(words):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            _sandbox(root)
            seen.add(_run(_resolve(words, root), root)[0])
    sample()
    assert {0, 2} <= seen and len(seen & {3, 4, 5, 6}) >= 2, seen
