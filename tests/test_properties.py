"""Property-based tests (hypothesis) from issue 5: predictions stay inside `y_range`, the `Embedding` and the
`create_params` models agree, and the data loaders given arbitrary bytes either return a frame that round-trips
or raise `DataError` naming the file."""
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from collab_lessons.bias import DotProductBias
from collab_lessons.ratings import DataError, read_ratings, read_titles
from collab_lessons.from_scratch import to_scratch
from collab_lessons.prediction_range import DotProductRange

# COLLAB_LESSONS_EXAMPLES=2000 searches longer (the default keeps this file under ~15 s).
FAST = settings(max_examples=int(os.environ.get('COLLAB_LESSONS_EXAMPLES', 150)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
Y_RANGES = [(0, 5.5), (0.5, 5.5), (1, 5), (-1, 1)]
# float32 products of weights up to 2**50 (about 1e15) stay far below float32's largest value (3.4e38), so nothing overflows
# to inf; beyond ~1e19 a dot product can be inf - inf = NaN (and `load_model` refuses NaN or infinite weights).
BIG = 2.0**50


@st.composite
def model_and_batch(draw, model_class, bound):
    "A `model_class` with drawn sizes and weights (each |w| <= `bound`) and a batch of valid (user, movie) indices."
    n_users, n_items, n_factors = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 8))
    model = model_class(n_users, n_items, n_factors, y_range=draw(st.sampled_from(Y_RANGES)))
    weight = st.floats(-bound, bound, width=32, allow_subnormal=False)
    with torch.no_grad():
        for p in model.parameters(): p.copy_(torch.from_numpy(draw(arrays(np.float32, tuple(p.shape), elements=weight))))
    pairs = draw(st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)), min_size=1, max_size=16))
    return model.eval(), torch.tensor(pairs)


@FAST
@given(st.one_of(model_and_batch(DotProductRange, BIG), model_and_batch(DotProductBias, BIG)))
def test_predictions_lie_inside_y_range(case):
    model, x = case
    with torch.no_grad(): preds = model(x).view(-1)
    low, high = model.y_range
    assert preds.shape == (len(x),)
    assert torch.isfinite(preds).all() and (preds >= low).all() and (preds <= high).all(), (preds, model.y_range)


@FAST
@given(model_and_batch(DotProductBias, 100.0))
def test_embedding_and_create_params_models_agree(case):
    model, x = case
    scratch = to_scratch(model).eval()
    with torch.no_grad(): assert torch.equal(model(x), scratch(x))


# ---------------------------------------------------------------- loaders on arbitrary bytes

NUMBERISH = ['', ' ', '0', '1', '3', '5', '6', '-1', '2.5', '1e3', '1e400', 'inf', '-inf', 'NaN', 'nan', 'NA', 'null',
             'None', '1_000', '0x10', ' 4', '4 ', '３', '1,5', '"3"', "'3'", '+2', '9' * 25, '196', '242', '881250949']
TEXTISH = ['Toy Story (1995)', 'Café (1995)', 'Misérables, Les (1995)', '"Quoted" (1990)', '#na#', 'unknown',
           'a\x00b', 'tab\there', 'bell\x07', 'x\ry', '\ufeffBOM', 'Ã©', '  ']


def field(extra):
    return st.one_of(st.sampled_from(NUMBERISH + extra), st.integers(-3, 2000).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=6))


def good_fields(n_fields, extra):
    "Fields of a line that should parse: small whole ids, a rating 1-5, a timestamp (or a title), then the rest."
    first = [st.integers(1, 30).map(str), st.integers(1, 30).map(str) if n_fields == 4 else st.sampled_from(extra or ['T']),
             st.sampled_from(['1', '2', '3', '4', '5', '3.5', '4.0', '1e0']), st.integers(0, 2**32 - 1).map(str)]
    return st.tuples(*first[:2], *first[2:] if n_fields == 4 else [st.just('')] * (n_fields - 2))


@st.composite
def table_bytes(draw, n_fields, sep, extra=()):
    "Bytes of a text table: mostly well-formed lines of `n_fields` fields joined by `sep`, with hostile variations."
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 5))
        if kind >= 3: lines.append(sep.join(draw(good_fields(n_fields, list(extra)))))
        elif kind >= 1:  # a good line with one hostile field
            fields = list(draw(good_fields(n_fields, list(extra))))
            fields[draw(st.integers(0, min(n_fields, 4) - 1))] = draw(st.one_of(st.sampled_from(NUMBERISH), field(list(extra))))
            lines.append(sep.join(fields))
        else:
            n = draw(st.sampled_from([n_fields] * 6 + [0, 1, n_fields - 1, n_fields + 1]))
            sep_used = draw(st.sampled_from([sep] * 8 + [',', ' ', '\t', '|']))
            lines.append(sep_used.join(draw(field(list(extra))) for _ in range(n)))
    text = draw(st.sampled_from(['\n'] * 4 + ['\r\n', '\r'])).join(lines) + draw(st.sampled_from(['', '\n', '\n\n', '\r\n']))
    encoding = draw(st.sampled_from(['utf-8', 'utf-8', 'utf-8', 'utf-8-sig', 'latin-1', 'utf-16', 'cp949']))
    return text.encode(encoding, errors='replace')


