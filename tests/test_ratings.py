import pandas as pd
import pytest
from fastai.tabular.core import TabWeightedDL

from collab_lessons import ratings as data
from collab_lessons.ratings import (DataError, collab_dls, distinct_fraction, load_ratings, load_split, random_split_index,
                                   read_movielens, read_ratings, read_titles, split_random, verify_files)


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


def test_bundled_latest_small_loads_offline():
    ratings = load_ratings('ml-latest-small')
    assert ratings.shape == (100_004, 5)
    assert list(ratings.columns) == ['user', 'movie', 'rating', 'timestamp', 'title']
    assert ratings.user.nunique() == 671 and ratings.rating.between(0.5, 5).all()
    assert (data.bundled_path()/'README.txt').exists()


def test_unknown_dataset_lists_choices():
    with pytest.raises(DataError, match="choose one of ml-100k, ml-latest-small"):
        load_ratings('ml-25m')


def test_ml100k_has_kolya(ml100k):
    assert ml100k.shape == (100_000, 5)
    assert ml100k.loc[ml100k.movie == 242, 'title'].unique().tolist() == ['Kolya (1996)']


def test_ml100k_loaders_match_the_course(ml100k):
    dls = collab_dls(ml100k)
    assert (len(dls.classes['user']), len(dls.classes['title'])) == (944, 1665)
    assert len(dls.train.dataset) == 80_000 and distinct_fraction(dls.train) == 1.0


def test_download_failure_names_url_and_folder(monkeypatch):
    def offline(*args, **kwargs): raise ConnectionError('network is unreachable')
    import fastai.data.external
    monkeypatch.setattr(fastai.data.external, 'untar_data', offline)
    with pytest.raises(DataError) as err:
        data.ml100k_path()
    msg = str(err.value)
    assert 'ml-100k.zip' in msg and 'files.grouplens.org' in msg and str(data.ml100k_folder()) in msg


def test_verify_files_reports_partial_and_missing(tmp_path):
    (tmp_path/'u.data').write_text('196\t242\t3\t881250949\n')
    with pytest.raises(DataError, match='u.data is corrupt or partial'):
        verify_files(tmp_path, data.ML100K_CHECKSUMS)
    with pytest.raises(DataError, match='u.item is missing'):
        verify_files(tmp_path, {'u.item': data.ML100K_CHECKSUMS['u.item']})


@pytest.mark.parametrize('text, message', [
    ('196\t242\t3\t881250949\n186\t302\tthree\t891717742\n', "line 2: column 'rating' holds 'three'"),
    ('196\t242\t\t881250949\n', "line 1: column 'rating' is empty"),
    ('196,242,3,881250949\n', 'has 1 column'),
    ('196\t242\t3\t881250949\t7\n', 'has 5 column'),
    ('', 'is empty, so it is not a MovieLens 100k ratings file'),
    ('196\t242\t3\t881250949\n\n186\t302\t3\t891717742\n', 'line 2 has 1 column'),
    ('196\t242\t3\t881250949\n186\t302\t3\t-5\n', 'line 2: the timestamp is not a whole number'),
])
def test_read_ratings_rejects_bad_files(tmp_path, text, message):
    f = tmp_path/'u.data'
    f.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        read_ratings(f)
    assert str(f) in str(err.value)


def test_read_ratings_missing_file(tmp_path):
    with pytest.raises(DataError, match='not found'):
        read_ratings(tmp_path/'u.data')


def test_read_titles_is_latin1(tmp_path):
    f = tmp_path/'u.item'
    f.write_bytes('1|Café (1995)|01-Jan-1995||url|'.encode('latin-1') + b'0|' * 18 + b'0\n')
    assert read_titles(f).title.tolist() == ['Café (1995)']


def test_ratings_without_titles_are_reported():
    ratings = pd.DataFrame(dict(user=[1, 2], movie=[5, 99999], rating=[3, 4]))
    movies = pd.DataFrame(dict(movie=[5], title=['Five']))
    with pytest.raises(DataError, match=r'1 rated movie id\(s\) have no title in u.item, e.g. \[99999\]'):
        data.add_titles(ratings, movies, 'u.item')


# --- one splitting implementation: the rows fastai's RandomSplitter picks, with clear errors

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


# --- one validation policy for every MovieLens format

