"""Every model kind end to end: train tiny -> save -> load -> recommend / similar / rate (or its clear refusal) ->
evaluate -> recommend for all users; `evaluate` against hand-computed numbers; the query path without fastai."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons.entry import main
from collab_lessons.errors import EXIT_CODES
from collab_lessons.model_files import MODEL_VERSION, ModelFileError, load_model, model_record, save_trained
from collab_lessons.model_kinds import KINDS, Trained, kind_name, kinds_that
from collab_lessons.products import all_users_top_n, evaluate_model, evaluate_saved

FOLD_IN_KINDS, SIMILAR_KINDS = kinds_that('folds_in'), kinds_that('similar')
TINY = ['--epochs', '2', '--samples', '8', '--ranks', '3', '--seeds', '0', '--hidden', '8', '--factors', '4']


@pytest.fixture(scope='module')
def shop(tmp_path_factory):
    "A CSV of one's own ratings (string ids, own column names) and a later file with some unknown users and items."
    rng = np.random.default_rng(0)
    rows = [(f'c{u}', f'SKU-{i:02d}', int(rng.integers(1, 6))) for u in range(30) for i in rng.choice(25, 12, replace=False)]
    folder = tmp_path_factory.mktemp('shop')
    table = pd.DataFrame(rows, columns=['customer', 'sku', 'stars']).sample(frac=1, random_state=0)
    shop, rest = table.iloc[:300], table.iloc[300:]
    shop.to_csv(folder/'shop.csv', index=False)
    rest = rest[rest.customer.isin(shop.customer) & rest.sku.isin(shop.sku)]
    later = pd.concat([rest, pd.DataFrame([('new1', 'SKU-01', 4), ('c1', 'SKU-99', 3)], columns=table.columns)])
    later.to_csv(folder/'later.csv', index=False)
    return folder, shop


def trained(folder, kind):
    "The model of `kind` trained on the shop file (by the round-trip test, or now if that did not run)."
    path = folder/f'{kind}.pt'
    if not path.exists(): assert main(['train', '--ratings', str(folder/'shop.csv'), '--model-kind', kind, *TINY, '--out', str(path), '-q']) == 0
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize('kind', KINDS)
def test_every_kind_round_trips_through_its_file(kind, shop, capsys):
    folder, table = shop
    model = folder/f'{kind}.pt'
    code, out, err = run(capsys, 'train', '--ratings', folder/'shop.csv', '--model-kind', kind, *TINY, '--out', model, '-q', '--json')
    assert code == 0, err
    result = json.loads(out)
    assert result['kind'] == kind and (0.3 < result['valid_rmse'] < 3 if KINDS[kind].rates else 'valid_rmse' not in result)
    saved = load_model(model)
    assert saved.kind == kind and saved.info['split'] == 'random' and saved.items[0] == '#na#'
    assert torch.load(model, weights_only=True)['version'] == MODEL_VERSION == 3
    # recommend: seen items left out, for a string user id
    code, out, err = run(capsys, 'recommend', '--user', 'c3', '-n', '4', '--model', model, '--json')
    recs = json.loads(out)['recommendations']
    seen = set(table[table.customer == 'c3'].sku)
    assert code == 0 and len(recs) == 4 and not {r['title'] for r in recs} & seen
    # similar and rate: an answer where the kind supports it, otherwise exit 2 naming the kinds that do
    code, out, err = run(capsys, 'similar', 'SKU-03', '-n', '3', '--min-ratings', '0', '--model', model)
    assert code == (0 if kind in SIMILAR_KINDS else EXIT_CODES['usage'])
    if kind not in SIMILAR_KINDS: assert ', '.join(SIMILAR_KINDS) in err and len(err.splitlines()) == 1
    code, out, err = run(capsys, 'rate', 'SKU-03=5', 'SKU-07=1', '-n', '3', '--model', model)
    assert code == (0 if kind in FOLD_IN_KINDS else EXIT_CODES['usage'])
    if kind not in FOLD_IN_KINDS: assert ', '.join(FOLD_IN_KINDS) in err and len(err.splitlines()) == 1
    # evaluate on a later file: unknown users and items are counted, not fatal
    code, out, err = run(capsys, 'evaluate', '--model', model, '--test', folder/'later.csv', '--json')
    report = json.loads(out)
    assert code == 0 and report['unknown_users'] == 1 and report['unknown_items'] == 1
    assert report['n_scored'] == report['n_test'] - 2 and [r['model'] for r in report['results']] == ['model', 'popularity']
    # every user's top 3, seen items excluded
    code, out, err = run(capsys, 'recommend', '--all-users', '-n', '3', '--model', model, '--out', folder/f'{kind}.csv', '-q')
    recs = pd.read_csv(folder/f'{kind}.csv', dtype=str)
    assert code == 0 and len(recs) == 3 * table.customer.nunique()
    assert recs.groupby('user')['rank'].apply(list).map(lambda r: r == ['1', '2', '3']).all()
    assert recs.merge(table, left_on=['user', 'item'], right_on=['customer', 'sku']).empty


def test_all_users_parquet_and_checked_output(shop, capsys, tmp_path):
    folder, table = shop
    model = folder/'quick.pt'
    assert run(capsys, 'train', '--ratings', folder/'shop.csv', '--model-kind', 'lazy', '--out', model, '-q')[0] == 0
    code, out, err = run(capsys, 'recommend', '--all-users', '-n', '2', '--model', model, '--out', tmp_path/'r.parquet', '--json')
    recs = pd.read_parquet(tmp_path/'r.parquet')
    assert code == 0 and json.loads(out)['rows'] == len(recs) == 2 * table.customer.nunique()
    assert list(recs.columns) == ['user', 'rank', 'item', 'title', 'score']
    (tmp_path/'file').write_text('x')
    assert run(capsys, 'recommend', '--all-users', '--model', model, '--out', tmp_path/'file'/'r.csv')[0] == EXIT_CODES['output']
    assert run(capsys, 'recommend', '--all-users', '--model', model, '--out', tmp_path/'r.txt')[0] == EXIT_CODES['usage']
    assert run(capsys, 'recommend', '--all-users', '--model', model)[0] == EXIT_CODES['usage']
    assert run(capsys, 'recommend', '--user', 'c1', '--out', tmp_path/'r.csv', '--model', model)[0] == EXIT_CODES['usage']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['file', 'r.parquet']


def _hand_model(tmp_path):
    "A kernel_ae-kind file whose scores are typed in: 2 users, 12 items; user 1 rated item 10, user 2 rated item 30."
    scores = torch.ones(3, 13)
    scores[1, [1, 2, 3]] = torch.tensor([4., 2., 5.])  # user 1: items 10, 20, 30
    scores[2, [1, 2, 3]] = torch.tensor([1., 3., 5.])
    items = ['#na#'] + [10 * i for i in range(1, 13)]
    trained = Trained('kernel_ae', {'scores': scores}, dict(y_range=[1., 5.], squash='clip'), ['#na#', 1, 2], items, {}, {})
    train = pd.DataFrame(dict(user=[1, 2], movie=[10, 30], rating=[4., 5.], title=['ten', 'thirty']))
    return load_model(save_trained(tmp_path/'hand.pt', trained, train, info=dict(split='u1')))


def test_evaluate_against_hand_computed_numbers(tmp_path):
    saved = _hand_model(tmp_path)
    test = pd.DataFrame(dict(user=[1, 1, 2, 3, 1], movie=[20, 30, 10, 10, 990], rating=[3., 5., 2., 4., 3.]))
    table, report = evaluate_model(saved.model, saved.users, saved.items, saved.seen, saved.counts, test)
    assert report == dict(n_test=5, n_scored=3, unknown_users=1, unknown_items=1)
    model, popular = table.to_dict(orient='records')
    # predictions 2, 5, 1 against 3, 5, 2: errors -1, 0, -1
    assert model['rmse'] == pytest.approx((2 / 3) ** 0.5, abs=1e-4) and model['mae'] == pytest.approx(2 / 3, abs=1e-4)
    # only user 1 has a test rating >= 4 (item 30); item 10 is seen, so 30 (score 5) ranks first of ten
    assert model['precision@10'] == 0.1 and model['ndcg@10'] == 1.0 and model['users'] == 1
    assert popular['rmse'] is None and popular['precision@10'] == 0.1 and popular['ndcg@10'] == 1.0


def test_evaluate_leaves_every_known_rating_out_of_the_ranking_but_the_test_ones(tmp_path):
    "History the model file holds beyond its training part (the held-out share) is not a candidate; a test rating is, even if the file holds it."
    saved = _hand_model(tmp_path)
    test = pd.DataFrame(dict(user=[1], movie=[20], rating=[5.]))   # user 1's relevant item, scored 2 (third of ten)
    _, ndcg = _ranks(evaluate_model(saved.model, saved.users, saved.items, saved.seen, saved.counts, test)[0])
    held_out = torch.cat([saved.seen, torch.tensor([[1, 3]])])      # user 1 also rated item 30 (score 5), outside training
    _, ndcg_held = _ranks(evaluate_model(saved.model, saved.users, saved.items, held_out, saved.counts, test)[0])
    assert ndcg_held > ndcg, 'the held-out item 30 must leave the ranking, lifting item 20 by one place'
    both = torch.cat([held_out, torch.tensor([[1, 2]])])              # the file holds the test rating itself too
    assert _ranks(evaluate_model(saved.model, saved.users, saved.items, both, saved.counts, test)[0])[1] == ndcg_held


def _ranks(table):
    row = table.to_dict(orient='records')[0]
    return row['precision@10'], row['ndcg@10']


def test_evaluate_refuses_a_split_the_model_was_not_trained_on(tmp_path):
    saved = _hand_model(tmp_path)
    with pytest.raises(ValueError, match=r'trained on the u1 split, not on u2\.base.*--split u1'):
        evaluate_saved(saved, split='u2')


def test_all_users_top_n_leaves_out_seen_and_na(tmp_path):
    saved = _hand_model(tmp_path)
    recs = all_users_top_n(saved, n=2)
    assert recs[['user', 'rank']].values.tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    assert recs.title.tolist()[0] == 'thirty' and 'ten' not in recs[recs.user == 1].title.tolist()
    assert (recs.item_index > 0).all() and recs.title.tolist()[2] == '20'  # user 2 rated 30: 20 (score 3) is next


@pytest.mark.parametrize('version', [1, 2])
def test_older_files_still_load(tmp_path, version):
    from collab_lessons.bias import DotProductBias
    model = DotProductBias(3, 4, 2)
    record = model_record(model, ['#na#', 1, 2], ['#na#', 'A', 'B', 'C'])
    record['weights'] = {k.replace('item_', 'movie_'): w for k, w in record['weights'].items()}  # their names before version 3
    if version == 1:
        for key in ('kind', 'items'): del record[key]
        for key in ('squash', 'n_train'): del record['info'][key]
    torch.save(dict(record, version=version), tmp_path/'old.pt')
    saved = load_model(tmp_path/'old.pt')
    x = torch.tensor([[1, 2], [2, 3]])
    assert saved.kind == 'course' and saved.items == saved.titles
    assert 'movie_factors.weight' in torch.load(tmp_path/'old.pt', weights_only=True)['weights']
    with torch.no_grad(): assert torch.allclose(saved.model(x), model(x), atol=1e-6)


@pytest.mark.parametrize('change, message', [
    (lambda r: r.update(kind='svd'), "kind 'svd' is not one of"),
    (lambda r: r.update(items=r['items'][:-1]), "'items' and 'titles' differ in length"),
    (lambda r: r['info'].update(squash='tanh'), "info['squash'] is 'tanh'"),
    (lambda r: r['info'].update(blend_weight=1.5), "info['blend_weight'] is 1.5"),
    (lambda r: r['info'].update(n_train=10**6), "info['n_train'] is more than"),
    (lambda r: r['weights'].update(scores=torch.zeros(2, 2)), 'scores is torch.Size([2, 2])'),
    (lambda r: r.pop('kind'), "lacks ['kind']"),
])
def test_new_fields_are_validated(tmp_path, change, message):
    saved = _hand_model(tmp_path)
    record = torch.load(tmp_path/'hand.pt', weights_only=True)
    record.update(kind='blend', weights=dict(record['weights'], **{k: torch.zeros(s) for k, s in
                  [('user_factors.weight', (3, 2)), ('user_bias.weight', (3, 1)), ('item_factors.weight', (13, 2)), ('item_bias.weight', (13, 1))]}))
    record['info'].update(blend_weight=0.5, n_factors=2)
    torch.save(record, tmp_path/'ok.pt')
    assert load_model(tmp_path/'ok.pt').kind == 'blend'
    change(record)
    torch.save(record, tmp_path/'bad.pt')
    with pytest.raises(ModelFileError, match=__import__('re').escape(message)): load_model(tmp_path/'bad.pt')


def test_fastai_nn_layers_are_validated(shop, tmp_path):
    folder, _ = shop
    record = torch.load(trained(folder, 'fastai_nn'), weights_only=True)
    record['info']['layers'] = [7, 3]
    torch.save(record, tmp_path/'bad.pt')
    with pytest.raises(ModelFileError, match='do not fit'): load_model(tmp_path/'bad.pt')
    record['info']['emb_sizes'] = [0, 3]
    torch.save(record, tmp_path/'bad.pt')
    with pytest.raises(ModelFileError, match=r"info\['emb_sizes'\]"): load_model(tmp_path/'bad.pt')


def test_bias_is_an_alias_of_course():
    assert kind_name('bias') == 'course'
    with pytest.raises(ValueError, match='choose one of course, fastai_dot'): kind_name('svd')


QUERY = """
import sys
from collab_lessons.entry import main
import collab_lessons.products, collab_lessons.model_files, collab_lessons.outputs, collab_lessons.errors, collab_lessons.evaluate, collab_lessons.interpret
codes = [main(argv) for argv in ({argvs})]
print(codes, 'fastai' in sys.modules, sorted(m for m in sys.modules if m.startswith('fastai'))[:3])
"""


@pytest.mark.slow
def test_query_commands_do_not_import_fastai(shop):
    folder, _ = shop
    model = str(trained(folder, 'fast'))
    argvs = [['recommend', '--user', 'c3', '--model', model, '-q'], ['similar', 'SKU-03', '--min-ratings', '0', '--model', model, '-q'],
             ['rate', 'SKU-03=5', '--model', model, '-q'], ['evaluate', '--model', model, '--test', str(folder/'later.csv'), '-q'],
             ['recommend', '--all-users', '--model', model, '--out', str(folder/'q.csv'), '-q']]
    done = subprocess.run([sys.executable, '-c', QUERY.format(argvs=', '.join(map(repr, argvs)))],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == '[0, 0, 0, 0, 0] False []', done.stderr[-2000:]
