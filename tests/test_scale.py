import numpy as np
import pytest

from collab_lessons.scale import ML25M_SHAPE, synthetic_ratings


def test_ml25m_shape_constants():
    assert ML25M_SHAPE == dict(n_users=162_541, n_items=59_047, n_ratings=25_000_095)


def test_synthetic_ratings_shape_distinct_pairs_half_stars():
    df = synthetic_ratings(n_users=300, n_items=200, n_ratings=10_000, seed=1)
    assert len(df) == 10_000 and not df.duplicated(['user', 'movie']).any()
    assert set(np.unique(df.rating)) <= set(np.arange(1, 11) / 2)
    assert df.user.between(1, 300).all() and df.movie.between(1, 200).all()
    assert df.rating.dtype == np.float32 and df.user.dtype == np.int32
    counts = df.movie.value_counts()
    assert counts.iloc[0] > 5 * counts.median()   # popularity is skewed, as in MovieLens


def test_synthetic_ratings_seeded_and_signal():
    a, b = synthetic_ratings(n_ratings=2000, seed=5), synthetic_ratings(n_ratings=2000, seed=5)
    assert a.equals(b) and not a.equals(synthetic_ratings(n_ratings=2000, seed=6))
    # biases make users differ: per-user means spread more than noise alone would allow
    big = synthetic_ratings(n_users=200, n_items=400, n_ratings=40_000, seed=0)
    assert big.groupby('user').rating.mean().std() > 0.2
    with pytest.raises(ValueError, match='possible'): synthetic_ratings(n_users=3, n_items=3, n_ratings=10)
