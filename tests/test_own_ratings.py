import numpy as np
import pandas as pd
import pytest

from collab_lessons import ratings as data
from collab_lessons.own_ratings import load_ratings, read_item_titles, read_own_ratings
from collab_lessons.ratings import DataError
from collab_lessons.splits import collab_dls


# --- your own ratings: CSV/TSV/Parquet, names found from the header, string ids, the same checks

@pytest.mark.parametrize('text', [
    'userId,movieId,rating,timestamp\n1,10,4.5,964982703\n2,10,3,964982224\n',
    'user_id\titem_id\tscore\n1\t10\t4.5\n2\t10\t3\n',
    '1;10;4.5\n2;10;3\n',
    ' User ,Product, Stars \n1,10,4.5\n2,10,3\n',
])
def test_own_ratings_in_several_dialects(tmp_path, text):
    f = tmp_path/'r.csv'
    f.write_text(text)
    df = read_own_ratings(f)
    assert df.user.tolist() == [1, 2] and df.movie.tolist() == [10, 10] and df.rating.tolist() == [4.5, 3.0]


def test_own_ratings_parquet_with_string_ids_and_dates(tmp_path):
    f = tmp_path/'r.parquet'
    pd.DataFrame(dict(customer=['a', 'b'], asin=['B01', 'B02'], overall=[5, 1], date=['2020-01-02', '2021-03-04'])).to_parquet(f)
    df = read_own_ratings(f)
    assert df.user.tolist() == ['a', 'b'] and df.movie.tolist() == ['B01', 'B02'] and df.rating.tolist() == [5, 1]
    assert df.timestamp.tolist() == [int(pd.Timestamp('2020-01-02', tz='UTC').timestamp()), int(pd.Timestamp('2021-03-04', tz='UTC').timestamp())]


def test_own_ratings_named_columns(tmp_path):
    f = tmp_path/'r.csv'
    f.write_text('a,b,c,d\nx,1,2,9\ny,1,5,9\n')
    df = read_own_ratings(f, user='a', item='b', rating='c')
    assert df.columns.tolist() == ['user', 'movie', 'rating'] and df.user.tolist() == ['x', 'y']


@pytest.mark.parametrize('text, kwargs, match', [
    ('a,b,c\n1,2,3\n', {}, r'cannot tell which column holds the user, item, rating; its columns are \[.a., .b., .c.\]'),
    ('user,item,rating\n1,2,x\n', {}, "line 2: column 'rating' holds 'x'"),
    ('user,item,rating\n1,2,3\n1,2,4\n', {}, 'line 3: this user rated this item on an earlier line already'),
    ('user,item,rating\n1,,3\n', {}, 'line 2: the item id is empty'),
    ('user,item,rating\n1,2,inf\n', {}, 'line 2: the rating is not a finite number'),
    ('user,item,rating,time\n1,2,3,yesterday\n', {}, "line 2: the timestamp 'yesterday' is neither"),
    ('user,item,rating\n1,2,3\n', dict(user='uid'), "no column 'uid' for the users"),
    ('1 2 3\n', {}, 'no tab, comma, semicolon'),
    ('1,2,3,4,5\n', {}, 'has 5 columns and no header'),
])
def test_own_ratings_errors_name_the_file_line_and_fix(tmp_path, text, kwargs, match):
    f = tmp_path/'r.csv'
    f.write_text(text)
    with pytest.raises(DataError, match=match) as e: read_own_ratings(f, **kwargs)
    assert str(f) in str(e.value)


def test_own_ratings_refuses_utf16_folders_and_broken_parquet(tmp_path):
    (tmp_path/'u16.csv').write_bytes('user,item,rating\n1,2,3\n'.encode('utf-16'))
    with pytest.raises(DataError, match='UTF-16'): read_own_ratings(tmp_path/'u16.csv')
    with pytest.raises(DataError, match='not a file'): read_own_ratings(tmp_path)
    (tmp_path/'bad.parquet').write_bytes(b'PAR1 not really')
    with pytest.raises(DataError, match='not a readable Parquet file'): read_own_ratings(tmp_path/'bad.parquet')


