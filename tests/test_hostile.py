"""Hostile inputs and faults from the catalogue in `tests/HOSTILE.md` that no other test file checks.

A gap the library does not handle yet gets a test marked `xfail(strict=True)` that asserts the behaviour the
catalogue asks for, so it starts passing (and, being strict, fails the run) as soon as the gap is fixed; then
drop the mark and update HOSTILE.md. No such test is left."""
import io
import json
import os
import pickle
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fastai.data.external import fastai_cfg

import collab_lessons.model_files as mf
import collab_lessons.outputs as outputs
from collab_lessons import ratings as data
from collab_lessons.bias import DotProductBias
from collab_lessons.entry import main
from collab_lessons.ratings import DataError, read_ratings, read_titles
from collab_lessons.splits import load_split
from collab_lessons.interpret import UnknownNameError
from collab_lessons.model_files import ModelFileError, load_model, model_record, save_model
from collab_lessons.recommend import recommend, recommend_new_user

USERS = ['#na#', 3, 7, 11]
TITLES = ['#na#', 'A (1990)', 'B (1991)', 'C (1992)', 'D (1993)']
ITEM_TAIL = b'|01-Jan-1995||http://x|' + b'0|' * 18 + b'0\n'  # the 22 fields after id and title


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DotProductBias(len(USERS), len(TITLES), 4)


@pytest.fixture
def offline(monkeypatch):
    "No name lookups and no connections: any attempt raises the error a machine without DNS gives."
    def no_dns(*args, **kwargs): raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
    monkeypatch.setattr(socket, 'getaddrinfo', no_dns)
    monkeypatch.setattr(socket, 'create_connection', no_dns)


@pytest.fixture
def fastai_home(tmp_path, monkeypatch, offline):
    "An empty `FASTAI_HOME` in `tmp_path/'home'` (fastai caches its config, so the cache is cleared around the test)."
    home = tmp_path/'home'
    monkeypatch.setenv('FASTAI_HOME', str(home))
    fastai_cfg.cache_clear()
    yield home
    fastai_cfg.cache_clear()


