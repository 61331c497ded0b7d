import numpy as np
import pytest

from collab_lessons.data import DataError
from collab_lessons.scale import ML25M_SHAPE, read_movielens, synthetic_ratings


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


def test_read_dat_ml1m_format(tmp_path):
    f = tmp_path/'ratings.dat'
    f.write_text('1::1193::5::978300760\n1::661::3::978302109\n6040::1097::4::956715518\n')
    df = read_movielens(f)
    assert list(df.columns) == ['user', 'movie', 'rating', 'timestamp']
    assert df.user.tolist() == [1, 1, 6040] and df.movie.tolist() == [1193, 661, 1097] and df.rating.tolist() == [5, 3, 4]
    assert df.timestamp.iloc[2] == 956715518 and df.user.dtype == np.int32
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
    assert df.rating.dtype == np.float32


@pytest.mark.parametrize('name,text,match', [
    ('ratings.csv', 'user,item,rating,ts\n1,2,3,4\n', 'userId,movieId'),
    ('ratings.dat', '1\t2\t3\t4\n', 'UserID::MovieID'),
    ('ratings.csv', 'userId,movieId,rating,timestamp\n1,x,3,4\n', 'not numbers'),
    ('ratings.txt', '1::2::3::4\n', '.dat'),
])
def test_read_movielens_bad_files_name_the_file(tmp_path, name, text, match):
    f = tmp_path/name
    f.write_text(text)
    with pytest.raises(DataError, match=match) as e: read_movielens(f)
    assert str(f) in str(e.value)


def test_read_movielens_missing(tmp_path):
    with pytest.raises(DataError, match='not found'): read_movielens(tmp_path/'ratings.csv')
    with pytest.raises(DataError, match='neither'): read_movielens(tmp_path)
