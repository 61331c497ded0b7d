"Implicit-feedback ranking kinds (collab_lessons.rankers) on small synthetic data."
import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons.rankers import (KIND_DEFAULTS, MODELS, SHAPES, TRAINERS, als_half_step, bpr_loss, ease_weights,
                                    implicit_pairs, sample_negatives, _pair_keys)
from collab_lessons.ranking import pairs_by_user, rank_metrics


@pytest.fixture
def clustered():
    "60 users, 40 items in two groups: each user mostly rates items of its own group."
    g = np.random.default_rng(0)
    rows = [(u, i, int(g.integers(1, 6))) for u in range(1, 61) for i in range(1, 41) if g.random() < (0.5 if u % 2 == i % 2 else 0.05)]
    df = pd.DataFrame(rows, columns=['user', 'movie', 'rating'])
    return df, ['#na#'] + sorted(df.user.unique().tolist()), ['#na#'] + sorted(df.movie.unique().tolist())


FAST = {'popularity': {}, 'ease': dict(l2s=[10., 50.], dropouts=[0., 0.5]), 'bpr': dict(n_factors=8, epochs=15, lr=0.02),
        'ials': dict(n_factors=8, epochs=5), 'ease_ials': dict(l2s=[10.], dropouts=[0.5], n_factors=8, epochs=5, blend_weights=[0., 0.5]),
        'ease_seq': dict(l2s=[10.], dropouts=[0.5], windows=[3], blend_weights=[0., 0.5])}


def test_implicit_threshold(clustered):
    df, users, items = clustered
    assert len(implicit_pairs(df, users, items)) == len(df)
    assert len(implicit_pairs(df, users, items, implicit_threshold=4)) == int((df.rating >= 4).sum())


def test_popularity_ranks_by_count(clustered):
    df, users, items = clustered
    weights, info = TRAINERS['popularity'](df, users, items, {})
    counts = df.movie.value_counts()
    assert [weights['counts'][items.index(m)].item() for m in counts.index] == counts.tolist()
    top = MODELS['popularity'](weights, info).user_scores(torch.tensor([1, 2])).argmax(1)
    assert items[top[0]] == counts.idxmax() and top[0] == top[1]


def test_ease_matches_numpy_formula():
    g = np.random.default_rng(1)
    X = (g.random((30, 12)) < 0.3).astype(np.float64)
    for l2, p in [(5., 0.), (5., 0.5)]:
        G = X.T @ X
        lam = l2 + p / (1 - p) * np.diag(G)
        P = np.linalg.inv(G + np.diag(lam))
        want = -P / np.diag(P) if p == 0 else np.eye(12) - P * lam  # EASE; DLAE: B = I - P diag(lambda)
        np.fill_diagonal(want, 0)
        got = ease_weights(torch.tensor(X, dtype=torch.float32), l2, p).double().numpy()
        assert np.allclose(got, want, atol=1e-4), (l2, p)


def test_cg_half_step_reaches_the_exact_solution():
    g = torch.Generator().manual_seed(0)
    Q = torch.randn(9, 4, generator=g, dtype=torch.float64)
    pairs = torch.tensor([[0, 1], [0, 5], [0, 8], [1, 2], [2, 0], [2, 3]])
    got = als_half_step(Q, pairs_by_user(pairs, 4), l2=0.3, alpha=5., cg_steps=12)
    for u in range(4):
        s = pairs[pairs[:, 0] == u, 1]
        A = Q.T @ Q + 5 * Q[s].T @ Q[s] + 0.3 * torch.eye(4, dtype=torch.float64)
        assert torch.allclose(got[u], torch.linalg.solve(A, 6 * Q[s].sum(0)), atol=1e-8)  # user 3 has no positive: zeros


def test_negatives_avoid_positives():
    pairs = torch.tensor([[1, 1], [1, 2], [1, 3], [2, 1]])
    keys = _pair_keys(pairs, 5).sort().values
    users = torch.full((2000,), 1)
    assert set(sample_negatives(users, keys, 5, torch.Generator().manual_seed(0), tries=0).tolist()) == {1, 2, 3, 4}  # no redraw: positives too
    j = sample_negatives(users, keys, 5, torch.Generator().manual_seed(0), tries=60)
    assert set(j.tolist()) == {4}  # user 1 saw items 1-3; index 0 is #na#


def test_bpr_loss_decreases(clustered):
    df, users, items = clustered
    _, info = TRAINERS['bpr'](df, users, items, FAST['bpr'])
    assert info['losses'][-1] < info['losses'][0] - 0.05 and info['losses'][-1] == min(info['losses'])


def test_bpr_loss_formula():
    U, V, b = torch.tensor([[1., 0.]]), torch.tensor([[0., 0.], [2., 0.], [0., 1.]]), torch.tensor([0., 0.5, 0.])
    x = 2 + 0.5 - 0  # p_u.(q_1 - q_2) + b_1 - b_2
    want = -np.log(1 / (1 + np.exp(-x))) + 0.1 * (1 + 4 + 1)
    assert bpr_loss(U, V, b, torch.tensor([0]), torch.tensor([1]), torch.tensor([2]), 0.1).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize('kind', list(TRAINERS))
