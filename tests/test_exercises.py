"""The core lessons' 연습 문제 and 복습 질문: every exercise has a hint and a worked solution in closed <details>
blocks, every code solution runs here on tiny data and its result is checked, and each lesson has a figure."""
import json
import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use('Agg')

NBS = Path(__file__).resolve().parents[1]/'nbs'
CORE = ['10_data', '20_dot_product', '30_prediction_range', '40_bias', '50_weight_decay', '60_from_scratch', '70_course']
HINT, SOLUTION, ANSWER = '<summary>힌트</summary>', '<summary>풀이</summary>', '<summary>답</summary>'


def cells(lesson):
    return json.loads((NBS/f'{lesson}.ipynb').read_text(encoding='utf-8'))['cells']


def section(lesson, title):
    "Markdown sources of the cells after the `## title` heading, up to the next `## ` heading."
    out, inside = [], False
    for c in cells(lesson):
        text = ''.join(c['source'])
        if c['cell_type'] == 'markdown' and text.startswith('## '):
            inside = text.strip() == f'## {title}'
            continue
        if inside and c['cell_type'] == 'markdown': out.append(text)
    return out


def numbered(lesson, title):
    "{number: markdown} of the `**N.**` items of a section."
    items = {}
    for text in section(lesson, title):
        m = re.match(r'\*\*(\d+)\.\*\*', text)
        assert m, f"{lesson}: a cell under '## {title}' does not start with **N.**: {text[:60]!r}"
        items[int(m.group(1))] = text
    return items


def details(text, summary):
    "Bodies of the closed <details> blocks of `text` with `summary`."
    return re.findall(r'<details>' + re.escape(summary) + r'(.*?)</details>', text, flags=re.S)


def solution_code(text):
    "The Python code blocks of an exercise's worked solution, joined."
    return '\n'.join(b for body in details(text, SOLUTION) for b in re.findall(r'```python\n(.*?)```', body, flags=re.S))


def figures(lesson):
    return sum('image/png' in o.get('data', {}) for c in cells(lesson) for o in c.get('outputs', []))


def test_every_exercise_has_a_hint_and_a_solution_and_counts(capsys):
    rows = []
    for lesson in CORE:
        ex, qs = numbered(lesson, '연습 문제'), numbered(lesson, '복습 질문')
        solved = [n for n, t in ex.items() if len(details(t, HINT)) == 1 and len(details(t, SOLUTION)) == 1]
        answered = [n for n, t in qs.items() if len(details(t, ANSWER)) == 1]
        rows.append(dict(lesson=lesson, exercises=len(ex), with_hint_and_solution=len(solved),
                         questions=len(qs), answered=len(answered), figures=figures(lesson)))
    table = pd.DataFrame(rows).set_index('lesson')
    with capsys.disabled(): print('\n' + table.to_string() + f"\ntotal questionnaire questions: {table.questions.sum()}")
    assert (table.exercises > 0).all(), table
    assert (table.with_hint_and_solution == table.exercises).all(), f"exercises without a hint or solution:\n{table}"
    assert (table.answered == table.questions).all(), f"questions without an answer:\n{table}"
    assert (table.questions >= 5).all() and table.questions.sum() >= 40, table
    assert (table.figures >= 1).all(), f"a core lesson without a stored figure:\n{table}"


@pytest.mark.parametrize('lesson', CORE)
def test_numbering_and_closed_blocks(lesson):
    for title in ('연습 문제', '복습 질문'):
        items = numbered(lesson, title)
        assert sorted(items) == list(range(1, len(items) + 1)), f"{lesson} '{title}' numbers: {sorted(items)}"
    text = '\n'.join(section(lesson, '연습 문제') + section(lesson, '복습 질문'))
    assert '<details open' not in text, f"{lesson}: a hint, solution or answer is open"
    assert text.count('<details>') == text.count('</details>'), f"{lesson}: unbalanced <details> blocks"


@pytest.mark.parametrize('lesson', CORE)
def test_hidden_cells_are_short(lesson):
    long = [''.join(c['source'])[:60] for c in cells(lesson)
            if c['cell_type'] == 'code' and ''.join(c['source']).startswith('#| hide') and len(c['source']) > 8]
    assert not long, f"{lesson} has hidden cells longer than 8 lines (move the checks to tests/): {long}"


# --- the code solutions, run on tiny data --------------------------------------------------------------------------

