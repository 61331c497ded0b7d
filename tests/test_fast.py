import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons.ratings import DataError
from collab_lessons.fast import (FastDotProductBias, TensorLoader, encode_ids, score_loader, fast_loaders, fit_fast,
                                 fit_lazy, lazy_step)


def test_encode_ids_sorted_codes_and_unknown_id():
    codes, classes = encode_ids(np.array([7, 3, 7, 5]))
    assert codes.tolist() == [2, 0, 2, 1] and classes.tolist() == [3, 5, 7]
    with pytest.raises(DataError, match='movie'): encode_ids(np.array([4]), classes, 'movie')


def test_tensor_loader_visits_every_row_once_per_epoch():
    dl = TensorLoader(torch.arange(20).view(10, 2), torch.arange(10.), bs=3, shuffle=True, seed=1)
    for _ in range(2):
        seen = torch.cat([yb for _, yb in dl])
        assert sorted(seen.tolist()) == list(range(10))
    first = [yb.tolist() for _, yb in TensorLoader(dl.x, dl.y, bs=3, shuffle=True, seed=1)]
    again = [yb.tolist() for _, yb in TensorLoader(dl.x, dl.y, bs=3, shuffle=True, seed=1)]
    assert first == again and first != [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_fast_loaders_split_and_explicit_valid(tiny_ratings):
    train, valid, classes = fast_loaders(tiny_ratings, valid_pct=0.25, seed=0)
    assert len(train.y) + len(valid.y) == len(tiny_ratings) and len(valid.y) == int(len(tiny_ratings) * 0.25)
    assert sorted(torch.cat([train.y, valid.y]).tolist()) == sorted(tiny_ratings.rating.astype(float).tolist())
    head, tail = tiny_ratings.iloc[:200], tiny_ratings.iloc[200:]
    train, valid, classes = fast_loaders(head, tail)
    assert len(valid.y) == len(tail)
    assert classes['item'][valid.x[0, 1]] == tail.movie.iloc[0] and classes['user'][valid.x[0, 0]] == tail.user.iloc[0]
    with pytest.raises(DataError, match='rating'): fast_loaders(tiny_ratings.drop(columns='rating'))


def test_model_matches_manual_formula_and_range():
    torch.manual_seed(0)
    m = FastDotProductBias(4, 3, 5, y_range=(1, 5))
    x = torch.tensor([[0, 2], [3, 1]])
    manual = torch.sigmoid((m.user_factors.weight[x[:, 0]] * m.item_factors.weight[x[:, 1]]).sum(1)
                           + m.user_bias.weight[x[:, 0], 0] + m.item_bias.weight[x[:, 1], 0]) * 4 + 1
    assert torch.allclose(m(x), manual)
    assert torch.allclose(m.penalty(x), ((m.user_factors.weight[x[:, 0]]**2).sum(1) + (m.item_factors.weight[x[:, 1]]**2).sum(1)).mean())


def test_lazy_step_gradient_matches_autograd_for_distinct_rows():
    "With distinct rows and fresh Adagrad sums, a row moves by -lr * its autograd gradient / RMS of that gradient."
    torch.manual_seed(0)
    m = FastDotProductBias(3, 3, 4)
    x, y = torch.tensor([[0, 1], [2, 0]]), torch.tensor([4., 2.])
    l2 = 0.05
    loss = ((m(x) - y)**2).sum() + l2 * ((m.user_factors(x[:, 0])**2).sum() + (m.item_factors(x[:, 1])**2).sum())
    loss.backward()
    g = m.user_factors.weight.grad[0].clone(); gb = m.user_bias.weight.grad[0].clone()
    before, untouched = m.user_factors.weight.data[0].clone(), m.user_factors.weight.data[1].clone()
    state = dict(user=torch.zeros(3), item=torch.zeros(3))
    with torch.no_grad(): lazy_step(m, x, y, 0.1, l2, state)
    full = torch.cat([g, gb])
    expected = before - 0.1 * g / full.pow(2).mean().sqrt()
    assert torch.allclose(m.user_factors.weight.data[0], expected, atol=1e-5)
    assert m.user_factors.weight.data[1].equal(untouched)   # user 1 is not in the batch: lazily left alone
    assert state['user'][1] == 0 and state['user'][0] > 0


def _low_rank_ratings(n_users=60, n_items=40, seed=0):
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    u, i = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing='ij')
    r = np.clip(3 + (P @ Q.T) * 0.8, 1, 5)
    return pd.DataFrame(dict(user=u.ravel(), movie=i.ravel(), rating=r.ravel()))


