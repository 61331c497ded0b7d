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
from collab_lessons.cli import main
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
    with torch.no_grad(): model.movie_factors.weight[1, 0] = value
    path = tmp_path/'m.pt'
    torch.save(dict(model_record(DotProductBias(len(USERS), len(TITLES), 4), USERS, TITLES), weights=model.state_dict()), path)
    with pytest.raises(ModelFileError, match=r"NaN or infinite weights in \['movie_factors.weight'\]") as e: load_model(path)
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
    path, real_save, pids = tmp_path/'m.pt', torch.save, iter([1001, 2002])  # two processes
    monkeypatch.setattr(outputs.os, 'getpid', lambda: next(pids))
    def interleaved(obj, f):
        f.write(b'half')
        monkeypatch.setattr(mf.torch, 'save', real_save)
        save_model(path, other, USERS, TITLES)  # run B, start to finish
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
