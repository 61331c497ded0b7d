import math

import numpy as np
import pandas as pd
import pytest
import torch
from fastai.collab import EmbeddingNN
from fastai.tabular.model import get_emb_sz

from collab_lessons.bias import DotProductBias
from collab_lessons.splits import collab_dls, load_split
from collab_lessons.evaluate import (evaluate_ratings, popularity_matrix, predict_pairs, ranking_metrics,
                                     score_matrix)
from collab_lessons.interpret import movie_counts
from collab_lessons.fast import encode_pairs


def ranking_oracle(scores, train_pairs, test_pairs, test_ratings, k, threshold):
    "Plain-Python precision@k and NDCG@k, written independently of the library."
    seen = {(int(u), int(m)) for u, m in train_pairs}
    rel = {}
    for (u, m), r in zip(test_pairs.tolist(), list(test_ratings)):
        if r >= threshold and u > 0 and m > 0: rel.setdefault(u, set()).add(m)
    precs, ndcgs = [], []
    for u, items in sorted(rel.items()):
        cands = [m for m in range(1, scores.shape[1]) if (u, m) not in seen]
        ranked = sorted(cands, key=lambda m: -float(scores[u, m]))[:k]
        hits = [1 if m in items else 0 for m in ranked]
        precs.append(sum(hits) / k)
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(items))))
        ndcgs.append(dcg / idcg)
    return np.mean(precs), np.mean(ndcgs), len(rel)


def test_ranking_metrics_match_an_oracle():
    g = torch.Generator().manual_seed(0)
    n_users, n_items = 12, 30
    scores = torch.randn(n_users, n_items, generator=g)   # continuous: no ties
    train_pairs = torch.stack([torch.randint(1, n_users, (60,), generator=g), torch.randint(1, n_items, (60,), generator=g)], 1)
    test_pairs = torch.stack([torch.randint(0, n_users, (80,), generator=g), torch.randint(0, n_items, (80,), generator=g)], 1)
    test_ratings = torch.randint(1, 6, (80,), generator=g)
    ours = ranking_metrics(scores, train_pairs, test_pairs, test_ratings, k=5, threshold=4)
    p, n, users = ranking_oracle(scores, train_pairs, test_pairs, test_ratings, 5, 4)
    assert ours['precision@5'] == pytest.approx(p, abs=1e-4)
    assert ours['ndcg@5'] == pytest.approx(n, abs=1e-4)
    assert ours['users'] == users


def test_perfect_ranking_scores_one():
    scores = torch.zeros(2, 6)
    scores[1, 1:4] = torch.tensor([3., 2., 1.])
    m = ranking_metrics(scores, torch.zeros(0, 2, dtype=torch.long), torch.tensor([[1, 1], [1, 2]]), [5, 4], k=2)
    assert m['precision@2'] == 1 and m['ndcg@2'] == pytest.approx(1)


def test_score_matrix_and_predict_pairs_agree():
    torch.manual_seed(0)
    model = DotProductBias(4, 7, 3)
    pairs = torch.tensor([[1, 2], [3, 6], [2, 0]])
    assert torch.allclose(score_matrix(model, 4, 7)[pairs[:, 0], pairs[:, 1]], predict_pairs(model, pairs), atol=1e-6)


def test_score_matrix_for_a_neural_model():
    torch.manual_seed(0)
    model = EmbeddingNN(emb_szs=[(4, 3), (7, 3)], layers=[5], y_range=(0, 5.5))
    mat = score_matrix(model, 4, 7)
    assert mat.shape == (4, 7)
    assert torch.allclose(mat[2, 5], predict_pairs(model, torch.tensor([[2, 5]]))[0])


def test_popularity_matrix():
    mat = popularity_matrix(torch.tensor([0, 3, 1]), 2)
    assert mat.tolist() == [[0., 3., 1.], [0., 3., 1.]]


def test_collab_dls_with_test_set_scores_every_test_rating(tiny_ratings):
    train, test = tiny_ratings.iloc[:200], tiny_ratings.iloc[200:]
    dls = collab_dls(train, test, bs=16)
    assert len(dls.train_ds) == len(train) and len(dls.valid_ds) == len(test)
    assert set(dls.classes['title'][1:]) == set(tiny_ratings.title)  # fastai's Categorify: vocabulary of both sets
    users, titles = list(dls.classes['user']), list(dls.classes['title'])
    model = DotProductBias(len(users), len(titles), 2)
    scores = evaluate_ratings(model, users, titles, test)
    # oracle: the model's dot products written out by hand with NumPy, one test rating at a time
    W = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    u = [users.index(x) if x in users else 0 for x in test.user]   # 0: fastai's #na# slot for ids unseen in training
    m = [titles.index(x) if x in titles else 0 for x in test.title]
    raw = (W['user_factors.weight'][u] * W['item_factors.weight'][m]).sum(1) + W['user_bias.weight'][u, 0] + W['item_bias.weight'][m, 0]
    lo, hi = model.y_range
    err = lo + (hi - lo) / (1 + np.exp(-raw)) - test.rating.to_numpy()
    assert scores['n_ratings'] == len(test)
    assert scores['rmse'] == pytest.approx(np.sqrt((err**2).mean()), abs=1e-4) and scores['mae'] == pytest.approx(np.abs(err).mean(), abs=1e-4)


def test_u1_split_and_popularity_baseline(ml100k):
    train, test = load_split('u1')
    assert (len(train), len(test)) == (80000, 20000)
    dls = collab_dls(train, test)
    titles, users = list(dls.classes['title']), list(dls.classes['user'])
    train_pairs, test_pairs = encode_pairs(train, users, titles), encode_pairs(test, users, titles)
    assert (train_pairs > 0).all()
    pop = ranking_metrics(popularity_matrix(movie_counts(train, titles), len(users)), train_pairs, test_pairs, test.rating.values)
    assert 0.05 < pop['precision@10'] < 0.5 and 0.05 < pop['ndcg@10'] < 0.6
    assert pop['users'] > 400
    rand = ranking_metrics(torch.rand(len(users), len(titles), generator=torch.Generator().manual_seed(0)),
                           train_pairs, test_pairs, test.rating.values)
    assert rand['precision@10'] < pop['precision@10'] / 3  # popularity is far better than chance