def write(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# ---------------------------------------------------------------- data files

def test_header_line_is_named(tmp_path):
    f = write(tmp_path/'u.data', 'user\tmovie\trating\ttimestamp\n196\t242\t3\t881250949\n')
    with pytest.raises(DataError, match=r"line 1: column 'user' holds 'user', which is not a number") as e: read_ratings(f)
    assert str(f) in str(e.value)


@pytest.mark.parametrize('word', ['NaN', 'nan', 'NA', 'null'])
def test_nan_ratings_are_refused_with_line(tmp_path, word):
    f = write(tmp_path/'u.data', f'196\t242\t3\t881250949\n186\t302\t{word}\t891717742\n')
    with pytest.raises(DataError, match=rf"line 2: column 'rating' holds '{word}', which is not a number"): read_ratings(f)


def test_html_page_saved_as_u_data(tmp_path):
    page = '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1></body></html>\n'
    f = write(tmp_path/'u.data', page)
    with pytest.raises(DataError, match=r'has 1 column\(s\) where a MovieLens 100k ratings file .* has 4; check the delimiter'):
        read_ratings(f)


@pytest.mark.parametrize('seed', range(5))
def test_random_bytes_as_u_data(tmp_path, seed):
    f = write(tmp_path/'u.data', np.random.default_rng(seed).bytes(2000))
    with pytest.raises(DataError) as e: read_ratings(f)
    assert str(f) in str(e.value)


@pytest.mark.parametrize('cut, message', [
    ('186\t30', "line 2 has 2 column"),
    ('186\t302\t3', "line 2 has 3 column"),
    ('186\t302\t3\t', "line 2: column 'timestamp' is empty"),
])
def test_truncated_u_data_names_the_last_line(tmp_path, cut, message):
    f = write(tmp_path/'u.data', '196\t242\t3\t881250949\n' + cut)
    with pytest.raises(DataError, match=message): read_ratings(f)


def test_u_data_saved_as_utf16_is_refused(tmp_path):
    f = write(tmp_path/'u.data', '196\t242\t3\t881250949\n'.encode('utf-16'))
    with pytest.raises(DataError) as e: read_ratings(f)
    assert str(f) in str(e.value)


def test_windows_line_endings_and_bom_still_parse(tmp_path):
    f = write(tmp_path/'u.data', '\ufeff196\t242\t3\t881250949\r\n186\t302\t3\t891717742\r\n'.encode('utf-8'))
    assert read_ratings(f).to_dict('list') == dict(user=[196, 186], movie=[242, 302], rating=[3, 3],
                                                 timestamp=[881250949, 891717742])


def test_u_item_in_utf16_is_refused(tmp_path):
    f = write(tmp_path/'u.item', b'1|Caf\xe9 (1995)' + ITEM_TAIL)
    f.write_bytes(f.read_bytes().decode('latin-1').encode('utf-16'))
    with pytest.raises(DataError, match=r"is in the wrong encoding: it holds NUL bytes, so it is UTF-16 .* Save it again as UTF-8") as e:
        read_titles(f)
    assert str(f) in str(e.value)


@pytest.mark.parametrize('encoding', ['utf-8', 'utf-8-sig', 'latin-1'])
def test_u_item_in_utf8_or_latin1_is_decoded(tmp_path, encoding):
    tail = ITEM_TAIL.decode()
    text = ''.join(f'{i}|{t}{tail}' for i, t in enumerate(['Café (1995)', 'Misérables, Les (1995)', 'Plain (1990)'], 1))
    f = write(tmp_path/'u.item', text.encode(encoding))
    assert read_titles(f).title.tolist() == ['Café (1995)', 'Misérables, Les (1995)', 'Plain (1990)']


def test_real_u_item_decodes_the_same_as_latin1_or_utf8(tmp_path):
    from collab_lessons.ratings import ml100k_folder
    item = ml100k_folder()/'u.item'
    if not item.exists(): pytest.skip('ML-100k not present')
    original = read_titles(item)
    assert original.loc[original.movie == 543, 'title'].item() == 'Misérables, Les (1995)'
    resaved = write(tmp_path/'u.item', item.read_bytes().decode('latin-1').encode('utf-8'))
    assert read_titles(resaved).equals(original) and not original.title.str.contains('Ã').any()


def test_duplicate_pairs_are_refused(tmp_path):
    f = write(tmp_path/'u.data', '196\t242\t3\t881250949\n196\t242\t5\t881250950\n')
    with pytest.raises(DataError, match='line 2'): read_ratings(f)


def test_fractional_ids_are_refused(tmp_path):
    f = write(tmp_path/'u.data', '196\t242\t3\t881250949\n186\t302.5\t4\t891717742\n')
    with pytest.raises(DataError, match="line 2: column 'movie' holds a fractional id"): read_ratings(f)


@pytest.mark.parametrize('rating', ['0', '6', '-1', '1e9'])
def test_out_of_range_ratings_are_refused(tmp_path, rating):
    f = write(tmp_path/'u.data', f'196\t242\t3\t881250949\n186\t302\t{rating}\t891717742\n')
    with pytest.raises(DataError, match='line 2'): read_ratings(f)


@pytest.mark.parametrize('line, message', [
    ('0\t302\t4\t891717742', "line 2: column 'user' holds an id outside 1-2147483647"),
    ('inf\t302\t4\t891717742', "line 2: column 'user' holds an id outside 1-2147483647"),
    ('186\t-3\t4\t891717742', "line 2: column 'movie' holds an id outside 1-2147483647"),
    ('186\t302\t4\t8917177.5', 'line 2: the timestamp is not a whole number of seconds'),
])
def test_ids_and_timestamps_out_of_range_are_refused(tmp_path, line, message):
    f = write(tmp_path/'u.data', f'196\t242\t3\t881250949\n{line}\n')
    with pytest.raises(DataError, match=message): read_ratings(f)


@pytest.mark.parametrize('second, message', [
    ('1|B (1991)', 'line 2: this movie id is on an earlier line already'),
    ('2| ', 'line 2: the title is empty'),
    ('2|B\x07 (1991)', 'line 2: the title holds a control character'),
])
def test_u_item_with_repeated_ids_or_bad_titles_is_refused(tmp_path, second, message):
    f = write(tmp_path/'u.item', b'1|A (1990)' + ITEM_TAIL + second.encode() + ITEM_TAIL)
    with pytest.raises(DataError, match=message) as e: read_titles(f)
    assert str(f) in str(e.value)


def test_unknown_split_lists_choices():
    with pytest.raises(DataError, match="Unknown split 'u9': choose one of u1, u2"): load_split('u9')


# ------------------------------------------------ archives, network, FASTAI_HOME

def _archive(home):
    arch = home/'archive'
    arch.mkdir(parents=True)
    return arch/'ml-100k.zip'


def _zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for name, text in members.items(): z.writestr(name, text)
    return buf.getvalue()


def test_dns_failure_during_download(fastai_home):
    with pytest.raises(DataError, match=r'Could not download MovieLens 100k from https://files.grouplens.org') as e:
        data.ml100k_path()
    assert str(fastai_home/'data'/'ml-100k'/'u.data') in str(e.value)
    assert not (fastai_home/'data'/'ml-100k').exists()


@pytest.mark.parametrize('content', [
    b'<html><head><title>403 Forbidden</title></head><body>Forbidden</body></html>\n',
    _zip_bytes({'ml-100k/u.data': '196\t242\t3\t881250949\n' * 200})[:300],  # truncated zip
    np.random.default_rng(0).bytes(5000),
])
def test_html_page_or_corrupt_zip_as_archive(fastai_home, content):
    arch = _archive(fastai_home)
    arch.write_bytes(content)
    with pytest.raises(DataError, match='is not a zip file') as e: data.ml100k_path()
    assert str(arch) in str(e.value)
    assert not (fastai_home/'data'/'ml-100k').exists()


def test_zip_slip_members_stay_inside(fastai_home, tmp_path):
    arch = _archive(fastai_home)
    arch.write_bytes(_zip_bytes({'ml-100k/u.data': '196\t242\t3\t881250949\n', '../../../escaped.txt': 'x',
                                 str(tmp_path/'absolute.txt'): 'x'}))
    with pytest.raises(DataError, match='corrupt or partial'): data.ml100k_path()
    assert not (tmp_path/'absolute.txt').exists()
    assert not list(tmp_path.rglob('escaped.txt'))


def test_fastai_home_not_writable(tmp_path, monkeypatch, offline):
    home = write(tmp_path/'home', 'a file where the folder should be')  # unwritable even for root
    monkeypatch.setenv('FASTAI_HOME', str(home))
    fastai_cfg.cache_clear()
    try:
        with pytest.raises(DataError, match='FASTAI_HOME'): data.ml100k_path()
    finally: fastai_cfg.cache_clear()


# ---------------------------------------------------------------- model files

@pytest.mark.parametrize('seed', range(3))
def test_random_bytes_as_model_file(tmp_path, seed):
    f = write(tmp_path/'m.pt', np.random.default_rng(seed).bytes(4096))
    with pytest.raises(ModelFileError, match='damaged, truncated or not a PyTorch file') as e: load_model(f)
    assert str(f) in str(e.value)


class _Touch:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.touch, (self.marker,))