def test_fit_fast_and_fit_lazy_learn_low_rank_data():
    ratings = _low_rank_ratings()
    std = ratings.rating.std()
    torch.manual_seed(0)
    train, valid, c = fast_loaders(ratings, bs=128, seed=0)
    hist = fit_fast(FastDotProductBias(len(c['user']), len(c['item']), 8), train, valid, epochs=30, lr=3e-2, l2=1e-3)
    assert hist[-1]['valid_rmse'] < 0.6 * std and hist[-1]['seconds'] > 0
    model = FastDotProductBias(len(c['user']), len(c['item']), 8)
    lazy = fit_lazy(model, train, valid, epochs=30, lr=0.1, l2=1e-3)
    assert lazy[-1]['valid_rmse'] < 0.8 * std
    assert abs(score_loader(model, valid)['rmse'] - lazy[-1]['valid_rmse']) < 1e-6


def test_blocked_loader_visits_every_row_once_and_stays_in_cells():
    "Each epoch: every rating exactly once, every batch inside one (user block, item block) cell, a new order."
    from collab_lessons.fast import BlockedLoader
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randint(0, 50, (1000,), generator=g), torch.randint(0, 30, (1000,), generator=g)], 1)
    y = torch.arange(1000.)
    dl = BlockedLoader(x, y, 50, 30, bs=16, block_rows=10, seed=0)
    seen_orders = []
    for _ in range(2):
        batches = list(dl)
        ys = torch.cat([yb for _, yb in batches])
        assert sorted(ys.tolist()) == y.tolist()
        for xb, yb in batches:
            assert xb.dtype == torch.int64 and torch.equal(xb, x[yb.long()])     # rows keep their own rating
        seen_orders.append(ys.tolist())
    assert seen_orders[0] != seen_orders[1]
    crossings = sum(len((xb // 10).unique(dim=0)) > 1 for xb, _ in dl)
    assert crossings <= len(dl.counts)          # only a batch that straddles two cells' boundary mixes cells


def test_fast_loaders_blocked_trains_like_the_plain_loader(tiny_ratings):
    from collab_lessons.fast import BlockedLoader
    plain, valid, classes = fast_loaders(tiny_ratings, bs=32, seed=0)
    blocked, valid_b, _ = fast_loaders(tiny_ratings, bs=32, seed=0, block_rows=8)
    assert isinstance(blocked, BlockedLoader) and torch.equal(valid.y, valid_b.y)
    assert sorted(blocked.y.tolist()) == sorted(plain.y.tolist())
    torch.manual_seed(0)
    model = FastDotProductBias(len(classes['user']), len(classes['item']), 8)
    seen = TensorLoader(blocked.x.long(), blocked.y, bs=64)
    before = score_loader(model, seen)['rmse']
    fit_lazy(model, blocked, epochs=5, lr=0.1)
    assert score_loader(model, seen)['rmse'] < before - 0.1     # it learns the ratings it was shown


def test_lazy_kind_is_fit_lazy_over_a_blocked_loader_saved_as_a_model_file(tmp_path, monkeypatch):
    "`train --model-kind lazy` on a CSV of string ids gives the weights of `fit_lazy` over a `BlockedLoader` by hand, in a file `load_model` reads."
    from collab_lessons.model_files import load_model
    from collab_lessons.fast import BlockedLoader
    from collab_lessons.model_kinds import vocab
    from collab_lessons.products import train_model, training_frames
    rng = np.random.default_rng(0)
    df = pd.DataFrame(dict(customer=[f'c{u}' for u in rng.integers(0, 40, 600)], product=rng.integers(0, 30, 600),
                           stars=rng.integers(1, 6, 600))).drop_duplicates(['customer', 'product'])
    df.to_csv(tmp_path/'mine.csv', index=False)
    import collab_lessons.fast as fast
    built = []  # the trainer must batch through `BlockedLoader` (with one cell its order equals a shuffled `TensorLoader`'s)
    monkeypatch.setattr(fast, 'BlockedLoader', lambda *a, **k: built.append(k) or BlockedLoader(*a, **k))
    train, held_out = training_frames(ratings=tmp_path/'mine.csv')
    result = train_model('lazy', train, held_out, tmp_path/'m.pt', 'mine.csv', 'random', epochs=3, bs=64, n_factors=8)
    saved = load_model(tmp_path/'m.pt')
    users, items = vocab(train.user), vocab(train.movie)
    x = torch.stack([encode_ids(train.user, users)[0], encode_ids(train.movie, items)[0]], 1)  # every id is known: no -1
    y = torch.tensor(train.rating.to_numpy(np.float32))
    torch.manual_seed(42)
    model = FastDotProductBias(len(users), len(items), 8, (0., 5.5))
    fit_lazy(model, BlockedLoader(x, y, len(users), len(items), bs=64, seed=42), epochs=3, lr=0.1, l2=0.05)
    assert built == [dict(bs=64, seed=42)]
    assert saved.kind == 'lazy' and saved.users == users and [str(i) for i in saved.items] == [str(i) for i in items]
    assert torch.allclose(saved.model.item_factors.weight, model.item_factors.weight)
    assert result['valid_rmse'] > 0 and not any(p.name.endswith('.tmp') for p in tmp_path.iterdir())
