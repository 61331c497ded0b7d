import numpy as np
import pandas as pd
import pytest
from fastai.tabular.core import TabWeightedDL

from collab_lessons.own_ratings import load_ratings
from collab_lessons.ratings import DataError
from collab_lessons.splits import collab_dls, distinct_fraction, random_split_index, split_random

def epoch_rows(dl):
    "(user, item) index pairs of every row the loader yields in one epoch."
    return [tuple(row) for xb, _ in dl for row in xb.tolist()]


def test_shuffle_visits_every_training_row_exactly_once(tiny_ratings):
    dls = collab_dls(tiny_ratings, bs=16)
    rows = epoch_rows(dls.train)
    assert len(rows) == len(dls.train.dataset) and len(set(rows)) == len(rows)
    assert distinct_fraction(dls.train) == 1.0


def test_fastai_default_loader_samples_with_replacement(tiny_ratings):
    # The regression the course works around: if this starts failing, fastai fixed its loader.
    dls = collab_dls(tiny_ratings, bs=16, dl_type=TabWeightedDL, drop_last=True)
    assert distinct_fraction(dls.train) < 0.8


def test_collab_dls_is_reproducible(tiny_ratings):
    first, second = collab_dls(tiny_ratings, bs=16), collab_dls(tiny_ratings, bs=16)
    assert epoch_rows(first.train) == epoch_rows(second.train)
    assert first.valid.items.index.tolist() == second.valid.items.index.tolist()


def test_collab_dls_names_missing_column(tiny_ratings):
    with pytest.raises(DataError, match=r"no column\(s\) \['title'\]"):
        collab_dls(tiny_ratings.drop(columns='title'))


def test_ml100k_loaders_match_the_course(ml100k):
    dls = collab_dls(ml100k)
    assert (len(dls.classes['user']), len(dls.classes['title'])) == (944, 1665)
    assert len(dls.train.dataset) == 80_000 and distinct_fraction(dls.train) == 1.0


def test_split_random_picks_randomsplitters_rows(tiny_ratings):
    from fastai.data.transforms import RandomSplitter
    for seed, pct in [(42, 0.2), (0, 0.1), (7, 0.5)]:
        train_idx, valid_idx = RandomSplitter(valid_pct=pct, seed=seed)(range(len(tiny_ratings)))
        train, valid = split_random(tiny_ratings, pct, seed)
        assert valid.equals(tiny_ratings.iloc[list(valid_idx)].reset_index(drop=True))
        assert train.equals(tiny_ratings.iloc[list(train_idx)].reset_index(drop=True))


@pytest.mark.parametrize('pct', [0, 1, 1.5, -0.1, float('nan'), 1e-9])
def test_split_random_refuses_shares_that_leave_a_side_empty(tiny_ratings, pct):
    with pytest.raises(ValueError, match=f'valid_pct={pct}'): split_random(tiny_ratings, pct)


def test_collab_dls_valid_set_is_split_randoms(tiny_ratings):
    dls = collab_dls(tiny_ratings, bs=16, valid_pct=0.25, seed=3)
    _, valid = split_random(tiny_ratings, 0.25, seed=3)
    items = dls.valid.items  # codes into dls.classes
    assert [dls.classes['title'][i] for i in items.title] == valid.title.tolist()
    assert [dls.classes['user'][i] for i in items.user] == valid.user.tolist()


def test_collab_dls_with_a_given_valid_set(tiny_ratings):
    train, test = tiny_ratings.iloc[:200], tiny_ratings.iloc[200:]
    dls = collab_dls(train, test, bs=16)
    assert len(dls.train_ds) == len(train) and len(dls.valid_ds) == len(test)
    assert dls.valid.items.rating.tolist() == test.rating.tolist()