@pytest.mark.parametrize('protocol', [2, pickle.HIGHEST_PROTOCOL])
def test_plain_pickle_with_code_is_not_run(tmp_path, protocol):
    marker = tmp_path/'was_run'
    f = write(tmp_path/'m.pt', pickle.dumps({'format': mf.MODEL_FORMAT, 'x': _Touch(marker)}, protocol=protocol))
    with pytest.raises(ModelFileError) as e: load_model(f)
    assert not marker.exists() and str(f) in str(e.value)
    pickle.loads(f.read_bytes())  # what an unsafe loader would do: the payload runs
    assert marker.exists()


def test_file_for_different_factors_is_refused(tmp_path, model):
    record = model_record(model, USERS, TITLES)
    record['info']['n_factors'] = 8
    torch.save(record, tmp_path/'m.pt')
    with pytest.raises(ModelFileError, match='do not fit its vocabularies'): load_model(tmp_path/'m.pt')


def test_file_for_different_users_is_refused(tmp_path, model):
    torch.save(dict(model_record(model, USERS, TITLES), users=USERS + [99]), tmp_path/'m.pt')
    with pytest.raises(ModelFileError, match='do not fit'): load_model(tmp_path/'m.pt')


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_nan_weights_are_refused(tmp_path, model, value):
    with torch.no_grad(): model.item_factors.weight[1, 0] = value
    path = tmp_path/'m.pt'
    torch.save(dict(model_record(DotProductBias(len(USERS), len(TITLES), 4), USERS, TITLES), weights=model.state_dict()), path)
    with pytest.raises(ModelFileError, match=r"NaN or infinite weights in \['item_factors.weight'\]") as e: load_model(path)
    assert str(path) in str(e.value)


def test_interrupt_while_saving_keeps_the_old_file(tmp_path, model, monkeypatch):
    path = save_model(tmp_path/'m.pt', model, USERS, TITLES)
    before = path.read_bytes()
    def interrupted(obj, f): f.write(b'partial'); raise KeyboardInterrupt
    monkeypatch.setattr(mf.torch, 'save', interrupted)
    with pytest.raises(KeyboardInterrupt): save_model(path, model, USERS, TITLES)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['m.pt']


