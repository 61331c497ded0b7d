"""A model kind added in a few lines — one `register` call, no other file changed — goes through `collab-lessons` end to end:
train, save, load, evaluate, recommend for one user and for every user; a kind that only ranks (`rates=False`) too."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons.entry import main
from collab_lessons.errors import EXIT_CODES
from collab_lessons.model_files import ModelFileError, load_model
from collab_lessons.fast import rating_tensors
from collab_lessons.model_kinds import KINDS, ModelKind, get_kind, matrix_scorer, matrix_shapes, register, unregister


def train_item_mean(train, valid, users, items, opts, device):
    "Every user's score of an item: its mean training rating, pulled towards the global mean by `shrink` pseudo-ratings."
    x, y, _ = rating_tensors(train, dict(user=users, item=items))
    sums = torch.zeros(len(items), dtype=torch.float64).index_add_(0, x[:, 1], y.double())
    counts = torch.bincount(x[:, 1], minlength=len(items))
    means = (sums + opts['shrink'] * y.double().mean()) / (counts + opts['shrink']).clamp(min=1)  # '#na#' has no rating
    return {'scores': means.float().expand(len(users), -1).clone()}, dict(y_range=[1., 5.], squash='clip')


def train_count(train, valid, users, items, opts, device):
    "A ranking-only kind: each item's number of training ratings (no ratings predicted, no `y_range`)."
    x, _, _ = rating_tensors(train, dict(user=users, item=items))
    return {'scores': torch.bincount(x[:, 1], minlength=len(items)).float().expand(len(users), -1).clone()}, {}


@pytest.fixture
def toy_kinds():
    register(ModelKind('item_mean', train_item_mean, matrix_scorer, matrix_shapes, defaults=dict(shrink=2), options=('shrink',), model_class='ItemMean'))
    register(ModelKind('count', train_count, matrix_scorer, matrix_shapes, rates=False, model_class='Count'))
    yield
    unregister('item_mean'); unregister('count')


@pytest.fixture
def shop(tmp_path):
    rng = np.random.default_rng(1)
    rows = [(f'u{u}', f'i{i}', int(rng.integers(1, 6))) for u in range(20) for i in rng.choice(15, 8, replace=False)]
    table = pd.DataFrame(rows, columns=['user', 'item', 'rating'])
    table.to_csv(tmp_path/'shop.csv', index=False)
    table.iloc[::7].to_csv(tmp_path/'later.csv', index=False)
    return tmp_path, table


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_registered_kind_goes_through_the_command(toy_kinds, shop, capsys):
    folder, table = shop
    model = folder/'mean.pt'
    with pytest.raises(SystemExit): main(['train', '--help'])
    out = capsys.readouterr().out
    assert 'item_mean' in out and '--shrink' in out and '2 for item_mean' in out   # choices and the kind's option come from the registry
    code, out, err = run(capsys, 'train', '--ratings', folder/'shop.csv', '--model-kind', 'item_mean', '--shrink', '0', '--out', model, '--json', '-q')
    assert code == 0, err
    result = json.loads(out)
    assert result['kind'] == 'item_mean' and result['model'] == 'ItemMean' and 0 < result['valid_rmse'] < 3
    saved = load_model(model)
    pairs = saved.seen[:saved.info['n_train']].numpy()   # the training ratings, rebuilt from the file: with --shrink 0 a score is the item's mean
    train = table.merge(pd.DataFrame(dict(user=np.array(saved.users, dtype=object)[pairs[:, 0]], item=np.array(saved.items, dtype=object)[pairs[:, 1]])))
    means = train.groupby('item').rating.mean()
    assert saved.kind == 'item_mean' and len(train) == saved.info['n_train']
    # recommend: the user's unseen items, highest training mean first
    code, out, err = run(capsys, 'recommend', '--user', 'u3', '-n', '3', '--model', model, '--json')
    recs = json.loads(out)['recommendations']
    seen = set(table[table.user == 'u3'].item)
    assert code == 0 and len(recs) == 3 and not {r['title'] for r in recs} & seen
    assert [r['predicted_rating'] for r in recs] == sorted(means.drop(list(seen), errors='ignore').round(2), reverse=True)[:3]
    # evaluate against popularity on a later file
    code, out, err = run(capsys, 'evaluate', '--model', model, '--test', folder/'later.csv', '--json')
    report = json.loads(out)
    assert code == 0 and [r['model'] for r in report['results']] == ['model', 'popularity'] and report['results'][0]['rmse'] > 0
    # every user's top 2, seen items left out
    code, out, err = run(capsys, 'recommend', '--all-users', '-n', '2', '--model', model, '--out', folder/'all.csv', '-q')
    recs = pd.read_csv(folder/'all.csv', dtype=str)
    assert code == 0 and len(recs) == 2 * table.user.nunique() and recs.merge(table, on=['user', 'item']).empty
    # `similar` and `rate` say which kinds can, in one line
    for argv in (['similar', 'i3'], ['rate', 'i3=5']):
        code, out, err = run(capsys, *argv, '--model', model)
        assert code == EXIT_CODES['usage'] and len(err.strip().splitlines()) == 1 and 'item_mean' not in err.split('train one of')[-1]


def test_a_ranking_only_kind_skips_rmse_and_needs_no_y_range(toy_kinds, shop, capsys):
    folder, table = shop
    model = folder/'count.pt'
    code, out, err = run(capsys, 'train', '--ratings', folder/'shop.csv', '--model-kind', 'count', '--out', model, '--json', '-q')
    assert code == 0, err
    result = json.loads(out)
    assert result['kind'] == 'count' and 'valid_rmse' not in result
    assert 'y_range' not in load_model(model).info
    code, out, err = run(capsys, 'evaluate', '--model', model, '--test', folder/'later.csv', '--json')
    rows = json.loads(out)['results']
    assert code == 0 and rows[0]['rmse'] is None and rows[0]['mae'] is None and 0 <= rows[0]['precision@10'] <= 1
    code, out, err = run(capsys, 'recommend', '--user', 'u1', '-n', '2', '--model', model, '--json')
    assert code == 0 and len(json.loads(out)['recommendations']) == 2


def test_files_of_a_kind_that_is_not_registered_are_refused(toy_kinds, shop, capsys):
    folder, _ = shop
    assert run(capsys, 'train', '--ratings', folder/'shop.csv', '--model-kind', 'count', '--out', folder/'c.pt', '-q')[0] == 0
    unregister('count')
    try:
        with pytest.raises(ModelFileError, match="its kind 'count' is not one of course"): load_model(folder/'c.pt')
    finally: register(ModelKind('count', train_count, matrix_scorer, matrix_shapes, rates=False))


def test_register_refuses_a_taken_name_and_get_kind_names_the_kinds():
    with pytest.raises(ValueError, match="'bias' is taken"): register(ModelKind('other', train_count, matrix_scorer, matrix_shapes, aliases=('bias',)))
    with pytest.raises(ValueError, match="'fast' is taken"): register(ModelKind('fast', train_count, matrix_scorer, matrix_shapes))
    assert 'other' not in KINDS and get_kind('bias').name == 'course'
    with pytest.raises(ValueError, match=r"^Unknown model kind 'svd': choose one of course, fastai_dot, .*, blend(, \w+)*\.$"): get_kind('svd')


def test_registering_the_same_definition_again_keeps_the_registry():
    "A notebook run after its module was imported registers its kinds again: the same definition replaces the old in place."
    import collab_lessons.kinds  # noqa: F401  every kind registered
    before = list(KINDS)
    again = ModelKind(**{f: getattr(get_kind('blend'), f) for f in ModelKind.__dataclass_fields__})
    assert register(again) is again and list(KINDS) == before and get_kind('blend') is again
    other = ModelKind('blend', lambda *a: None, matrix_scorer, matrix_shapes, model_class='Other')
    with pytest.raises(ValueError, match="'blend' is taken"): register(other)
    assert list(KINDS) == before


def test_built_in_kinds_load_on_first_lookup():
    "A library user who only imports the registry still finds the library's own kinds (and fastai is not imported for it)."
    import subprocess, sys
    code = ("import sys; from collab_lessons.model_kinds import get_kind, kinds_that; "
            "print(get_kind('course').name, 'ease' in kinds_that('ranks'), 'fastai' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ['course', 'True', 'False'], out
