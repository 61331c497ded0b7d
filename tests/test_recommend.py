import pandas as pd
import pytest
import torch
from fastai.layers import sigmoid_range

from collab_lessons.bias import DotProductBias
from collab_lessons.interpret import UnknownNameError, movie_counts
from collab_lessons.fast import encode_pairs
from collab_lessons.recommend import (bias_only, check_rating, fold_in, most_rated, predict_for_user,
                                      recommend, recommend_new_user, seen_by, top_unseen, user_predictions)

TITLES = ['#na#'] + [f'Movie {i}' for i in range(1, 9)]
USERS = ['#na#', 10, 20, 30]


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = DotProductBias(len(USERS), len(TITLES), 4)
    with torch.no_grad():
        for p in m.parameters(): p.normal_(0, 0.5)
    return m


def test_encode_pairs_maps_unknown_names_to_na():
    df = pd.DataFrame({'user': [20, 99, 10], 'title': ['Movie 3', 'Movie 1', 'Nope']})
    assert encode_pairs(df, USERS, TITLES).tolist() == [[2, 3], [0, 1], [1, 0]]
    assert encode_pairs(df.iloc[:0], USERS, TITLES).shape == (0, 2)


def test_seen_by():
    pairs = torch.tensor([[1, 3], [2, 4], [1, 5]])
    assert seen_by(pairs, 1).tolist() == [3, 5]
    assert seen_by(pairs, 3).tolist() == []


def test_user_predictions_match_forward(model):
    model.eval()
    x = torch.stack([torch.full((len(TITLES),), 2), torch.arange(len(TITLES))], 1)
    with torch.no_grad(): direct = model(x).view(-1)
    assert torch.allclose(user_predictions(model, 2), direct, atol=1e-6)


def test_predict_for_user_numpy_oracle(model):
    v, b = torch.tensor([0.1, -0.2, 0.3, 0.0]), 0.5
    mf, mb = model.item_factors.weight.detach().numpy(), model.item_bias.weight.detach().numpy()[:, 0]
    expected = sigmoid_range(torch.tensor(mf @ v.numpy() + mb + b), 0, 5.5)
    assert torch.allclose(predict_for_user(model, v, b), expected.float(), atol=1e-5)


def test_top_unseen_skips_seen_and_na():
    scores = torch.tensor([99., 1., 5., 3., 4., 2., 0., 0., 0.])
    top = top_unseen(scores, TITLES, seen=[2], n=3)
    assert list(top.title) == ['Movie 4', 'Movie 3', 'Movie 5']
    assert list(top.predicted_rating) == [4., 3., 2.]
    assert len(top_unseen(scores, TITLES, seen=list(range(1, 9)), n=3)) == 0


def test_recommend_excludes_seen(model):
    all_preds = user_predictions(model, 1)
    best = int(all_preds[1:].argmax()) + 1
    recs = recommend(model, TITLES, 1, seen=[best], n=8)
    assert TITLES[best] not in set(recs.title) and len(recs) == 7
    assert recs.predicted_rating.is_monotonic_decreasing


def test_fallbacks(model):
    counts = torch.tensor([0, 5, 9, 1, 0, 0, 0, 0, 3])
    assert list(most_rated(counts, TITLES, seen=[2], n=2).title) == ['Movie 1', 'Movie 8']
    with torch.no_grad(): model.item_bias.weight[:, 0] = torch.arange(len(TITLES)).float()
    assert list(bias_only(model, TITLES, n=2).title) == ['Movie 8', 'Movie 7']


def test_fold_in_recovers_a_user_and_leaves_the_model_alone(model):
    true_v, true_b = torch.tensor([1., -1., 0.5, 0.]), 0.2
    movies = list(range(1, 9))
    ratings = predict_for_user(model, true_v, true_b)[movies]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    v, b = fold_in(model, movies, ratings, wd=0, steps=1000)
    assert torch.allclose(predict_for_user(model, v, b)[movies], ratings, atol=0.05)
    for k, p in model.state_dict().items(): assert torch.equal(p, before[k])
    v2, b2 = fold_in(model, movies, ratings, wd=0, steps=1000)
    assert torch.equal(v, v2) and b == b2  # deterministic


def test_fold_in_weight_decay_shrinks_the_vector(model):
    movies, ratings = [1, 2, 3], [5., 1., 5.]
    small, _ = fold_in(model, movies, ratings, wd=1.0)
    large, _ = fold_in(model, movies, ratings, wd=0.0)
    assert small.norm() < large.norm()


def test_recommend_new_user_validates(model):
    recs = recommend_new_user(model, TITLES, {'movie 1': 5, 'Movie 2': 1}, n=3)
    assert len(recs) == 3 and not {'Movie 1', 'Movie 2'} & set(recs.title)
    with pytest.raises(UnknownNameError, match='Movie 1'): recommend_new_user(model, TITLES, {'Movie 1x': 5})
    with pytest.raises(ValueError, match='between 0.5 and 5'): recommend_new_user(model, TITLES, {'Movie 1': 6})
    with pytest.raises(ValueError, match='at least one'): recommend_new_user(model, TITLES, {})


def test_check_rating():
    assert check_rating('A', '4.5') == 4.5
    for bad in ['x', None, 0, 5.5, float('nan')]:
        with pytest.raises(ValueError, match="'A'"): check_rating('A', bad)