def test_read_dat_ml1m_format(tmp_path):
    f = tmp_path/'ratings.dat'
    f.write_text('1::1193::5::978300760\n1::661::3::978302109\n6040::1097::4::956715518\n')
    df = read_movielens(f)
    assert list(df.columns) == ['user', 'movie', 'rating', 'timestamp']
    assert df.user.tolist() == [1, 1, 6040] and df.movie.tolist() == [1193, 661, 1097] and df.rating.tolist() == [5, 3, 4]
    assert df.timestamp.iloc[2] == 956715518
    assert read_movielens(tmp_path).equals(df)   # a folder holding ratings.dat


def test_read_dat_ml10m_half_stars(tmp_path):
    f = tmp_path/'ratings.dat'
    f.write_text('1::122::5::838985046\n1::185::4.5::838983525\n')
    assert read_movielens(f).rating.tolist() == [5.0, 4.5]


def test_read_csv_ml25m_format(tmp_path):
    f = tmp_path/'ratings.csv'
    f.write_text('userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n162541,50872,4.5,1240953372\n')
    df = read_movielens(f)
    assert df.user.tolist() == [1, 162541] and df.movie.tolist() == [296, 50872] and df.rating.tolist() == [5.0, 4.5]


@pytest.mark.parametrize('name,text,match', [
    ('ratings.csv', 'user,item,rating,ts\n1,2,3,4\n', 'userId,movieId'),
    ('ratings.dat', '1\t2\t3\t4\n', 'UserID::MovieID'),
    ('ratings.csv', 'userId,movieId,rating,timestamp\n1,x,3,4\n', "line 2: column 'movie' holds 'x'"),
    ('ratings.csv', 'userId,movieId,rating,timestamp\n1,2,3,4\n1,2,7,4\n', 'line 3: the rating is outside 0.5-5'),
    ('ratings.dat', '1::2::3::4\n1::2::4::5\n', 'line 2: this user rated this movie'),
    ('ratings.txt', '1::2::3::4\n', '.dat'),
])
def test_read_movielens_bad_files_name_the_file_and_line(tmp_path, name, text, match):
    f = tmp_path/name
    f.write_text(text)
    with pytest.raises(DataError, match=match) as e: read_movielens(f)
    assert str(f) in str(e.value)


def test_read_movielens_missing(tmp_path):
    with pytest.raises(DataError, match='not found'): read_movielens(tmp_path/'ratings.csv')
    with pytest.raises(DataError, match='neither'): read_movielens(tmp_path)


def test_fast_and_careful_readers_agree(tmp_path):
    "A clean file read by the C parser equals the same file read line by line (the careful path is forced by a blank line)."
    rows = ''.join(f'{u}\t{m}\t{(u * m) % 5 + 1}\t{880000000 + u}\n' for u in range(1, 40) for m in range(1, 30, 3))
    (tmp_path/'a').write_text(rows)
    fast = read_ratings(tmp_path/'a')
    careful = data._as_numbers(data._read_lines(tmp_path/'a', 4, 'x', '\t').set_axis(data.RATING_COLUMNS, axis=1),
                               data.RATING_COLUMNS, tmp_path/'a')
    assert fast.equals(data.check_ratings(careful, tmp_path/'a'))


def test_gzip_that_is_cut_off_is_named(tmp_path):
    import gzip
    f = tmp_path/'ratings.csv.gz'
    f.write_bytes(gzip.compress(b'userId,movieId,rating,timestamp\n1,2,3,4\n' * 50)[:-20])
    with pytest.raises(DataError, match='not a complete gzip file'): read_movielens(f)


# --- the lesson's exercises (nbs/81_ratings.ipynb), executed so their solutions cannot rot

def test_exercise_half_star_in_u_data(tmp_path):
    f = tmp_path/'u.data'
    f.write_text('196\t242\t4.5\t881250949\n')
    assert read_ratings(f).rating.tolist() == [4.5]
    f.write_text('196\t242\t6\t881250949\n')
    with pytest.raises(DataError, match='line 1: the rating is outside 1-5'): read_ratings(f)


def test_exercise_overlap_of_two_random_splits():
    ratings = load_ratings('ml-latest-small')
    a = split_random(ratings, 0.2, seed=1)[1]
    b = split_random(ratings, 0.2, seed=2)[1]
    assert 0.18 < len(a.merge(b, on=['user', 'movie'])) / len(a) < 0.22