def test_two_runs_saving_the_same_file_at_once(tmp_path, model, monkeypatch):
    "Run B saves the whole file while run A is half-way through writing: both finish, the file is complete."
    torch.manual_seed(1)
    other = DotProductBias(len(USERS), len(TITLES), 4)
    path, real_save, pid = tmp_path/'m.pt', torch.save, [1001]  # two processes: A is 1001, B 2002
    monkeypatch.setattr(outputs.os, 'getpid', lambda: pid[0])
    def interleaved(obj, f):
        f.write(b'half')
        monkeypatch.setattr(mf.torch, 'save', real_save)
        pid[0] = 2002
        save_model(path, other, USERS, TITLES)  # run B, start to finish
        pid[0] = 1001
        assert torch.equal(load_model(path).model.user_bias.weight, other.user_bias.weight)
        f.seek(0); f.truncate(); real_save(obj, f)
    monkeypatch.setattr(mf.torch, 'save', interleaved)
    save_model(path, model, USERS, TITLES)  # run A
    loaded = load_model(path).model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())  # the last rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ['m.pt']


# ---------------------------------------------------------------- use

@pytest.fixture
def model_file(tmp_path, model):
    return str(save_model(tmp_path/'model.pt', model, USERS, TITLES))


def test_new_user_with_only_unknown_movies(model, model_file, capsys):
    with pytest.raises(UnknownNameError, match="Unknown movie title 'Zzz'"): recommend_new_user(model, TITLES, {'Zzz': 5})
    assert main(['rate', 'Zzz (2001)=5', 'Qqq=1', '--model', model_file]) == 5
    assert "Unknown movie title 'Zzz (2001)'" in capsys.readouterr().err


def test_n_zero_gives_an_empty_table_and_a_usage_error_in_the_cli(model, model_file, capsys):
    recs = recommend(model, TITLES, 1, n=0)  # the library: an empty answer to an empty question
    assert len(recs) == 0 and list(recs.columns) == ['title', 'predicted_rating']
    for argv in (['recommend', '--user', '3'], ['similar', 'A (1990)'], ['rate', 'A (1990)=4']):
        with pytest.raises(SystemExit) as e: main(argv + ['-n', '0', '--model', model_file])  # the command line: most likely a typo
        assert e.value.code == 2
        assert '/ error: argument -n: must be a whole number of 1 or more: it is how many movies to show, not 0' in capsys.readouterr().err


def test_negative_n_is_a_usage_error(model, model_file, capsys):
    with pytest.raises(ValueError, match='n must be 0 or more, not -1'): recommend(model, TITLES, 1, n=-1)
    for argv in (['recommend', '--user', '3', '-n', '-1'], ['rate', 'A (1990)=4', '-n', '-5']):
        with pytest.raises(SystemExit) as e: main(argv + ['--model', model_file])
        assert e.value.code == 2 and 'error: argument -n: must be a whole number of 1 or more' in capsys.readouterr().err


def test_rate_file_in_wrong_encoding_exits_3(tmp_path, model_file, capsys):
    f = write(tmp_path/'mine.txt', 'Caf\xe9 (1990)=4\n'.encode('latin-1'))
    assert main(['rate', '--file', str(f), '--model', model_file]) == 3
    err = capsys.readouterr().err
    assert f'error: {f} is in the wrong encoding: byte 0xe9 at offset 3 is not UTF-8. Save it again as UTF-8' in err
    assert len(err.splitlines()) == 1


def test_ctrl_c_exits_130(model_file, monkeypatch, capsys):
    import collab_lessons.cli as cli
    def interrupted(args): raise KeyboardInterrupt
    monkeypatch.setitem(cli.COMMANDS, 'recommend', interrupted)
    try: code = main(['recommend', '--user', '3', '--model', model_file, '--json'])
    except KeyboardInterrupt: code = 'KeyboardInterrupt escaped'  # caught here, or pytest itself would stop
    out, err = capsys.readouterr()
    from collab_lessons.errors import EXIT_CODES
    assert code == EXIT_CODES['interrupted'] == 130
    assert err.strip().splitlines() == ['collab-lessons recommend: 오류: Ctrl-C로 멈췄어요. 파일은 통째로 쓰이거나 아예 안 쓰여요. '
                                        '다시 실행하세요. / error: interrupted with Ctrl-C. Files are written whole or not at '
                                        'all; run the command again.']
    assert json.loads(out)['exit_code'] == 130