def test_own_ratings_train_with_the_course_loaders(tmp_path, tiny_ratings):
    "String ids go through collab_dls like MovieLens ids."
    f = tmp_path/'r.csv'
    tiny_ratings.assign(user='u' + tiny_ratings.user.astype(str))[['user', 'movie', 'rating']].to_csv(f, index=False)
    df = read_own_ratings(f)
    dls = collab_dls(df, item_name='movie', bs=16)
    assert len(dls.train_ds) + len(dls.valid_ds) == len(tiny_ratings) and dls.classes['user'][1].startswith('u')


# --- load_ratings: a name, a MovieLens folder, or your own file, with titles from any titles file

def test_load_ratings_from_movielens_1m_folder(tmp_path):
    (tmp_path/'ratings.dat').write_text('1::1193::5::978300760\n2::661::3::978302109\n')
    (tmp_path/'movies.dat').write_bytes('1193::One Flew Over the Cuckoo\'s Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation\n'.encode('latin-1'))
    df = load_ratings(str(tmp_path))
    assert df.title.tolist() == ["One Flew Over the Cuckoo's Nest (1975)", 'James and the Giant Peach (1996)']


def test_load_ratings_from_a_ml100k_copy_folder(tmp_path):
    (tmp_path/'u.data').write_text('1\t2\t3\t881250949\n')
    (tmp_path/'u.item').write_bytes(b'2|Caf\xe9 (1995)|01-Jan-1995||url|' + b'0|' * 18 + b'0\n')
    assert load_ratings(tmp_path).title.tolist() == ['Café (1995)']


def test_load_ratings_own_file_with_an_items_file(tmp_path):
    (tmp_path/'r.csv').write_text('user,item,rating\nu1,B1,5\nu2,B2,4\n')
    (tmp_path/'items.csv').write_text('item_id,title\nB1,First\nB2,Second\n')
    assert load_ratings(tmp_path/'r.csv', items=tmp_path/'items.csv').title.tolist() == ['First', 'Second']
    assert load_ratings(tmp_path/'r.csv').title.tolist() == ['B1', 'B2']      # untitled items show their id
    (tmp_path/'items.csv').write_text('item_id,title\nB1,First\n')
    with pytest.raises(DataError, match=r"1 rated movie id\(s\) have no title in .*items.csv, e.g. \['B2'\]"):
        load_ratings(tmp_path/'r.csv', items=tmp_path/'items.csv')


def test_load_ratings_unknown_name_or_missing_path():
    with pytest.raises(DataError, match='or give the path of a ratings file or folder'): load_ratings('no/such/file.csv')


def test_numeric_ids_skip_the_text_round_trip(tmp_path):
    "Integer and whole-float id columns come out as int64 as before; string ids stay strings; titles can be left out."
    df = pd.DataFrame(dict(user=np.array([3, 1, 2], dtype='int32'), item=[10., 20., 10.], rating=[4, 5, 3]))
    df.to_parquet(tmp_path/'r.parquet', index=False)
    out = read_own_ratings(tmp_path/'r.parquet')
    assert out.user.dtype == 'int64' and out.movie.dtype == 'int64' and out.movie.tolist() == [10, 20, 10]
    assert 'title' not in load_ratings(tmp_path/'r.parquet', titles=False) and 'title' in load_ratings(tmp_path/'r.parquet')
    df.assign(item=['a', 'b', 'a']).to_csv(tmp_path/'s.csv', index=False)
    assert read_own_ratings(tmp_path/'s.csv').movie.tolist() == ['a', 'b', 'a']


