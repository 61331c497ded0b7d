import pandas as pd
import pytest
import torch
from fastai.collab import EmbeddingDotBias

from collab_lessons.bias import DotProductBias
from collab_lessons.interpret import (UnknownNameError, closest_matches, factors_and_biases, find_title, find_user,
                                      movie_bias_table, movie_counts, movie_pca, pca, plot_movie_pca, similar_movies)

TITLES = ['#na#', 'Star Wars (1977)', 'Return of the Jedi (1983)', 'Empire Strikes Back, The (1980)', 'Toy Story (1995)']
USERS = ['#na#', 1, 2, 5, 943]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DotProductBias(len(USERS), len(TITLES), 3)


def test_closest_matches_prefers_substring_then_spelling():
    assert closest_matches('star wars', TITLES)[0] == 'Star Wars (1977)'
    assert closest_matches('Toy Stroy (1995)', TITLES)[0] == 'Toy Story (1995)'
    assert closest_matches('zzzzzz', TITLES) == []
    assert len(closest_matches('(19', TITLES, n=2)) == 2


def test_find_title_exact_and_case_insensitive():
    assert find_title(TITLES, 'Star Wars (1977)') == 1
    assert find_title(TITLES, '  toy story (1995) ') == 4


def test_find_title_unknown_suggests_and_is_not_a_bare_keyerror():
    with pytest.raises(UnknownNameError, match=r"Did you mean: Star Wars \(1977\)") as e:
        find_title(TITLES, 'Star Wars 1977')
    assert not isinstance(e.value, KeyError)
    assert e.value.suggestions[0] == 'Star Wars (1977)'
    with pytest.raises(UnknownNameError, match='Check the spelling'): find_title(TITLES, 'qqqqqqqq')
    with pytest.raises(UnknownNameError): find_title(TITLES, '#na#')


def test_find_user_accepts_strings_and_names_the_range():
    assert find_user(USERS, '5') == 3
    assert find_user(USERS, 943) == 4
    with pytest.raises(UnknownNameError, match='from 1 to 943 \\(4 users\\)'): find_user(USERS, 7)


def test_factors_and_biases_reads_both_model_classes(model):
    edb = EmbeddingDotBias(3, len(USERS), len(TITLES), y_range=(0, 5.5))
    for m in (model, edb):
        uf, ub, mf, mb = factors_and_biases(m)
        assert uf.shape == (5, 3) and ub.shape == (5, 1) and mf.shape == (5, 3) and mb.shape == (5, 1)
        assert not uf.requires_grad
    assert torch.equal(factors_and_biases(edb)[2], edb.i_weight.weight.detach())


def test_movie_bias_table_sorted_with_stats(model):
    with torch.no_grad(): model.item_bias.weight[:, 0] = torch.tensor([0., 0.3, -0.2, 0.1, 0.5])
    ratings = pd.DataFrame({'user': [1, 2, 2], 'title': ['Star Wars (1977)', 'Star Wars (1977)', 'Toy Story (1995)'],
                            'rating': [5, 3, 4]})
    table = movie_bias_table(model, TITLES, ratings)
    assert list(table.title) == ['Return of the Jedi (1983)', 'Empire Strikes Back, The (1980)', 'Star Wars (1977)', 'Toy Story (1995)']
    star = table.set_index('title').loc['Star Wars (1977)']
    assert star.mean_rating == 4 and star.n_ratings == 2
    assert pd.isna(table.set_index('title').loc['Return of the Jedi (1983)', 'mean_rating'])


def test_pca_matches_numpy_svd():
    torch.manual_seed(1)
    x = torch.randn(50, 6) * torch.tensor([4., 2., 1., .5, .2, .1])
    ours = pca(x, 2)
    centred = (x - x.mean(0)).numpy()
    import numpy as np
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T
    # principal directions are defined up to sign
    for j in range(2): assert np.allclose(np.abs(ours[:, j].numpy()), np.abs(ref[:, j]), atol=1e-4)
    assert ours[:, 0].var() > ours[:, 1].var()


def test_movie_counts_and_pca_table(model):
    ratings = pd.DataFrame({'user': [1, 2, 5], 'title': ['Toy Story (1995)'] * 2 + ['Star Wars (1977)'], 'rating': [4, 5, 3]})
    counts = movie_counts(ratings, TITLES)
    assert counts.tolist() == [0, 1, 0, 0, 2]
    coords = movie_pca(model, TITLES, counts, n_fit=3)
    assert list(coords.columns) == ['title', 'n_ratings', 'pc1', 'pc2']
    assert coords.title[0] == 'Toy Story (1995)' and len(coords) == 3
    fig = plot_movie_pca(coords, n=3)
    assert len(fig.axes[0].texts) == 3


def test_similar_movies_matches_a_hand_computed_cosine(model):
    with torch.no_grad():
        model.item_factors.weight[:] = torch.tensor([[9., 9, 9], [1, 0, 0], [2, 0.1, 0], [0, 1, 0], [-1, 0, 0]])
    sims = similar_movies(model, TITLES, 'star wars (1977)', n=10)
    assert list(sims.title) == ['Return of the Jedi (1983)', 'Empire Strikes Back, The (1980)', 'Toy Story (1995)']
    assert sims.similarity.tolist() == pytest.approx([0.999, 0.0, -1.0], abs=1e-3)
    counts = torch.tensor([0, 50, 5, 50, 50])
    assert 'Return of the Jedi (1983)' not in set(similar_movies(model, TITLES, 'Star Wars (1977)', counts=counts, min_ratings=20).title)
    with pytest.raises(UnknownNameError): similar_movies(model, TITLES, 'Star Wars')


def test_real_titles_suggest_the_right_movie(ml100k):
    titles = ['#na#'] + sorted(ml100k.title.unique())
    with pytest.raises(UnknownNameError) as e: find_title(titles, 'star wars 1977')
    assert e.value.suggestions[0] == 'Star Wars (1977)'
    assert titles[find_title(titles, 'STAR WARS (1977)')] == 'Star Wars (1977)'