# ---------------------------------------------------------------- round three (issue 23): the edges a user still hits

import shlex
import subprocess
import sys
import time

import pandas as pd

from collab_lessons.errors import EXIT_CODES, LONG_LINE
from collab_lessons.model_files import COURSE_FILES, MODEL_VERSION

ROOT = Path(__file__).parents[1]


def error_line(err):
    "The one error line on stderr, checked to be one line; returns its English part."
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[-1].partition(' / error: ')[2]


@pytest.fixture
def rated_model_file(tmp_path, model):
    "A model file whose titles have 3, 2, 1 and 1 training ratings."
    ratings = pd.DataFrame({'user': [3, 7, 11, 3, 7, 11, 3], 'rating': [5, 4, 3, 2, 1, 4, 5],
                            'title': ['A (1990)', 'A (1990)', 'A (1990)', 'B (1991)', 'B (1991)', 'C (1992)', 'D (1993)']})
    return str(save_model(tmp_path/'rated.pt', model, USERS, TITLES, ratings))


def test_similar_with_nothing_above_min_ratings_is_one_line_exit_9(rated_model_file, capsys):
    assert main(['similar', 'A (1990)', '--min-ratings', '100000', '--model', rated_model_file]) == EXIT_CODES['no_result'] == 9
    out, err = capsys.readouterr()
    assert out == '' and error_line(err) == ('No item other than A (1990) has 100000 or more training ratings: the most-rated one, '
                                             'B (1991), has 2. Give --min-ratings 2 or less.')
    assert main(['similar', 'A (1990)', '--min-ratings', '2', '--model', rated_model_file, '--json']) == 0
    assert [r['title'] for r in json.loads(capsys.readouterr().out)['similar']] == ['B (1991)']


def test_header_only_ratings_file_says_it_holds_no_ratings(tmp_path, model_file, capsys):
    header = write(tmp_path/'header.csv', 'userId,movieId,rating\n')
    assert main(['train', '--ratings', str(header), '--epochs', '1', '--out', str(tmp_path/'m.pt'), '-q']) == EXIT_CODES['data']
    detail = error_line(capsys.readouterr().err)
    assert detail.startswith(f'{header} holds no ratings: there are no rows below its header') and 'valid_pct' not in detail
    assert main(['evaluate', '--test', str(header), '--model', model_file, '-q']) == EXIT_CODES['data']
    assert error_line(capsys.readouterr().err).startswith(f'{header} holds no ratings')
    assert not (tmp_path/'m.pt').exists()


@pytest.fixture
def tiny_csv(tmp_path, tiny_ratings):
    return write(tmp_path/'tiny.csv', tiny_ratings.drop(columns='title').to_csv(index=False))


def test_paths_printed_to_copy_are_shell_quoted(tmp_path, tiny_csv, tiny_ratings, capsys, monkeypatch):
    folder = tmp_path/"내 모델 dir"/"it's"
    out = folder/'m 1.pt'
    assert main(['train', '--ratings', str(tiny_csv), '--epochs', '1', '--factors', '4', '--out', str(out)]) == 0
    lines = capsys.readouterr().err.splitlines()
    hint = next(l for l in lines if l.startswith('Next: '))
    assert shlex.split(hint)[-2:] == ['--model', str(out)] and shlex.split(hint)[1:5] == ['collab-lessons', 'recommend', '--user', str(tiny_ratings.user.min())]  # a user the model knows
    saved = next(l for l in lines if l.startswith('Saved the model to '))
    assert shlex.split(saved.removeprefix('Saved the model to ')) == [str(out.resolve())]
    recs = folder/'recs all.csv'
    assert main(['recommend', '--all-users', '--out', str(recs), '--model', str(out)]) == 0
    wrote = capsys.readouterr().err.strip().splitlines()[-1]
    assert shlex.split(wrote.partition(' users to ')[2]) == [str(recs)]
    from collab_lessons import products
    monkeypatch.setattr(products, 'load_ratings', lambda name: tiny_ratings)
    course = folder/'course out'
    assert main(['course', '--final-only', '--epochs', '1', '--out', str(course)]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert shlex.split(next(l for l in lines if l.startswith('Next: ')))[-1] == str(course/'model.pt')
    assert shlex.split(next(l for l in lines if l.startswith('Saved ')).partition(' in ')[2]) == [str(course.resolve())]


def test_every_error_line_is_bounded_and_cuts_long_values(tmp_path, model_file, capsys):
    long_title = 'Star Wars ' * 1000
    f = write(tmp_path/'mine.txt', f'{long_title}=5\n')
    assert main(['rate', '--file', str(f), '--model', model_file]) == EXIT_CODES['unknown_name']
    err = capsys.readouterr().err
    assert len(err) < 700 and '…' in err and error_line(err).endswith("': the model has no such movie title. Check the spelling.")
    assert main(['rate', f'{long_title}=seven', '--model', model_file]) == EXIT_CODES['usage']
    err = capsys.readouterr().err
    assert len(err) < 700 and 'is not a number between 0.5 and 5.' in error_line(err)
    with pytest.raises(SystemExit) as e: main(['similar', 'A (1990)', 'x' * 10_000])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err) < 700 and 'unrecognized arguments: xxx' in error_line(err)
    assert main(['recommend', '--user', 'y' * 10_000, '--model', model_file]) == EXIT_CODES['unknown_name']
    assert len(error_line(capsys.readouterr().err)) <= LONG_LINE


