import os

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(1)  # two shared cores: one thread is much faster here


@pytest.fixture
def tiny_ratings():
    "A hand-made table: 30 users x 20 movies, every (user, movie) pair at most once, ratings 1-5."
    rng = np.random.default_rng(0)
    users, movies = np.meshgrid(np.arange(1, 31), np.arange(1, 21), indexing='ij')
    keep = rng.random(users.shape) < 0.5
    n = int(keep.sum())
    return pd.DataFrame(dict(user=users[keep], movie=movies[keep], rating=rng.integers(1, 6, n),
                             title=[f'Movie {m}' for m in movies[keep]]))


@pytest.fixture(scope='session')
def ml100k():
    "The real ML-100k ratings with titles; skipped when absent, except in CI where it must be there."
    from collab_lessons.own_ratings import load_ratings
    from collab_lessons.ratings import ml100k_folder
    if not (ml100k_folder()/'u.data').exists():
        if os.environ.get('COLLAB_LESSONS_REQUIRE_ML100K'): pytest.fail(f'ML-100k missing at {ml100k_folder()}')
        pytest.skip(f'ML-100k not present at {ml100k_folder()}')
    return load_ratings('ml-100k')


@pytest.fixture
def scale_rows():
    "A maker of `run_scale`-like rows for 1M and 25M ratings with the given microseconds per rating."
    def make(per_rating_us):
        rows = [dict(n_ratings=n, n_users=n // 150, n_items=n // 400, loader_s=2., peak_mb=2000., valid_rmse=.7, us_per_rating=us,
                     s_per_epoch=us * n / 1e6)
                for n, us in zip((1_000_000, 25_000_000), per_rating_us)]
        for r in rows: r.update(size_x=r['n_ratings'] / 1e6, epoch_x=r['s_per_epoch'] / rows[0]['s_per_epoch'])
        return rows
    return make