def test_collab_dls_matches_fastais_from_df(tiny_ratings):
    from fastai.collab import CollabDataLoaders
    ours, ref = collab_dls(tiny_ratings, bs=16), CollabDataLoaders.from_df(tiny_ratings, item_name='title', bs=16, seed=42)
    assert ours.classes == ref.classes
    assert ours.valid.items[['user', 'title', 'rating']].values.tolist() == ref.valid.items[['user', 'title', 'rating']].values.tolist()


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(bs=0), ValueError, 'bs=0'), (dict(bs=-1), ValueError, 'bs=-1'), (dict(bs=2.5), ValueError, 'bs=2.5'),
    (dict(valid_pct=0), ValueError, 'valid_pct=0'), (dict(valid_pct=-0.1), ValueError, 'valid_pct=-0.1'),
    (dict(valid_pct=1.5), ValueError, 'valid_pct=1.5'),
])
def test_collab_dls_refuses_bad_arguments(tiny_ratings, kwargs, error, match):
    with pytest.raises(error, match=match): collab_dls(tiny_ratings, **kwargs)


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), 'four'])
def test_collab_dls_refuses_ratings_that_are_not_finite_numbers(tiny_ratings, bad):
    df = tiny_ratings.astype({'rating': object})
    df.loc[5, 'rating'] = bad
    with pytest.raises(DataError, match='ratings, row 5'): collab_dls(df)


def test_random_split_index_partitions_the_rows():
    train, valid = random_split_index(1000, 0.3, seed=1)
    assert len(valid) == 300 and sorted(train.tolist() + valid.tolist()) == list(range(1000))


def test_exercise_overlap_of_two_random_splits():
    ratings = load_ratings('ml-latest-small')
    a = split_random(ratings, 0.2, seed=1)[1]
    b = split_random(ratings, 0.2, seed=2)[1]
    assert 0.18 < len(a.merge(b, on=['user', 'movie'])) / len(a) < 0.22



# --- per-user splits for ranking (stratified_split, temporal_split)

def recommenders_stratified(df, ratio, seed):
    "Microsoft Recommenders' python_stratified_split rule, restated with pandas: per user, sample(frac=1, random_state=seed), first round(ratio * n) train."
    train, test = [], []
    for _, g in df.groupby('user'):
        g = g.sample(frac=1, random_state=seed)
        cut = round(ratio * len(g))
        train.append(g.iloc[:cut]); test.append(g.iloc[cut:])
    return pd.concat(train).sort_index(), pd.concat(test).sort_index()


@pytest.mark.parametrize('ratio,seed', [(0.75, 42), (0.5, 0), (0.8, 7)])
def test_stratified_split_follows_the_recommenders_rule(tiny_ratings, ratio, seed):
    from collab_lessons.splits import stratified_split
    df = tiny_ratings.sample(frac=1, random_state=1).reset_index(drop=True)  # users' rows interleaved
    train, test = stratified_split(df, ratio, seed)
    want_train, want_test = recommenders_stratified(df, ratio, seed)
    assert train.equals(want_train.reset_index(drop=True)) and test.equals(want_test.reset_index(drop=True))


def test_stratified_split_keeps_every_rating_once(tiny_ratings):
    from collab_lessons.splits import stratified_split
    train, test = stratified_split(tiny_ratings)
    both = pd.concat([train, test])
    assert len(both) == len(tiny_ratings) and not both.duplicated(['user', 'movie']).any()
    assert set(test.user) == set(tiny_ratings.user)  # every user (with at least 2 ratings) is tested


def test_temporal_split_holds_out_each_users_latest(tiny_ratings):
    from collab_lessons.splits import temporal_split
    df = tiny_ratings.assign(timestamp=np.random.default_rng(0).integers(0, 50, len(tiny_ratings)))  # ties on purpose
    train, test = temporal_split(df, 0.2)
    counts = df.user.value_counts()
    assert train.user.value_counts().sort_index().tolist() == [int(np.round(0.8 * n)) for n in counts.sort_index()]
    last_train, first_test = train.groupby('user').timestamp.max(), test.groupby('user').timestamp.min()
    assert (first_test >= last_train.reindex(first_test.index)).all()
    assert len(pd.concat([train, test]).drop_duplicates(['user', 'movie'])) == len(df)


def test_temporal_split_needs_timestamps(tiny_ratings):
    from collab_lessons.splits import temporal_split
    with pytest.raises(DataError, match="no 'timestamp' column"):
        temporal_split(tiny_ratings)
    with pytest.raises(ValueError, match='test_pct=0'):
        temporal_split(tiny_ratings.assign(timestamp=0), 0)
