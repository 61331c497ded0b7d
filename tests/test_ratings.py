import gzip

import pandas as pd
import pytest

from collab_lessons import ratings as data
from collab_lessons.ratings import DataError, read_movielens, read_ratings, read_titles, verify_files


def test_ml100k_has_kolya(ml100k):
    assert ml100k.shape == (100_000, 5)
    assert ml100k.loc[ml100k.movie == 242, 'title'].unique().tolist() == ['Kolya (1996)']


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
    f = tmp_path/'ratings.csv.gz'
    f.write_bytes(gzip.compress(b'userId,movieId,rating,timestamp\n1,2,3,4\n' * 50)[:-20])
    with pytest.raises(DataError, match='not a complete gzip file'): read_movielens(f)


# --- the lesson's exercises (nbs/72_ratings.ipynb), executed so their solutions cannot rot

def test_exercise_half_star_in_u_data(tmp_path):
    f = tmp_path/'u.data'
    f.write_text('196\t242\t4.5\t881250949\n')
    assert read_ratings(f).rating.tolist() == [4.5]
    f.write_text('196\t242\t6\t881250949\n')
    with pytest.raises(DataError, match='line 1: the rating is outside 1-5'): read_ratings(f)


@pytest.mark.parametrize('order', ['sorted', 'user order', 'shuffled'])
def test_a_repeated_pair_is_found_in_any_line_order(tmp_path, order):
    "The repeat check sorts the (user, movie) keys with a stable sort, fast on files already in order: it must still find a repeat in each order."
    pairs = [(u, m) for u in range(1, 30) for m in range(1, 40, 3)]
    if order == 'user order': pairs = sorted(pairs, key=lambda p: (p[0], -p[1]))  # users in order, their movies not
    if order == 'shuffled': pairs = pd.DataFrame(pairs).sample(frac=1, random_state=0).itertuples(index=False, name=None)
    pairs = list(pairs)
    lines = [f'{u}\t{m}\t3\t881250949' for u, m in pairs]
    lines.insert(200, f'{pairs[50][0]}\t{pairs[50][1]}\t4\t881250950')  # the pair on line 51, again on line 201
    (tmp_path/'u.data').write_text('\n'.join(lines) + '\n')
    assert len(set(pairs)) == len(pairs)  # no repeat but the planted one
    with pytest.raises(DataError, match=r'line 201: this user rated this movie on an earlier line already'):
        read_ratings(tmp_path/'u.data')