def _tiny_ratings(n_users=40, n_movies=25, seed=0):
    "Ratings 1-5 from two hidden taste dimensions, about 60% of the pairs, with titles (two ids share one title)."
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(n_users, 2)) @ rng.normal(size=(2, n_movies))
    users, movies = np.nonzero(rng.random((n_users, n_movies)) < 0.6)
    rating = np.clip(np.round(3.5 + taste[users, movies]), 1, 5).astype('int64')
    titles = [f'Movie {min(m, n_movies - 2) + 1} (1995)' for m in movies]
    return pd.DataFrame(dict(user=users + 1, movie=movies + 1, rating=rating, timestamp=0, title=titles))


def _quiet_fit(learn, *args, **kwargs):
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(*args, **kwargs)
    return learn


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    "Names the lessons define before their exercises, built on tiny data."
    from fastai.collab import CollabDataLoaders
    from fastai.learner import Learner
    from fastai.layers import Embedding, sigmoid_range
    from fastai.losses import MSELossFlat
    from fastai.tabular.core import TabWeightedDL
    from fastai.torch_core import Module
    from torch import nn
    from collab_lessons.splits import collab_dls
    from collab_lessons.bias import DotProductBias
    from collab_lessons.course import COURSE_STEPS, run_course, train_step
    from collab_lessons.dot_product import DotProduct, rmse, valid_scores
    from collab_lessons.from_scratch import ScratchDotProductBias, create_params, to_scratch
    from collab_lessons.prediction_range import DotProductRange
    from collab_lessons.weight_decay import param_norms
    torch.set_num_threads(1)
    ns = dict(np=np, pd=pd, torch=torch, nn=nn, Module=Module, Embedding=Embedding, sigmoid_range=sigmoid_range,
              CollabDataLoaders=CollabDataLoaders, Learner=Learner, MSELossFlat=MSELossFlat, TabWeightedDL=TabWeightedDL,
              collab_dls=collab_dls, DotProduct=DotProduct, DotProductRange=DotProductRange, DotProductBias=DotProductBias,
              ScratchDotProductBias=ScratchDotProductBias, create_params=create_params, to_scratch=to_scratch,
              rmse=rmse, valid_scores=valid_scores,
              param_norms=param_norms, COURSE_STEPS=COURSE_STEPS, train_step=train_step, run_course=run_course)
    ratings = _tiny_ratings()
    dls = collab_dls(ratings)
    n_users, n_movies = len(dls.classes['user']), len(dls.classes['title'])
    path = tmp_path_factory.mktemp('ml-100k')
    (path/'u.item').write_bytes('1|Toy Story (1995)|x\n2|Misérables, Les (1995)|x\n'.encode('latin-1'))
    one_hot = torch.zeros(n_users)
    one_hot[3] = 1.0
    ns.update(ratings=ratings, dls=dls, n_users=n_users, n_movies=n_movies, path=path, one_hot=one_hot,
              user1=np.array([0.98, 0.9, -0.9]), user2=np.array([0.9, 0.8, -0.6]))
    model = DotProductBias(n_users, n_movies, 8)
    learn = _quiet_fit(Learner(collab_dls(ratings), model, loss_func=MSELossFlat(), metrics=rmse), 2, 5e-3, wd=0.1)
    learn_no_wd = _quiet_fit(Learner(collab_dls(ratings), DotProductBias(n_users, n_movies, 8),
                                     loss_func=MSELossFlat(), metrics=rmse), 2, 5e-3, wd=0)
    embedding_model = DotProductBias(n_users, n_movies, 8)
    ns.update(model=model, learn=learn, learn_no_wd=learn_no_wd, embedding_model=embedding_model,
              xb=dls.one_batch()[0], dls_default=collab_dls(ratings, dl_type=TabWeightedDL, drop_last=True))
    return ns


def _range_learn(ns):
    "Lesson 30's `learn`: a trained `DotProductRange`."
    learn = ns['Learner'](ns['collab_dls'](ns['ratings']), ns['DotProductRange'](ns['n_users'], ns['n_movies'], 8),
                          loss_func=ns['MSELossFlat'](), metrics=ns['rmse'])
    return dict(learn=_quiet_fit(learn, 1, 5e-3))


