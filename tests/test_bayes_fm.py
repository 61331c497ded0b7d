"Tests of `collab_lessons.bayes_fm`: the Bayesian factorization machine kind on small synthetic ratings and side files."
import json

import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons.bayes_fm import encode_features, implicit_block, read_side_file, table_block
from collab_lessons.entry import main
from collab_lessons.ratings import DataError
from collab_lessons.model_files import load_model, save_trained
from collab_lessons.model_kinds import get_kind, train_kind


def planted(n_users=60, n_items=40, n=1500, seed=0):
    "Ratings 3 + a_u * c_i + noise, with a_u and c_i (+1 or -1) given only by the side tables' `kind` column."
    g = np.random.default_rng(seed)
    a, c = g.choice([-1., 1.], n_users), g.choice([-1., 1.], n_items)
    u, i = g.integers(1, n_users + 1, n), g.integers(1, n_items + 1, n)
    ratings = pd.DataFrame(dict(user=u, movie=i, rating=3 + a[u - 1] * c[i - 1] + 0.3 * g.standard_normal(n), title=[f'm{k}' for k in i]))
    users = pd.DataFrame(dict(user=np.arange(1, n_users + 1), kind=np.where(a > 0, 'p', 'q')))
    items = pd.DataFrame(dict(movie=np.arange(1, n_items + 1), kind=np.where(c > 0, 'p', 'q')))
    return ratings, users, items


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('fm')
    ratings, users, items = planted()
    ratings.assign(rating=ratings.rating.round().clip(1, 5))[['user', 'movie', 'rating']].drop_duplicates(['user', 'movie']).to_csv(folder/'stars.csv', index=False)
    users.to_csv(folder/'users.csv', index=False)
    items.to_csv(folder/'items.csv', index=False)
    return folder, ratings


def test_recovers_a_planted_bilinear_signal_from_side_features(files):
    folder, ratings = files
    fit, held = ratings.iloc[:1200], ratings.iloc[1200:]
    torch.manual_seed(0)
    model = train_kind('bayes_fm', fit, held, 'cpu', ranks=[2], n_samples=60, user_features=folder/'users.csv', item_features=folder/'items.csv')
    mean_rmse = float(((held.rating - fit.rating.mean())**2).mean()**.5)
    assert model.scores['valid_rmse'] < 0.6 * mean_rmse  # the signal's spread is 1, the noise 0.3
    nf = model.info['n_factors']
    assert nf % 2 == 0 and model.info['squash'] == 'clip'
    assert model.weights['user_factors.weight'].shape == (len(model.users), nf)
    assert model.weights['item_factors.weight'].shape == (len(model.items), nf)
    assert model.weights['user_bias.weight'].shape == (len(model.users), 1)
    assert model.info['side_groups'] == [['implicit', 'kind'], ['implicit', 'kind']]


def test_ids_only_still_beat_the_mean(files):
    _, ratings = files
    fit, held = ratings.iloc[:1200], ratings.iloc[1200:]
    model = train_kind('bayes_fm', fit, held, 'cpu', ranks=[2], n_samples=40, fm_groups=[])
    assert model.scores['valid_rmse'] < float(((held.rating - fit.rating.mean())**2).mean()**.5)


def test_implicit_block_rows_have_unit_norm():
    X = implicit_block(torch.tensor([0, 0, 1, 0]), torch.tensor([1, 2, 2, 1]), 3, 4).to_dense()
    assert torch.allclose(X.pow(2).sum(1), torch.tensor([1., 1., 0.]))
    assert torch.allclose(X[0], torch.tensor([0, 2**-.5, 2**-.5, 0]))


@pytest.mark.parametrize('text,ids,message', [
    ('uid,age\n1,20\n', ['#na#', '1'], "no 'user' column"),
    ('user,job\n1,a\n1,b\n', ['#na#', '1'], 'user 1 has more than one row'),
    ('user,job\n1,a\n', ['#na#', '1', '7'], 'user 7 of the ratings has no row'),
    ('user,age,job\n1,20,a\n2,,b\n', ['#na#', '1', '2'], "column 'age' is empty for user 2"),
])
def test_bad_side_files_get_one_line_errors(tmp_path, text, ids, message):
    path = tmp_path/'users.csv'
    path.write_text(text)
    with pytest.raises(DataError, match=message) as e: table_block(read_side_file(path, 'user'), ids, path)
    assert str(path) in str(e.value) and '\n' not in str(e.value)