@pytest.mark.parametrize('lines, says', [
    (['Star Wars (1977)=5', 'star wars (1977)=1'], "'Star Wars (1977)'=5.0 and 'star wars (1977)'=1.0 both rate the movie Star Wars (1977)"),
    (['Star Wars (1977)=5', 'Fargo (1996)=3', 'Star Wars (1977)=1'], "rating 3 ('Star Wars (1977)=1') rates the same movie as"),
])
def test_rate_naming_one_movie_twice_is_refused(tmp_path, capsys, lines, says):
    from collab_lessons.bias import DotProductBias as DPB
    titles = ['#na#', 'Star Wars (1977)', 'Fargo (1996)', 'Alien (1979)']
    torch.manual_seed(0)
    path = str(save_model(tmp_path/'m.pt', DPB(3, len(titles), 3), ['#na#', 1, 2], titles))
    f = write(tmp_path/'mine.txt', '\n'.join(lines) + '\n')
    assert main(['rate', '--file', str(f), '--model', path, '--json']) == EXIT_CODES['usage']
    out, err = capsys.readouterr()
    assert says in error_line(err) and 'rate each movie once' in err and json.loads(out)['kind'] == 'usage'
    assert main(['rate', 'STAR WARS (1977)=2', '--file', str(write(tmp_path/'one.txt', 'Star Wars (1977)=5\n')), '--model', path]) == 2
    assert 'both rate the movie Star Wars (1977)' in error_line(capsys.readouterr().err)
    assert main(['rate', 'Fargo (1996)=2', '--file', str(write(tmp_path/'two.txt', 'Fargo (1996)=4\n')), '--model', path]) == 2
    assert "'Fargo (1996)' is rated both on the command line (2) and in" in error_line(capsys.readouterr().err)


def test_an_option_given_twice_is_refused(capsys):
    for argv, says in [(['train', '--out', 'a.pt', '--out', 'b.pt'], 'argument --out: given twice (--out a.pt and --out b.pt)'),
                       (['train', '--model-kind', 'bpmf', '--ranks', '5', '10', '5'], 'argument --ranks: 5 is given twice'),
                       (['similar', 'x', '-n', '3', '-n', '4'], 'argument -n: given twice (-n 3 and -n 4)')]:
        with pytest.raises(SystemExit) as e: main(argv)
        assert e.value.code == 2 and says in error_line(capsys.readouterr().err)


def _no_work(monkeypatch):
    "Make loading a model or ratings fail loudly, so a test sees that a command stopped before any work."
    import collab_lessons.cli as cli
    from collab_lessons import products
    def work(*args, **kwargs): raise AssertionError('worked although the output cannot be written')
    monkeypatch.setattr(cli, 'load_model', work)
    monkeypatch.setattr(products, 'load_ratings', work)