def any_bytes(n_fields, sep, extra=()):
    "Structured tables, a valid table with bytes flipped or cut, or plain random bytes."
    return st.one_of(table_bytes(n_fields, sep, extra), st.binary(max_size=300),
                     st.tuples(table_bytes(n_fields, sep, extra), st.binary(max_size=4), st.integers(0, 200))
                       .map(lambda t: t[0][:t[2]] + t[1] + t[0][t[2]:]))


def write_ratings(df, path):
    "`df` in `u.data`'s format: user, movie, rating, timestamp separated by tabs, one line each."
    path.write_text(''.join('\t'.join(str(v) for v in row) + '\n' for row in df.itertuples(index=False)), encoding='utf-8')


def write_titles(df, path):
    "`df` in `u.item`'s format: id and title, then the other 22 fields empty, separated by |."
    path.write_text(''.join(f"{m}|{t}" + '|' * 22 + '\n' for m, t in df.itertuples(index=False)), encoding='utf-8')


def lines_in(data):
    "How many lines a text file holds, leaving out blank lines at its end."
    lines = data.decode('utf-8-sig', errors='replace').split('\n')
    while lines and not lines[-1].strip(): lines.pop()
    return len(lines)


def check_loader(data, read, write, check):
    "`read` on a file holding `data` gives a frame that passes `check` and round-trips through `write`, or a `DataError`."
    with tempfile.TemporaryDirectory() as d:
        path, again = Path(d)/'input.txt', Path(d)/'again.txt'
        path.write_bytes(data)
        try: df = read(path)
        except DataError as e:
            assert str(path) in str(e)
            return None
        assert len(df) == lines_in(data)  # no line dropped or split in two
        check(df)
        write(df, again)
        pd.testing.assert_frame_equal(read(again), df)
        return df


def ratings_are_sane(df):
    assert list(df.columns) == ['user', 'movie', 'rating', 'timestamp']
    assert all(df[c].dtype == 'int64' for c in ('user', 'movie', 'timestamp'))
    assert (df.user >= 1).all() and (df.movie >= 1).all() and df.rating.between(1, 5).all() and (df.timestamp >= 0).all()
    assert not df.duplicated(['user', 'movie']).any()


def titles_are_sane(df):
    assert list(df.columns) == ['movie', 'title'] and df.movie.dtype == 'int64' and (df.movie >= 1).all()
    assert df.movie.is_unique and (df.title.str.strip() != '').all()
    assert not df.title.str.contains(r'[\x00-\x1f\x7f]').any()


@FAST
@given(any_bytes(4, '\t'))
def test_read_ratings_on_arbitrary_bytes_round_trips_or_raises_data_error(data):
    check_loader(data, read_ratings, write_ratings, ratings_are_sane)


@FAST
@given(any_bytes(24, '|', TEXTISH))
def test_read_titles_on_arbitrary_bytes_round_trips_or_raises_data_error(data):
    check_loader(data, read_titles, write_titles, titles_are_sane)


def test_the_generators_reach_both_outcomes():
    "The strategies above make files that parse as well as files that are refused (else the properties prove little)."
    good = '196\t242\t3\t881250949\n186\t302\t3.5\t891717742\r\n'.encode()
    df = check_loader(good, read_ratings, write_ratings, ratings_are_sane)
    assert df is not None and df.rating.tolist() == [3.0, 3.5]
    item = 'Café (1995)'.join(['1|', '|' * 22 + '\n']).encode('latin-1')
    assert check_loader(item, read_titles, write_titles, titles_are_sane).title.tolist() == ['Café (1995)']
    assert check_loader(b'1\t2\t3\n', read_ratings, write_ratings, ratings_are_sane) is None
    outcomes = {'parsed': 0, 'refused': 0}

    @settings(max_examples=100, deadline=None, database=None)
    @given(table_bytes(4, '\t'))
    def count(data):
        df = check_loader(data, read_ratings, write_ratings, ratings_are_sane)
        outcomes['refused' if df is None else 'parsed'] += 1
    count()
    assert outcomes['parsed'] > 0 and outcomes['refused'] > 0, outcomes