def test_missing_side_file_is_named(tmp_path):
    with pytest.raises(DataError, match='no such side-feature file'): read_side_file(tmp_path/'nope.csv', 'movie')


def test_round_trip_through_a_model_file_and_the_command(files, tmp_path, capsys):
    folder, ratings = files
    out = tmp_path/'fm.pt'
    assert main(['train', '--ratings', str(folder/'stars.csv'), '--model-kind', 'bayes_fm', '--samples', '10', '--ranks', '2',
                 '--user-features', str(folder/'users.csv'), '--item-features', str(folder/'items.csv'), '--out', str(out), '-q']) == 0
    saved = load_model(out)
    assert saved.kind == 'bayes_fm' and get_kind(saved.kind).similar
    scores = saved.model.user_scores(torch.tensor([1, 2]))
    assert scores.shape == (2, len(saved.titles)) and scores.min() >= ratings.rating.min() - 1e-6
    assert main(['recommend', '--user', '1', '-n', '3', '--model', str(out), '-q']) == 0
    assert 'm' in capsys.readouterr().out


def test_a_bad_side_file_stops_training_with_the_data_exit_code(files, tmp_path, capsys):
    folder, _ = files
    (tmp_path/'users.csv').write_text('customer,kind\n1,p\n')
    code = main(['train', '--ratings', str(folder/'stars.csv'), '--model-kind', 'bayes_fm', '--samples', '4', '--ranks', '2',
                 '--user-features', str(tmp_path/'users.csv'), '--out', str(tmp_path/'x.pt'), '-q'])
    err = capsys.readouterr().err
    assert code != 0 and "no 'user' column" in err and not (tmp_path/'x.pt').exists()


def test_blend_weights_recover_a_planted_mix_and_sum_to_one():
    from collab_lessons.bayes_fm import blend_weights
    g = torch.Generator().manual_seed(0)
    P = 1 + 4 * torch.rand(200, 3, generator=g)
    assert torch.allclose(blend_weights(P[:6], P[:6, 0]), torch.full((3,), 1 / 3))  # too few ratings: the mean
    w = blend_weights(P, P @ torch.tensor([0.2, 0.5, 0.3]))
    assert torch.allclose(w, torch.tensor([0.2, 0.5, 0.3]), atol=1e-4)
    assert torch.allclose(blend_weights(P[:, :1], P[:, 0]), torch.ones(1))
    with pytest.raises(ValueError, match='one row per rating'): blend_weights(P, P[:10, 0])


def test_fm_blend_trains_saves_loads_and_recommends_through_the_command(files, tmp_path, capsys):
    folder, ratings = files
    out = tmp_path/'blend.pt'
    assert main(['train', '--ratings', str(folder/'stars.csv'), '--model-kind', 'fm_blend', '--samples', '10', '--ranks', '2',
                 '--epochs', '2', '--seeds', '0', '--hidden', '8', '--user-features', str(folder/'users.csv'),
                 '--item-features', str(folder/'items.csv'), '--out', str(out), '--json', '-q']) == 0
    result = json.loads(capsys.readouterr().out)
    assert result['kind'] == 'fm_blend' and 0 < result['valid_rmse'] < 2
    saved = load_model(out)
    w = saved.info['blend_weights']
    assert saved.kind == 'fm_blend' and len(saved.info['blend_parts']) == 3 and abs(sum(w) - 1) < 1e-3
    scores = saved.model.user_scores(torch.tensor([1, 2]))
    assert scores.shape == (2, len(saved.titles)) and scores.min() >= 1 - 1e-6 and scores.max() <= 5 + 1e-6
    assert main(['recommend', '--user', '1', '-n', '3', '--model', str(out), '-q']) == 0
    assert 'm' in capsys.readouterr().out


