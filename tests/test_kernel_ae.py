import pytest
import torch
from hypothesis import given, settings, strategies as st

from collab_lessons.fast import fast_loaders
from collab_lessons.kernel_ae import (KernelAutoencoder, LocalKernelLayer, blend, blend_weight, fit_kernel_ae,
                                      fit_kernel_ae_ensemble, reconstructed_ratings, rating_matrix)


def _loaders(tiny_ratings):
    torch.manual_seed(0)
    return fast_loaders(tiny_ratings, valid_pct=0.2, seed=0)


def test_rating_matrix_places_every_rating(tiny_ratings):
    train, _, classes = _loaders(tiny_ratings)
    R, M = rating_matrix(train, len(classes['user']), len(classes['item']))
    assert R.shape == (len(classes['item']), len(classes['user']))
    assert int(M.sum()) == len(train.y)
    assert torch.equal(R[train.x[:, 1], train.x[:, 0]], train.y)
    assert (R[M == 0] == 0).all()


def test_rating_matrix_refuses_huge_tables(tiny_ratings):
    train, _, _ = _loaders(tiny_ratings)
    with pytest.raises(ValueError, match='fit_lazy'): rating_matrix(train, 200_000, 60_000)


def test_kernel_cuts_far_connections():
    torch.manual_seed(0)
    layer = LocalKernelLayer(3, 2)
    assert (layer.kernel() > 0.99).all()                      # every point starts near the origin
    with torch.no_grad(): layer.v[0, 1] += 1.5                # output 1 moves away from every input
    k = layer.kernel()
    assert (k[:, 1] == 0).all() and (k[:, 0] > 0.99).all()
    x = torch.randn(4, 3)
    with torch.no_grad(): assert torch.allclose(layer(x)[:, 1], torch.sigmoid(layer.bias[1]).expand(4))


def test_autoencoder_shapes_and_penalty():
    torch.manual_seed(0)
    model = KernelAutoencoder(7, n_hid=5)
    assert model(torch.zeros(3, 7)).shape == (3, 7)
    assert model.penalty(l2=0., l_sparse=0.).item() == 0.
    assert model.penalty(l2=1., l_sparse=0.).item() == pytest.approx(sum(l.weight.pow(2).sum().item() for l in model.layers) / 2, rel=1e-5)


def test_fit_kernel_ae_learns_and_scores_only_when_asked(tiny_ratings):
    train, valid, classes = _loaders(tiny_ratings)
    n_users, n_items = len(classes['user']), len(classes['item'])
    torch.manual_seed(0)
    preds, history, model = fit_kernel_ae(train, n_users, n_items, valid, epochs=4, n_hid=8, l2=1.)
    assert [h['epoch'] for h in history] == [1, 2, 3, 4] and all('valid_rmse' in h for h in history)
    assert history[-1]['loss'] < history[0]['loss']
    assert preds.shape == valid.y.shape and preds.min() >= 1 and preds.max() <= 5
    R, _ = rating_matrix(train, n_users, n_items)
    assert torch.equal(preds, reconstructed_ratings(model, R, valid.x))
    _, quiet, _ = fit_kernel_ae(train, n_users, n_items, valid, epochs=2, n_hid=8, every=0)
    assert not any('valid_rmse' in h for h in quiet)


def test_ensemble_is_the_mean_of_its_seeds(tiny_ratings):
    train, valid, classes = _loaders(tiny_ratings)
    args = (train, len(classes['user']), len(classes['item']), valid)
    preds, histories = fit_kernel_ae_ensemble(*args, seeds=(0, 1), epochs=2, n_hid=8)
    singles = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        singles.append(fit_kernel_ae(*args, epochs=2, n_hid=8)[0])
    assert len(histories) == 2 and torch.allclose(preds, (singles[0] + singles[1]) / 2)


vectors = st.lists(st.tuples(st.floats(1, 5), st.floats(1, 5), st.floats(1, 5)), min_size=1, max_size=50)


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_blend_is_never_worse_than_either_model(rows):
    "The least-squares weight is in [0, 1] and its blend's squared error is at most that of `a` alone and `b` alone."
    a, b, y = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    w = blend_weight(a, b, y)
    sse = lambda p: (p - y).pow(2).sum().item()
    assert 0 <= w <= 1
    assert sse(blend(a, b, w)) <= min(sse(a), sse(b)) + 1e-9


def test_blend_weight_edge_cases():
    y = torch.tensor([1., 2., 3.])
    assert blend_weight(y, y, y) == 0.5                       # identical models: any weight is as good
    assert blend_weight(y, y + 1, y) == 0. and blend_weight(y + 1, y, y) == 1.
    with pytest.raises(ValueError, match='lengths'): blend_weight(y, y[:2], y)