def test_repeated_pairs_found_for_negative_and_huge_ids(tmp_path):
    "Ids outside 0-MAX_ID skip the one-key sort but are still checked, with the same message and line."
    for users in ([-1, 5, -1], [2**40, 5, 2**40]):
        pd.DataFrame(dict(user=users, item=[7, 7, 7], rating=[1, 2, 3])).to_csv(tmp_path/'d.csv', index=False)
        with pytest.raises(DataError, match=r'line 4: this user rated this item on an earlier line already'):
            read_own_ratings(tmp_path/'d.csv')


@pytest.mark.slow
def test_big_csv_read_in_chunks_keeps_line_numbers(tmp_path):
    "A file over one 2M-line chunk is read in pieces; a repeat in the second piece is still named by its line."
    n = (1 << 21) + 1000
    df = pd.DataFrame(dict(user=np.arange(n) // 50 + 1, item=np.arange(n) % 50 + 1, rating=np.full(n, 4)))
    df.to_csv(tmp_path/'big.csv', index=False)
    assert len(read_own_ratings(tmp_path/'big.csv')) == n
    df.iloc[[n - 10]] = df.iloc[[3]].to_numpy()
    df.to_csv(tmp_path/'big.csv', index=False)
    with pytest.raises(DataError, match=f'line {n - 10 + 2}: this user rated'):
        read_own_ratings(tmp_path/'big.csv')


# --- load_ratings by name

def test_bundled_latest_small_loads_offline():
    ratings = load_ratings('ml-latest-small')
    assert ratings.shape == (100_004, 5)
    assert list(ratings.columns) == ['user', 'movie', 'rating', 'timestamp', 'title']
    assert ratings.user.nunique() == 671 and ratings.rating.between(0.5, 5).all()
    assert (data.bundled_path()/'README.txt').exists()


def test_unknown_dataset_lists_choices():
    with pytest.raises(DataError, match="choose one of ml-100k, ml-latest-small"):
        load_ratings('ml-25m')


# --- the lesson's exercises (nbs/73_own_ratings.ipynb), executed so their solutions cannot rot

def test_exercise_named_columns(tmp_path):
    f = tmp_path/'r.csv'
    f.write_text('who;what;how\n1;10;5\n2;10;4\n')
    with pytest.raises(DataError, match='--user-col, --item-col, --rating-col'): read_own_ratings(f)
    df = read_own_ratings(f, user='who', item='what', rating='how')
    assert df.user.tolist() == [1, 2] and df.movie.tolist() == [10, 10] and df.rating.tolist() == [5, 4]


def test_exercise_seconds_and_dates_mix(tmp_path):
    f = tmp_path/'r.csv'
    f.write_text('user,item,rating,time\n1,10,5,1577923200\n2,10,4,2020-01-02\n')
    assert read_own_ratings(f).timestamp.tolist() == [1577923200, 1577923200]
    f.write_text('user,item,rating,time\n1,10,5,1577923200\n2,10,4,yesterday\n')
    with pytest.raises(DataError, match="line 3: the timestamp 'yesterday'"): read_own_ratings(f)


def test_item_titles_of_an_own_file_keep_string_ids(tmp_path):
    f = tmp_path/'items.csv'
    f.write_text('item_id,title\nB1,First\nB2,Second\n')
    assert read_item_titles(f).to_dict('list') == dict(movie=['B1', 'B2'], title=['First', 'Second'])
    f.write_text('item_id,name\nB1,First\n')
    with pytest.raises(DataError, match='expected an item id column .* and a title column'): read_item_titles(f)


def test_error_shows_the_row_as_plain_values(tmp_path):
    "Beside string ids, the rating in the message reads 3, not np.int64(3)."
    f = tmp_path/'r.csv'
    f.write_text('user,item,rating\nu1,B1,5\nu1,B1,3\n')
    with pytest.raises(DataError, match=r"line 3: this user rated this item on an earlier line already \(\['u1', 'B1', 3\]\)"):
        read_own_ratings(f)