def test_output_where_no_file_can_be_created_fails_before_any_work(tmp_path, model_file, monkeypatch, capsys):
    "root passes `os.access` everywhere: a folder where creating a file fails (simulated here, real below) must still be exit 6."
    _no_work(monkeypatch)
    locked = tmp_path/'locked'
    locked.mkdir()
    real_open = os.open
    def refuse_in_locked(path, *args, **kwargs):
        if Path(path).parent == locked: raise PermissionError(1, 'Operation not permitted', str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(outputs.os, 'open', refuse_in_locked)
    for argv in (['recommend', '--all-users', '--out', str(locked/'recs.csv'), '--model', model_file],
                 ['train', '--out', str(locked/'m.pt')], ['course', '--out', str(locked/'out')]):
        assert main(argv + ['-q']) == EXIT_CODES['output'] == 6
        assert error_line(capsys.readouterr().err).endswith(f'no file can be created in the folder {locked} (Operation not permitted). '
                                                            'Choose a folder you can write to.')
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(not Path('/proc/self').exists(), reason='needs Linux /proc')
def test_output_in_proc_or_an_immutable_folder_is_exit_6(tmp_path, model_file, monkeypatch, capsys):
    _no_work(monkeypatch)
    assert main(['recommend', '--all-users', '--out', '/proc/recs.csv', '--model', model_file, '-q']) == 6
    assert 'no file can be created in the folder /proc' in error_line(capsys.readouterr().err)
    frozen = tmp_path/'frozen'
    frozen.mkdir()
    if subprocess.run(['chattr', '+i', str(frozen)], capture_output=True).returncode: pytest.skip('chattr +i is not allowed here')
    try:
        for argv in (['recommend', '--all-users', '--out', str(frozen/'recs.csv'), '--model', model_file], ['train', '--out', str(frozen/'m.pt')]):
            assert main(argv + ['-q']) == 6 and f'Cannot write {frozen}/' in error_line(capsys.readouterr().err)
    finally: subprocess.run(['chattr', '-i', str(frozen)])


def test_user_id_written_another_way_names_the_known_id(model_file, capsys):
    for typed in ('007', '7.0', '+7'):
        assert main(['recommend', '--user', typed, '--model', model_file]) == EXIT_CODES['unknown_name']
        assert error_line(capsys.readouterr().err) == (f"Unknown user id {typed!r}: user ids are matched exactly as written, and this "
                                                       f"model has no user {typed!r}. Did you mean 7?")
    assert main(['recommend', '--user', '8', '--model', model_file]) == 5
    assert 'Known user ids run from 3 to 11' in capsys.readouterr().err


def test_model_file_of_a_newer_version_names_both_versions(tmp_path, model_file, capsys):
    newer = tmp_path/'newer.pt'
    torch.save(dict(torch.load(model_file, weights_only=True), version=MODEL_VERSION + 1), newer)
    assert main(['recommend', '--user', '3', '--model', str(newer)]) == EXIT_CODES['model_file']
    detail = error_line(capsys.readouterr().err)
    assert f'written by a newer collab_lessons: it is model-file version {MODEL_VERSION + 1}' in detail
    assert f'reads versions 1 to {MODEL_VERSION}. Upgrade collab_lessons' in detail


# Two runs at once. `DRIVER` runs the real command line in its own process on a tiny table (no download); with a
# signal file it writes that file once it holds the output lock and waits for a "go" file before it reads any data.
DRIVER = '''
import sys, time, pathlib
import pandas as pd
from collab_lessons import products
table, ready = pd.read_csv(sys.argv[1]), pathlib.Path(sys.argv[2])
def load(*args, **kwargs):
    if ready.name != 'none':
        ready.write_text('holding the lock')
        for _ in range(600):
            if ready.with_suffix('.go').exists(): break
            time.sleep(0.1)
    return table
products.load_ratings = load
from collab_lessons.entry import main
sys.exit(main(sys.argv[3:]))
'''


def _driver(tmp_path, tiny_ratings, ready, argv):
    script, data = tmp_path/'driver.py', tmp_path/'tiny_titles.csv'
    script.write_text(DRIVER)
    if not data.exists(): tiny_ratings.to_csv(data, index=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, str(script), str(data), str(ready), *argv, '-q'], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, seconds=120):
    for _ in range(seconds * 10):
        if path.exists() or proc.poll() is not None: return
        time.sleep(0.1)


