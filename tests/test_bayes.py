import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons.bayes import fit_bpmf, fit_bpmf_ensemble, sample_prior, sample_rows, sample_wishart
from collab_lessons.fast import fast_loaders


def test_wishart_mean_is_df_times_scale():
    torch.manual_seed(0)
    scale = torch.tensor([[2., .3], [.3, .5]])
    draws = torch.stack([sample_wishart(scale, 6.) for _ in range(3000)])
    assert torch.allclose(draws.mean(0), 6 * scale, atol=0.25)
    assert (torch.linalg.eigvalsh(draws) > 0).all()
    with pytest.raises(ValueError, match='df=1'): sample_wishart(torch.eye(3), 1.)


def test_sample_rows_recovers_regression_per_row():
    torch.manual_seed(0)
    x = torch.randn(4000, 3)
    idx = torch.arange(4000) % 2
    coef = torch.tensor([[1., -2., .5], [-1., 0., 3.]])
    y = (x * coef[idx]).sum(1) + 0.05 * torch.randn(4000)
    rows = sample_rows(x, y, idx, 2, 400., torch.zeros(3), torch.eye(3))
    assert torch.allclose(rows, coef, atol=0.03)


def test_sample_prior_centres_on_rows():
    torch.manual_seed(0)
    rows = torch.randn(5000, 2) * 0.5 + torch.tensor([3., -1.])
    m, Lam = sample_prior(rows)
    assert torch.allclose(m, torch.tensor([3., -1.]), atol=0.05)
    assert torch.allclose(torch.linalg.inv(Lam).diagonal(), torch.tensor([.25, .25]), atol=0.03)


def _low_rank(n_users=80, n_items=60, seed=0):
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    u, i = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing='ij')
    keep = rng.random(u.shape) < 0.6
    r = np.clip(3 + 0.7 * (P @ Q.T) + rng.normal(0, 0.3, u.shape), 1, 5)
    return pd.DataFrame(dict(user=u[keep], movie=i[keep], rating=r[keep]))


def test_fit_bpmf_beats_global_mean_and_scores_only_when_asked():
    torch.manual_seed(0)
    ratings = _low_rank()
    train, valid, c = fast_loaders(ratings, seed=0)
    preds, history = fit_bpmf(train, len(c['user']), len(c['item']), valid, rank=3, n_samples=40, burn_in=10, every=10)
    baseline = (valid.y - train.y.mean()).pow(2).mean().sqrt().item()
    assert history[-1]['valid_rmse'] < 0.6 * baseline and [h['sweep'] for h in history] == [20, 30, 40]
    assert preds.min() >= 1 and preds.max() <= 5
    _, silent = fit_bpmf(train, len(c['user']), len(c['item']), valid, rank=3, n_samples=12, burn_in=10, every=0)
    assert silent == []
    with pytest.raises(ValueError, match='burn_in'): fit_bpmf(train, len(c['user']), len(c['item']), burn_in=5, n_samples=5)


def test_ensemble_averages_its_members():
    torch.manual_seed(0)
    train, valid, c = fast_loaders(_low_rank(seed=1), seed=0)
    preds, histories = fit_bpmf_ensemble(train, len(c['user']), len(c['item']), valid, ranks=(2, 3), n_samples=20, burn_in=5, every=15)
    assert len(histories) == 2 and preds.shape == valid.y.shape
    ens = (preds - valid.y).pow(2).mean().sqrt().item()
    assert ens <= max(h[-1]['valid_rmse'] for h in histories) + 1e-6


def test_sample_rows_csr_draws_what_sample_rows_draws():
    "The sparse-product sums give the same draws as the per-rating outer products, repeated (row, other) pairs included."
    from collab_lessons.bayes import row_groups, sample_rows_csr
    g = torch.Generator().manual_seed(3)
    idx, other = torch.randint(0, 5, (200,), generator=g), torch.randint(0, 7, (200,), generator=g)
    feats, y, m, Lam = torch.randn(7, 3, generator=g), torch.randn(200, generator=g), torch.randn(3, generator=g), 2 * torch.eye(3)
    torch.manual_seed(0); slow = sample_rows(feats[other], y, idx, 5, 1.5, m, Lam)
    torch.manual_seed(0); fast = sample_rows_csr(feats, y, row_groups(idx, other, 5, 7), 1.5, m, Lam)
    assert torch.allclose(slow, fast, atol=1e-4)


def test_fit_bpmf_sparse_and_dense_sweeps_agree():
    train, valid, c = fast_loaders(_low_rank(seed=2), seed=0)
    n_users, n_items = len(c['user']), len(c['item'])
    torch.manual_seed(1); dense, _ = fit_bpmf(train, n_users, n_items, valid, rank=3, n_samples=12, burn_in=4, every=0, sparse=False)
    torch.manual_seed(1); sparse, _ = fit_bpmf(train, n_users, n_items, valid, rank=3, n_samples=12, burn_in=4, every=0)
    assert torch.allclose(dense, sparse, atol=1e-3)
