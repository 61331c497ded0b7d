import pandas as pd
import pytest
from fastai.tabular.core import TabWeightedDL

from collab_lessons import data
from collab_lessons.data import (DataError, collab_dls, distinct_fraction, load_ratings, read_ratings,
                                 read_titles, verify_files)


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
    monkeypatch.setattr(data, 'untar_data', offline)
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