@pytest.mark.parametrize('command, out', [('train', 'out/m.pt'), ('course', 'course_out')])
def test_two_runs_into_one_output_give_one_whole_result_and_one_clear_message(tmp_path, tiny_ratings, monkeypatch, capsys, command, out):
    "The first run is another process holding the output; the second (this process, on the same tiny table) is turned away."
    extra = ['--epochs', '2', '--factors', '4'] if command == 'train' else ['--final-only', '--epochs', '1']
    later = ['--epochs', '1', '--factors', '4'] if command == 'train' else ['--final-only', '--epochs', '2']
    ready = tmp_path/'first.ready'
    first = _driver(tmp_path, tiny_ratings, ready, [command, '--out', out, *extra])
    _wait_for(ready, first)
    assert ready.exists(), first.communicate()
    from collab_lessons import products
    monkeypatch.setattr(products, 'load_ratings', lambda *args, **kwargs: tiny_ratings)
    monkeypatch.chdir(tmp_path)
    code = main([command, '--out', out, *later, '-q'])
    ready.with_suffix('.go').write_text('go')
    assert first.wait(timeout=300) == 0, first.communicate()
    assert code == EXIT_CODES['output']
    assert f'{out} is being written by another collab-lessons run (process {first.pid})' in error_line(capsys.readouterr().err)
    model = tmp_path/out if command == 'train' else tmp_path/out/'model.pt'
    assert load_model(model).info['epochs'] == (2 if command == 'train' else 1)  # the first run's whole result
    if command == 'course': assert sorted(p.name for p in (tmp_path/out).iterdir()) == sorted(COURSE_FILES)
    assert not [p.name for p in tmp_path.rglob('.*')]  # no lock or temporary file left


@pytest.mark.slow  # two more processes (~25 s on a busy core); the test above covers the lock deterministically
def test_two_train_runs_started_together_leave_one_whole_model(tmp_path, tiny_ratings):
    runs = [_driver(tmp_path, tiny_ratings, tmp_path/'none', ['train', '--out', 'm.pt', '--epochs', str(e), '--factors', '4'])
            for e in (1, 2)]
    codes = sorted(r.wait(timeout=300) for r in runs)
    assert codes in ([0, 0], [0, EXIT_CODES['output']]), [r.communicate() for r in runs]
    assert load_model(tmp_path/'m.pt').info['epochs'] in (1, 2)
    assert not [p.name for p in tmp_path.rglob('.*')]


def test_nproc_train_waits_for_no_one_holding_its_output(tmp_path, capsys):
    "`train --nproc` takes the same output lock as `train`: while another run holds the file, it is turned away before any work."
    from collab_lessons.outputs import output_lock
    out = tmp_path/'m.pt'
    with output_lock(out):
        code = main(['train', '--nproc', '2', '--out', str(out), '--ratings', str(tmp_path/'never_read.csv'), '-q'])
    assert code == EXIT_CODES['output']
    assert 'is being written by another collab-lessons run' in error_line(capsys.readouterr().err)
    assert not out.exists()


def test_rate_file_with_no_ratings_names_the_file(tmp_path, capsys, model_file):
    "A `rate --file` holding only comments and blank lines says that file holds no rating, not only 'give at least one'."
    empty = tmp_path/'mine.txt'
    empty.write_text('# my ratings\n\n')
    assert main(['rate', '--file', str(empty), '--model', model_file]) == EXIT_CODES['usage']
    assert f'{empty} holds no TITLE=RATING line' in error_line(capsys.readouterr().err)


def test_next_hint_names_a_user_the_model_knows(tmp_path, capsys, tiny_ratings):
    "After `train` on your own ratings, the `Next:` hint names one of your users (user 42 may not exist there), shell-quoted."
    data = tmp_path/'mine.csv'
    tiny_ratings.assign(user='shop user ' + tiny_ratings.user.astype(str)).to_csv(data, index=False)
    assert main(['train', '--ratings', str(data), '--model-kind', 'popularity', '--out', str(tmp_path/'m.pt')]) == 0
    hint = next(l for l in capsys.readouterr().err.splitlines() if l.startswith('Next:'))
    assert "--user 'shop user 1' " in hint


def test_catalogue_names_tests_that_exist():
    "Every `X::test_name` in tests/HOSTILE.md names a test in the file its legend gives (unless cut short with … or marked removed)."
    import re
    text = (Path(__file__).parent/'HOSTILE.md').read_text(encoding='utf-8')
    legend = dict(re.findall(r'`([A-Z]+)` (?:stands )?for `(tests/[\w/]+\.py)`', text))
    root = Path(__file__).parents[1]
    missing = []
    for line in text.splitlines():
        if 'removed' in line: continue
        for prefix, name, cut in re.findall(r'\b([A-Z]{1,3})::(test_\w+)(…?)', line):
            if cut: continue
            assert prefix in legend, f'HOSTILE.md uses {prefix}:: but its legend does not say which file that is'
            if not re.search(rf'def {name}\b', (root/legend[prefix]).read_text(encoding='utf-8')): missing.append(f'{prefix}::{name}')
    assert not missing, f'HOSTILE.md names tests that do not exist: {missing}'