def test_ordinal_fm_draws_latents_inside_their_intervals_and_learns_the_levels(files, tmp_path):
    from collab_lessons.bayes_fm import _bounds, sample_latent
    c = torch.tensor([-1., 0., 1.], dtype=torch.float64)
    levels = torch.tensor([0, 1, 2, 3] * 50)
    z = sample_latent(torch.randn(200, dtype=torch.float64) * 3, c, levels)
    lo, hi = _bounds(c, levels)
    assert ((z >= lo) & (z <= hi)).all() and torch.isfinite(z).all()
    folder, _ = files
    out = tmp_path/'ordinal.pt'
    assert main(['train', '--ratings', str(folder/'stars.csv'), '--model-kind', 'bayes_fm_ordinal', '--samples', '30', '--ranks', '2',
                 '--user-features', str(folder/'users.csv'), '--item-features', str(folder/'items.csv'), '--out', str(out), '-q']) == 0
    saved = load_model(out)
    assert saved.kind == 'bayes_fm_ordinal' and saved.info['levels'] == [1., 2., 3., 4., 5.]
    scores = saved.model.user_scores(torch.arange(len(saved.users)))
    assert scores.min() >= 1 - 1e-6 and scores.max() <= 5 + 1e-6


def test_ordinal_fm_refuses_continuous_ratings(files):
    _, ratings = files
    with pytest.raises(DataError, match='use bayes_fm'): train_kind('bayes_fm_ordinal', ratings, None, 'cpu', ranks=[2], n_samples=4)


NEW_USERS = [55, 56, 57, 58, 59, 60]  # no ratings in training: known only by their `kind` row


@pytest.fixture(scope='module')
def cold(files, tmp_path_factory):
    "A bayes_fm model trained without the ratings of `NEW_USERS`, their ratings as a test file, and the user side file."
    folder, ratings = files
    out = tmp_path_factory.mktemp('cold')
    stars = pd.read_csv(folder/'stars.csv')
    stars[~stars.user.isin(NEW_USERS)].to_csv(out/'known.csv', index=False)
    stars[stars.user.isin(NEW_USERS)].to_csv(out/'new.csv', index=False)
    assert main(['train', '--ratings', str(out/'known.csv'), '--model-kind', 'bayes_fm', '--samples', '30', '--ranks', '2',
                 '--user-features', str(folder/'users.csv'), '--item-features', str(folder/'items.csv'), '--out', str(out/'fm.pt'), '-q']) == 0
    return out, folder/'users.csv'


def test_a_saved_model_keeps_the_new_user_weights_and_scores_from_features(cold):
    from collab_lessons.bayes_fm import encode_features
    out, users = cold
    saved = load_model(out/'fm.pt')
    assert saved.model.encoding == [['kind', ['p', 'q']]] and saved.model.feature_factors.shape == (3, saved.info['n_factors'])
    assert all(str(u) not in map(str, saved.users) for u in NEW_USERS)
    x = torch.from_numpy(encode_features(pd.DataFrame(dict(user=['a', 'b'], kind=['p', 'q'])), saved.model.encoding, 'x.csv'))
    scores = saved.model.feature_scores(x)
    assert scores.shape == (2, len(saved.titles)) and scores.min() >= 1 and scores.max() <= 5
    item_kind = pd.read_csv(users.parent/'items.csv').set_index('movie').kind
    sign = torch.tensor([1. if item_kind[int(i)] == 'p' else -1. for i in saved.items[1:]])
    assert ((scores[0] - scores[1])[1:] * sign).mean() > 0.5  # a 'p' user is predicted to like the 'p' movies, a 'q' user the 'q' ones


def test_recommend_a_new_user_from_their_features(cold, capsys):
    out, users = cold
    assert main(['recommend', '--model', str(out/'fm.pt'), '--user', '57', '--user-features', str(users), '-n', '3', '--json', '-q']) == 0
    result = json.loads(capsys.readouterr().out)
    assert result['user'] == '57' and len(result['recommendations']) == 3 and result['from_features'] == str(users)
    assert main(['recommend', '--model', str(out/'fm.pt'), '--user', '1', '--user-features', str(users), '-n', '3', '-q']) == 0
    assert 'leaving out the' in capsys.readouterr().out  # a user with ratings is scored from them, as without the file