SETUP = {'30_prediction_range': _range_learn}
FINITE = lambda *xs: all(math.isfinite(float(x)) for x in xs)
CHECKS = {
    ('10_data', 1): lambda ns: ns['opposite'] < 0,
    ('10_data', 2): lambda ns: ns['error'] == 'UnicodeDecodeError',
    ('10_data', 3): lambda ns: ns['n_movie_classes'] == ns['ratings'].movie.nunique() + 1,
    ('10_data', 4): lambda ns: ns['counts'].sum() == len(ns['ratings']) and ns['most_common'] in range(1, 6),
    ('10_data', 5): lambda ns: ns['per_user'].sum() == len(ns['ratings']) and 0 < ns['row_density'].min() <= 1,
    ('20_dot_product', 1): lambda ns: set(ns['results']) == {5, 20, 100} and FINITE(*ns['results'].values()),
    ('20_dot_product', 2): lambda ns: ns['same_grad'] is True,
    ('20_dot_product', 3): lambda ns: 0 < ns['per_batch'] < 1.1 * ns['whole'],
    ('20_dot_product', 4): lambda ns: 0 < ns['mae'] <= ns['rmse_value'],
    ('30_prediction_range', 1): lambda ns: len(ns['results']) == 3 and FINITE(*ns['results'].values()),
    ('30_prediction_range', 2): lambda ns: ns['matches'] and ns['x'].grad[1] > 1000 * ns['x'].grad[0] > 0,
    ('30_prediction_range', 3): lambda ns: ns['inside'] is True,
    ('30_prediction_range', 4): lambda ns: 0 <= ns['outside'] <= 1,
    ('40_bias', 1): lambda ns: ns['bias_only']['step'] == 'bias_only' and FINITE(ns['bias_only']['valid_mse']),
    ('40_bias', 2): lambda ns: len(ns['top5']) == 5 and set(ns['top5']) <= set(ns['dls'].classes['title']),
    ('40_bias', 3): lambda ns: -1 <= ns['corr'] <= 1,
    ('50_weight_decay', 1): lambda ns: list(ns['wd_table'].wd) == [0.01, 0.03, 0.3]
                                       and ns['wd_table'].total_norm.is_monotonic_decreasing,
    ('50_weight_decay', 2): lambda ns: (ns['l2_norms'] > 0).all() and len(ns['l2_norms']) == 4,
    ('50_weight_decay', 3): lambda ns: ns['preds_wd'].std() < ns['preds_no_wd'].std(),
    ('50_weight_decay', 4): lambda ns: 0.78 < ns['two_epochs'] < 0.95,
    ('50_weight_decay', 5): lambda ns: ns['loaders'].shape == (2, 2) and FINITE(*ns['loaders'].to_numpy().ravel()),
    ('60_from_scratch', 1): lambda ns: FINITE(ns['std1_mse']),
    ('60_from_scratch', 2): lambda ns: ns['same'] is True,
    ('60_from_scratch', 3): lambda ns: ns['users'].grad[[0, 2]].eq(1).all() and ns['users'].grad[1].eq(0).all(),
    ('60_from_scratch', 4): lambda ns: ns['n_params'] == 1,
    ('70_course', 1): lambda ns: ns['learn_100'].model.user_factors.weight.shape[1] == 100,
    ('70_course', 2): lambda ns: list(ns['table'].step) == ['bias', 'weight_decay'],
    ('70_course', 3): lambda ns: sorted(ns['by_seed']) == [42, 43, 44] and FINITE(*ns['by_seed'].values()),
}


def code_solutions():
    return {(lesson, n): code for lesson in CORE for n, text in numbered(lesson, '연습 문제').items()
            if (code := solution_code(text))}


def test_every_code_solution_has_a_check():
    assert set(code_solutions()) == set(CHECKS), (
        f"code solutions without a check: {sorted(set(code_solutions()) - set(CHECKS))}; "
        f"checks without a code solution: {sorted(set(CHECKS) - set(code_solutions()))}")


@pytest.mark.parametrize('key', sorted(CHECKS), ids=lambda k: f'{k[0]}-{k[1]}')
def test_code_solution_runs_and_is_right(base, key):
    code = code_solutions().get(key)
    assert code, f"{key[0]} exercise {key[1]} has no Python code block in its solution"
    ns = dict(base)
    if key[0] in SETUP: ns.update(SETUP[key[0]](ns))
    exec(compile(code, f'{key[0]} exercise {key[1]}', 'exec'), ns)
    assert CHECKS[key](ns), f"{key[0]} exercise {key[1]}: the solution ran but its result is wrong"