def test_every_kind_trains_scores_and_has_the_declared_shapes(clustered, kind):
    df, users, items = clustered
    train = df.sample(frac=0.75, random_state=0)
    test = df.drop(train.index)
    weights, info = TRAINERS[kind](train, users, items, FAST[kind])
    import json
    json.dumps(info)  # info must be JSON-able
    assert all(isinstance(w, torch.Tensor) for w in weights.values())
    shapes = SHAPES[kind](info, len(users), len(items))
    assert set(shapes) == set(weights)
    for name, shape in shapes.items():
        assert all(s is None or s == t for s, t in zip(shape, weights[name].shape)) and len(shape) == weights[name].dim(), name
    model = MODELS[kind](weights, info)
    users_t = torch.tensor([1, 5, 7])
    full = model.user_scores(users_t)
    assert full.shape == (3, len(items))
    pairs = torch.tensor([[5, 3], [7, 10], [1, 1]])
    assert torch.allclose(model(pairs), full[[1, 2, 0], pairs[:, 1]], atol=1e-5)
    res = rank_metrics(model.user_scores, implicit_pairs(train, users, items), implicit_pairs(test, users, items),
                       len(users), len(items), k=5, exclude_items=[0])
    if kind != 'popularity':
        pop_w, pop_i = TRAINERS['popularity'](train, users, items, {})
        pop = rank_metrics(MODELS['popularity'](pop_w, pop_i).user_scores, implicit_pairs(train, users, items),
                           implicit_pairs(test, users, items), len(users), len(items), k=5, exclude_items=[0])
        assert res['ndcg@5'] > pop['ndcg@5'] + 0.05, (kind, res['ndcg@5'], pop['ndcg@5'])


def test_ease_tunes_on_the_carve_out_only(clustered, monkeypatch):
    "The test part is never passed to the trainer, so the grid's NDCG comes from the training part: check the carve-out sizes."
    from collab_lessons import rankers
    df, users, items = clustered
    seen = []
    real = rankers._carve
    monkeypatch.setattr(rankers, '_carve', lambda train, pct, seed, how: seen.append(len(train)) or real(train, pct, seed, how))
    _, info = TRAINERS['ease'](df, users, items, FAST['ease'])
    assert seen == [len(df)] and len(info['tune_ndcg']) == 4


def test_temporal_carve_holds_out_each_users_latest(clustered, monkeypatch):
    "With tune_split='temporal' the tuning part is each user's latest ratings of the training part; a bad name is refused."
    from collab_lessons import rankers
    df, users, items = clustered
    df = df.assign(timestamp=np.random.default_rng(2).permutation(len(df)))
    parts = []
    real = rankers._carve
    monkeypatch.setattr(rankers, '_carve', lambda *a: parts.append(real(*a)) or parts[-1])
    _, info = TRAINERS['ease_seq'](df, users, items, dict(FAST['ease_seq'], tune_split='temporal'))
    fit, tune = parts[0]
    assert info['tune_split'] == 'temporal' and len(fit) + len(tune) == len(df)
    first_tuned = tune.groupby('user').timestamp.min()
    assert (fit.groupby('user').timestamp.max().reindex(first_tuned.index) < first_tuned).all()
    with pytest.raises(ValueError, match='tune_split'): TRAINERS['ease'](df, users, items, dict(FAST['ease'], tune_split='random'))


def test_next_items_follow_each_users_order():
    from collab_lessons.rankers import next_items, timed_pairs
    df = pd.DataFrame(dict(user=[1, 1, 1, 2, 2], movie=[10, 20, 30, 30, 10], rating=5, timestamp=[3, 1, 2, 5, 4]))
    pairs, recency = timed_pairs(df, ['#na#', 1, 2], ['#na#', 10, 20, 30])
    assert recency.tolist() == [0., 2., 1., 0., 1.]
    T = next_items(pairs, recency, 4, window=1)  # user 1: 20 -> 30 -> 10; user 2: 10 -> 30
    assert T[2].tolist() == [0., 0., 0., 1.] and T[3].tolist() == [0., 1., 0., 0.] and T[1].tolist() == [0., 0., 0., 1.]


def test_bench_trains_our_kinds_through_train_kind(monkeypatch):
    "The ranking benchmark trains our kinds through `train_kind` (the entry of `collab-lessons train`) and scores them with `scoring_model`."
    from collab_lessons import bench_ranking
    from collab_lessons.model_kinds import train_kind
    calls = []
    monkeypatch.setattr(bench_ranking, 'train_kind', lambda kind, train, **o: calls.append((kind, o)) or train_kind(kind, train, **o))
    df = pd.DataFrame(dict(user=[1, 1, 2, 2, 3], movie=[10, 20, 10, 30, 20], rating=[5, 2, 4, 4, 1]))
    users, items = ['#na#', 1, 2, 3], ['#na#', 10, 20, 30]
    scores = bench_ranking._ours('popularity', dict(train=df, users=users, items=items), dict(tune_split='temporal'))()(torch.tensor([1]))
    assert calls == [('popularity', dict(tune_split='temporal'))] and scores[0].tolist() == [0., 2., 2., 1.]


def test_defaults_cover_every_kind():
    assert set(KIND_DEFAULTS) == set(TRAINERS) == set(MODELS) == set(SHAPES)


@pytest.mark.slow
def test_ranking_benchmark_smoke_run_writes_every_row(tmp_path, ml100k, capsys):
    "The ranking benchmark's smoke run (the full tier's): every kind of ours scores on both protocols; a peer either scores or says why not."
    from collab_lessons.bench_ranking import OUR_KINDS, PEERS, main
    rows = main(['--smoke', '--out', str(tmp_path)])
    for dataset in ('ml-100k', 'ml-latest-small'):
        ours = {r['model']: r for r in rows if r['dataset'] == dataset and r['library'] == 'collab_lessons'}
        assert set(ours) == set(OUR_KINDS) and all(0 <= r['ndcg@10'] <= 1 and r['fit_s'] >= 0 for r in ours.values())
        assert len([r for r in rows if r['dataset'] == dataset]) == len(OUR_KINDS) + len(PEERS)
    written = sorted(p.suffix for p in tmp_path.iterdir())
    assert written == ['.json', '.md'] and '| ease |' in next(tmp_path.glob('*.md')).read_text()