def test_evaluate_compares_new_users_from_features_with_the_fallbacks(cold, capsys):
    out, users = cold
    assert main(['evaluate', '--model', str(out/'fm.pt'), '--test', str(out/'new.csv'), '--user-features', str(users), '--json', '-q']) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r['model']: r['rmse'] for r in result['new_users']['results']}
    assert list(rows) == ['features', 'bias only (global mean + item bias)', 'item mean'] and result['results'] is None
    assert result['new_users']['new_users'] == len(NEW_USERS) and result['new_users']['n_scored'] > 100
    assert rows['features'] < 0.8 * rows['bias only (global mean + item bias)']  # the planted signal is carried by `kind` alone
    assert main(['evaluate', '--model', str(out/'fm.pt'), '--test', str(out/'new.csv'), '--user-features', str(users), '-q']) == 0
    text = capsys.readouterr().out
    assert text.startswith('New users (no ratings in the model)') and 'item mean' in text


@pytest.mark.parametrize('text,args,code,message', [
    ('user,kind\n57,r\n', [], 3, "user 57 has kind 'r', which the model never saw in training: use one of p, q"),
    ('user,age\n57,30\n', [], 3, "no 'kind' column"),
    ('user,kind\n58,p\n', [], 5, "User '57' has no ratings in the model and no row in"),
    ('user,kind\n57,\n', [], 3, "column 'kind' is empty for user 57"),
    ('', [], 3, 'not a CSV file of side features'),
    ('user,kind\n57,p\n', ['--all-users', '--out', 'r.csv'], 2, '--user-features scores one new --user'),
])
def test_bad_new_user_input_gets_one_line_and_its_exit_code(cold, tmp_path, capsys, text, args, code, message):
    out, _ = cold
    (tmp_path/'new_users.csv').write_text(text)
    who = args or ['--user', '57']
    assert main(['recommend', '--model', str(out/'fm.pt'), *who, '--user-features', str(tmp_path/'new_users.csv'), '-q']) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    if code == 3: assert str(tmp_path/'new_users.csv') in err


def test_user_features_need_a_model_that_kept_feature_weights(files, cold, tmp_path, capsys):
    folder, _ = files
    out, users = cold
    assert main(['train', '--ratings', str(folder/'stars.csv'), '--model-kind', 'bayes_fm', '--samples', '4', '--ranks', '2',
                 '--out', str(tmp_path/'ids.pt'), '-q']) == 0  # no user side file: no feature weights
    assert main(['recommend', '--model', str(tmp_path/'ids.pt'), '--user', 'x', '--user-features', str(users), '-q']) == 2
    assert 'trained without user features' in capsys.readouterr().err
    assert main(['train', '--ratings', str(folder/'stars.csv'), '--model-kind', 'fast', '--epochs', '1', '--out', str(tmp_path/'f.pt'), '-q']) == 0
    assert main(['evaluate', '--model', str(tmp_path/'f.pt'), '--test', str(out/'new.csv'), '--user-features', str(users), '-q']) == 2
    assert 'needs a bayes_fm model, not a fast model' in capsys.readouterr().err


def test_evaluate_with_no_new_user_to_score_exits_no_result(cold, capsys):
    out, users = cold
    assert main(['evaluate', '--model', str(out/'fm.pt'), '--test', str(out/'known.csv'), '--user-features', str(users), '-q']) == 9
    assert 'None of the' in capsys.readouterr().err


def test_a_raw_number_falls_in_the_range_label_training_used():
    "A model trained on ML-100k's age buckets takes a new user's age as a number: 25 is '25-34', 70 is '56-'; a number in no bucket is named."
    ages = ['-17', '18-24', '25-34', '35-44', '45-49', '50-55', '56-']
    encoding = [['age', ages], ['gender', ['F', 'M']]]
    rows = encode_features(pd.DataFrame(dict(user=[1, 2, 3], age=['25', '70', '18-24'], gender=['F', 'M', 'F'])), encoding, 'new.csv')
    assert rows[:, :7].argmax(1).tolist() == [2, 6, 1] and rows.sum(1).tolist() == [2, 2, 2]
    with pytest.raises(DataError, match=r"new.csv: user 4 has age '24.5', which the model never saw in training: use one of -17, 18-24"):
        encode_features(pd.DataFrame(dict(user=[4], age=['24.5'], gender=['F'])), encoding, 'new.csv')
