import errno
import json
import io
import os
import pickle
import threading
from pathlib import Path

import pandas as pd
import pytest
import torch
from fastai.collab import EmbeddingDotBias, EmbeddingNN

import collab_lessons.model_files as mf
import collab_lessons.outputs as outputs
from collab_lessons.bias import DotProductBias
from collab_lessons.model_files import MODEL_FORMAT, ModelFileError, atomic_save, load_model, model_record, save_model

USERS = ['#na#', 3, 7, 11]
TITLES = ['#na#', 'A (1990)', 'B (1991)', 'C (1992)', 'D (1993)']


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DotProductBias(len(USERS), len(TITLES), 4)


@pytest.fixture
def ratings():
    return pd.DataFrame({'user': [3, 3, 7, 11], 'title': ['A (1990)', 'C (1992)', 'A (1990)', 'D (1993)'], 'rating': [5, 3, 4, 1]})


def test_round_trip_keeps_weights_vocab_and_seen(tmp_path, model, ratings):
    path = save_model(tmp_path/'m.pt', model, USERS, TITLES, ratings, info={'dataset': 'toy', 'valid_mse': 0.8})
    saved = load_model(path)
    for k, v in model.state_dict().items(): assert torch.equal(saved.model.state_dict()[k], v)
    assert saved.users == USERS and saved.titles == TITLES
    assert saved.seen.tolist() == [[1, 1], [1, 3], [2, 1], [3, 4]]
    assert saved.counts.tolist() == [0, 2, 0, 1, 1]
    assert saved.info['dataset'] == 'toy' and saved.info['n_factors'] == 4 and saved.info['y_range'] == [0.0, 5.5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.pt']


def test_a_fresh_process_that_imports_only_model_files_loads_a_built_in_kind(tmp_path, model, ratings):
    "The library's kinds register on import of `collab_lessons.kinds`; load_model must load them itself, not rely on a caller having done so."
    import subprocess
    import sys
    path = save_model(tmp_path/'m.pt', model, USERS, TITLES, ratings)
    code = 'import sys; from collab_lessons.model_files import load_model; print(load_model(sys.argv[1]).kind)'
    res = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == 'course', res.stderr


def test_numpy_vocabulary_is_stored_as_plain_values(tmp_path, model):
    import numpy as np
    users = ['#na#'] + list(np.array([3, 7, 11]))
    saved = load_model(save_model(tmp_path/'m.pt', model, users, TITLES))
    assert saved.users == USERS and all(type(u) is int for u in saved.users[1:])


def test_file_loads_with_weights_only(tmp_path, model):
    path = save_model(tmp_path/'m.pt', model, USERS, TITLES)
    record = torch.load(path, weights_only=True)
    assert record['format'] == MODEL_FORMAT and set(record['weights']) == set(model.state_dict())


def test_embedding_dot_bias_saves_as_dot_product_bias(tmp_path):
    torch.manual_seed(0)
    edb = EmbeddingDotBias(4, len(USERS), len(TITLES), y_range=(0, 5.5))
    saved = load_model(save_model(tmp_path/'m.pt', edb, USERS, TITLES))
    x = torch.tensor([[1, 2], [3, 4]])
    edb.eval()
    with torch.no_grad(): assert torch.allclose(saved.model(x).view(-1), edb(x), atol=1e-6)


def test_neural_model_is_refused(model):
    nn_model = EmbeddingNN(emb_szs=[(4, 3), (5, 3)], layers=[4])
    with pytest.raises(TypeError, match='Only dot-product models'): model_record(nn_model, USERS, TITLES)


def test_failed_save_leaves_old_file_and_no_temp(tmp_path, model, monkeypatch):
    path = save_model(tmp_path/'m.pt', model, USERS, TITLES)
    before = path.read_bytes()
    def broken(obj, f): f.write(b'partial'); raise OSError('disk full')
    monkeypatch.setattr(mf.torch, 'save', broken)
    with pytest.raises(OSError, match='disk full'): save_model(path, model, USERS, TITLES)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['m.pt']


def test_atomic_save_creates_folders(tmp_path):
    path = atomic_save({'x': torch.ones(1)}, tmp_path/'a'/'b'/'x.pt')
    assert torch.load(path, weights_only=True)['x'].item() == 1


class _Evil:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.touch, (self.marker,))


def test_code_in_a_file_is_never_run(tmp_path):
    marker = tmp_path/'was_run'
    torch.save({'format': MODEL_FORMAT, 'payload': _Evil(marker)}, tmp_path/'evil.pt')
    with pytest.raises(ModelFileError, match='nothing in it was run'): load_model(tmp_path/'evil.pt')
    assert not marker.exists()
    torch.load(tmp_path/'evil.pt', weights_only=False)  # what an unsafe loader would do
    assert marker.exists()


@pytest.mark.parametrize('make, message', [
    (lambda p, good: None, 'not found'),
    (lambda p, good: p.write_bytes(good.read_bytes()[:500]), 'damaged, truncated or not a PyTorch file'),
    (lambda p, good: p.write_bytes(b''), 'damaged, truncated or not a PyTorch file'),
    (lambda p, good: p.write_text('title,rating\nA,5\n'), 'damaged, truncated or not a PyTorch file'),
    (lambda p, good: p.write_bytes(pickle.dumps([1, 2])), 'damaged, truncated or not a PyTorch file'),
    (lambda p, good: torch.save({'weight': torch.ones(2)}, p), 'not a collab_lessons model file'),
    (lambda p, good: torch.save(torch.ones(2), p), 'not a collab_lessons model file'),
])
def test_bad_files_give_clear_errors(tmp_path, model, make, message):
    good = save_model(tmp_path/'good.pt', model, USERS, TITLES)
    bad = tmp_path/'bad.pt'
    make(bad, good)
    with pytest.raises(ModelFileError, match=message) as e: load_model(bad)
    assert str(bad) in str(e.value)


def test_newer_version_and_inconsistent_weights(tmp_path, model):
    record = model_record(model, USERS, TITLES)
    torch.save(dict(record, version=99), tmp_path/'new.pt')
    with pytest.raises(ModelFileError, match='version 99'): load_model(tmp_path/'new.pt')
    torch.save(dict(record, titles=TITLES[:-1]), tmp_path/'odd.pt')
    with pytest.raises(ModelFileError, match='do not fit'): load_model(tmp_path/'odd.pt')
    del record['seen']
    torch.save(record, tmp_path/'short.pt')
    with pytest.raises(ModelFileError, match='lacks'): load_model(tmp_path/'short.pt')


class _FullDisk(io.FileIO):
    "A file on a disk that fills up after `room` bytes: further writes raise `OSError(ENOSPC)`."
    room = 3000
    def write(self, b):
        if self.tell() + len(b) > self.room: raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(b)


def test_disk_full_while_saving_keeps_the_old_file(tmp_path, model, monkeypatch):
    "A real `torch.save` writes part of the temporary file, then the disk is full: PyTorch wraps the error in a RuntimeError."
    path = save_model(tmp_path/'m.pt', model, USERS, TITLES)
    before = path.read_bytes()
    monkeypatch.setattr(outputs, 'open', lambda p, mode: _FullDisk(p, mode), raising=False)
    with pytest.raises(ModelFileError, match=r'Could not save .*m.pt: the disk is full\. The previous m.pt, if any, is unchanged') as e:
        save_model(path, model, USERS, TITLES)
    assert str(path) in str(e.value) and len(str(e.value).splitlines()) == 1
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['m.pt']


def test_disk_full_on_fsync_or_rename_is_reported_too(tmp_path, model, monkeypatch):
    path = tmp_path/'m.pt'
    def full(*args): raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    monkeypatch.setattr(outputs.os, 'fsync', full)
    with pytest.raises(ModelFileError, match='the disk is full'): save_model(path, model, USERS, TITLES)
    assert list(tmp_path.iterdir()) == []


def test_threads_saving_the_same_file_at_once(tmp_path, model, monkeypatch):
    "Four threads each write half their file, wait for the others, then finish: each needs its own temporary file."
    models = [DotProductBias(len(USERS), len(TITLES), 4) for _ in range(4)]
    barrier, real_save = threading.Barrier(len(models), timeout=20), torch.save
    def half_then_wait(obj, f):
        buf = io.BytesIO()
        real_save(obj, buf)
        data = buf.getvalue()
        f.write(data[:len(data) // 2])
        barrier.wait()
        f.write(data[len(data) // 2:])
    monkeypatch.setattr(mf.torch, 'save', half_then_wait)
    path, errors = tmp_path/'m.pt', []
    def save(m):
        try: save_model(path, m, USERS, TITLES)
        except Exception as e: errors.append(e)
    threads = [threading.Thread(target=save, args=(m,)) for m in models]
    for t in threads: t.start()
    for t in threads: t.join()
    assert errors == []
    saved = load_model(path).model.state_dict()  # whole, and the weights of one of the four
    assert any(all(torch.equal(saved[k], v) for k, v in m.state_dict().items()) for m in models)
    assert [p.name for p in tmp_path.iterdir()] == ['m.pt']


# ---------------------------------------------------------------- every field of a model file is checked

def _edit(record, path):
    "Apply `path` = (keys..., new value) to a copy of `record` (nested dicts copied along the way)."
    *keys, value = path
    record = dict(record)
    inner = record
    for k in keys[:-1]:
        inner[k] = dict(inner[k])
        inner = inner[k]
    if value is _DELETE: del inner[keys[-1]]
    else: inner[keys[-1]] = value
    return record

_DELETE = object()

@pytest.mark.parametrize('edit, message', [
    (('info', [1, 2]), "'info' is a list, not a dict"),
    (('info', 'n_factors', _DELETE), r"info\['n_factors'\] is None"),
    (('info', 'n_factors', -4), r"info\['n_factors'\] is -4"),
    (('info', 'n_factors', 4.0), r"info\['n_factors'\] is 4.0"),
    (('info', 'n_factors', True), r"info\['n_factors'\] is True"),
    (('info', 'n_factors', 5), 'do not fit its vocabularies'),
    (('info', 'y_range', ['0', '5.5']), r"info\['y_range'\] is \['0', '5.5'\]"),
    (('info', 'y_range', [5.5, 0.0]), 'lower one first'),
    (('info', 'y_range', [0.0, float('nan')]), 'two finite numbers'),
    (('info', 'y_range', [0.0]), 'two finite numbers'),
    (('users', 'ab'), "'users' is not a non-empty list"),
    (('users', []), "'users' is not a non-empty list"),
    (('users', ['#na#', 3, 7, 1.5]), "'users' holds entries that are neither"),
    (('titles', ['#na#', 'A (1990)', None, 'C (1992)', 'D (1993)']), "'titles' holds entries"),
    (('weights', 'user_bias.weight', torch.zeros(4, 1, dtype=torch.long)), 'user_bias.weight is torch.Size'),
    (('weights', 'user_bias.weight', [0.0] * 4), 'user_bias.weight is list'),
    (('weights', 'item_bias.weight', torch.zeros(5)), r'item_bias.weight is torch.Size\(\[5\]\)'),
    (('weights', 'extra', torch.zeros(1)), 'it needs exactly'),
    (('seen', torch.tensor([[1, 1], [9, 2]])), "'seen' points outside the vocabularies"),
    (('seen', torch.tensor([[1, -1]])), "'seen' points outside"),
    (('seen', torch.tensor([[1, 7]])), "'seen' points outside"),
    (('seen', torch.tensor([[4, 1]])), "'seen' points outside"),  # the first index past the 4 users
    (('seen', torch.tensor([[1, 5]])), "'seen' points outside"),  # the first index past the 5 titles
    (('seen', torch.tensor([1, 2])), r"'seen' is not an \(n, 2\) tensor"),
    (('seen', torch.tensor([[1.0, 2.0]])), r"'seen' is not an \(n, 2\) tensor"),
    (('seen', [[1, 1]]), r"'seen' is not an \(n, 2\) tensor"),
    (('counts', torch.zeros(4, dtype=torch.long)), "'counts' is not a tensor of 5 whole numbers"),
    (('counts', torch.zeros(5)), "'counts' is not a tensor of 5 whole numbers"),
    (('counts', torch.tensor([0, 1, -2, 0, 0])), "'counts' holds negative numbers"),
])
def test_every_field_is_validated(tmp_path, model, ratings, edit, message):
    record = model_record(model, USERS, TITLES, ratings)
    torch.save(_edit(record, edit), tmp_path/'edited.pt')
    with pytest.raises(ModelFileError, match=message) as e: load_model(tmp_path/'edited.pt')
    assert str(e.value).startswith(f"{tmp_path/'edited.pt'} is damaged") and str(e.value).endswith('Save or train the model again.')


def test_the_unedited_record_loads(tmp_path, model, ratings):
    torch.save(model_record(model, USERS, TITLES, ratings), tmp_path/'plain.pt')
    assert load_model(tmp_path/'plain.pt').info['n_factors'] == 4


def test_a_folder_as_model_says_so(tmp_path, model):
    with pytest.raises(ModelFileError, match='is a folder, not a model file: pass the model file itself.$'): load_model(tmp_path)
    save_model(tmp_path/'model.pt', model, USERS, TITLES)
    with pytest.raises(ModelFileError, match=r"itself, e.g. .*model.pt.$"): load_model(tmp_path)


def test_a_path_the_system_refuses_is_a_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match=r'cannot be read \(File name too long\): check the path.$'): load_model(tmp_path/('x' * 300))


def test_nan_weights_are_never_saved_over_a_good_file(tmp_path, model):
    from collab_lessons.course import DivergedError
    good = save_model(tmp_path/'m.pt', model, USERS, TITLES)
    before = good.read_bytes()
    with torch.no_grad(): model.item_factors.weight[1, 0] = float('nan')
    with pytest.raises(DivergedError, match=r"\['item_factors.weight'\]"): save_model(good, model, USERS, TITLES)
    assert good.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ['m.pt']


# ---------------------------------------------------------------- output paths are checked before any work

from collab_lessons.model_files import COURSE_FILES, save_course
from collab_lessons.outputs import OutputPathError, atomic_folder, check_output_file, check_output_folder


def test_check_output_file(tmp_path, monkeypatch):
    (tmp_path/'f').write_text('x')
    assert check_output_file(tmp_path/'new'/'deeper'/'m.pt') == tmp_path/'new'/'deeper'/'m.pt'
    assert not (tmp_path/'new').exists()  # checking creates nothing
    for path, message in [(tmp_path, 'is a folder: give the path of a file'), (tmp_path/'f'/'m.pt', 'f is a file, not a folder'),
                          (tmp_path/'f'/'a'/'b.pt', 'f is a file, not a folder'), (tmp_path/('x' * 300), 'File name too long'),
                          (f'{tmp_path}/a\0b', 'the path is not valid')]:
        with pytest.raises(OutputPathError, match=message): check_output_file(path)
    monkeypatch.setattr(outputs.os, 'access', lambda path, mode: False)  # root ignores chmod, so the answer is faked
    with pytest.raises(OutputPathError, match='is not writable'): check_output_file(tmp_path/'m.pt')


def test_atomic_write_refuses_a_file_among_the_parents(tmp_path, model):
    (tmp_path/'f').write_text('x')
    with pytest.raises(OutputPathError, match='is a file, not a folder'): save_model(tmp_path/'f'/'m.pt', model, USERS, TITLES)


def test_check_output_folder(tmp_path, monkeypatch):
    (tmp_path/'f').write_text('x')
    (tmp_path/'mine').mkdir()
    (tmp_path/'mine'/'thesis.tex').write_text('x')
    (tmp_path/'old').mkdir()
    (tmp_path/'old'/'model.pt').write_text('x')
    assert check_output_folder(tmp_path/'old', COURSE_FILES) == tmp_path/'old'
    assert check_output_folder(tmp_path/'mine') == tmp_path/'mine'  # any content when no names are given
    for path, message in [(tmp_path/'f', 'is a file: give a folder'), (tmp_path/'f'/'out', 'is a file, not a folder'),
                          (tmp_path/'mine', r'holds other files \(thesis.tex\)'), ('.', 'current or a top folder'), ('/', 'top folder')]:
        with pytest.raises(OutputPathError, match=message): check_output_folder(path, COURSE_FILES)
    monkeypatch.chdir(tmp_path/'old')
    with pytest.raises(OutputPathError, match='current'): check_output_folder(tmp_path/'old', COURSE_FILES)


def _files(folder): return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_atomic_folder_swaps_in_one_runs_files(tmp_path):
    out = tmp_path/'out'
    def run(tag, names):
        def write(folder):
            for name in names: (folder/name).write_text(tag)
        return write
    atomic_folder(out, run('first', ['a', 'b', 'c']))
    atomic_folder(out, run('second', ['a', 'b']))
    assert _files(out) == {'a': b'second', 'b': b'second'}  # nothing left from the first run
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out']  # no temporary or old folders


@pytest.mark.parametrize('stop', [KeyboardInterrupt, OSError])
def test_interrupted_folder_keeps_the_old_folder_whole(tmp_path, stop):
    out = tmp_path/'out'
    atomic_folder(out, lambda folder: [(folder/n).write_text('old') for n in 'ab'])
    def half_then_stop(folder):
        (folder/'a').write_text('new')
        raise stop()
    with pytest.raises(stop): atomic_folder(out, half_then_stop)
    assert _files(out) == {'a': b'old', 'b': b'old'} and sorted(p.name for p in tmp_path.iterdir()) == ['out']


def test_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    out = tmp_path/'out'
    atomic_folder(out, lambda folder: (folder/'a').write_text('old'))
    real = os.replace
    def fail_second(src, dst):
        if str(src).endswith('.tmp'): raise KeyboardInterrupt  # between the two renames
        return real(src, dst)
    monkeypatch.setattr(outputs.os, 'replace', fail_second)
    with pytest.raises(KeyboardInterrupt): atomic_folder(out, lambda folder: (folder/'a').write_text('new'))
    assert _files(out) == {'a': b'old'} and sorted(p.name for p in tmp_path.iterdir()) == ['out']


@pytest.fixture
def course_parts(tiny_ratings):
    from collab_lessons.course import FINAL_STEP, course_learner
    from collab_lessons.splits import collab_dls
    learn = course_learner(collab_dls(tiny_ratings, bs=16), n_factors=4)
    def table(mse): return pd.DataFrame([dict(step=FINAL_STEP, lesson='50_weight_decay', model='DotProductBias', wd=0.1,
                                              epochs=1, valid_mse=mse, valid_rmse=mse ** 0.5, seconds=0.1)])
    return table, learn, tiny_ratings


def test_save_course_writes_every_file_and_a_loadable_model(tmp_path, course_parts):
    table, learn, ratings = course_parts
    paths = save_course(tmp_path/'out', table(1.0), learn, ratings, 'toy')
    assert [p.name for p in paths] == list(COURSE_FILES) and sorted(_files(tmp_path/'out')) == sorted(COURSE_FILES)
    assert load_model(tmp_path/'out'/'model.pt').info['valid_mse'] == 1.0
    assert pd.read_csv(tmp_path/'out'/'results.csv').valid_mse.tolist() == [1.0]


def test_interrupted_course_output_leaves_the_old_folder_whole(tmp_path, course_parts, monkeypatch):
    table, learn, ratings = course_parts
    out = tmp_path/'out'
    save_course(out, table(1.0), learn, ratings, 'toy')
    old = _files(out)
    def ctrl_c_in_the_last_plot(self, target, **kwargs):
        Path(target).write_bytes(b'half a png')
        raise KeyboardInterrupt
    from matplotlib.figure import Figure
    monkeypatch.setattr(Figure, 'savefig', ctrl_c_in_the_last_plot)
    with pytest.raises(KeyboardInterrupt): save_course(out, table(0.5), learn, ratings, 'toy')
    assert _files(out) == old and sorted(p.name for p in tmp_path.iterdir()) == ['out']


def test_two_course_runs_never_mix(tmp_path, course_parts):
    table, learn, ratings = course_parts
    out = tmp_path/'out'
    save_course(out, table(1.0), learn, ratings, 'first')
    (out/'results.json').unlink()  # a file the second run writes again
    save_course(out, table(0.5), learn, ratings, 'second')
    assert load_model(out/'model.pt').info['dataset'] == 'second' and pd.read_csv(out/'results.csv').valid_mse.tolist() == [0.5]
    assert json.loads((out/'results.json').read_text())[0]['valid_mse'] == 0.5


def test_save_course_refuses_a_folder_with_other_files(tmp_path, course_parts):
    table, learn, ratings = course_parts
    (tmp_path/'notes.txt').write_text('mine')
    with pytest.raises(OutputPathError, match='holds other files'): save_course(tmp_path, table(1.0), learn, ratings, 'toy')
    assert _files(tmp_path) == {'notes.txt': b'mine'}


def test_rated_by_matches_a_scan_for_sorted_and_unsorted_seen_pairs():
    "Files store each block of seen pairs sorted by user, so `rated_by` slices them as they are; older unsorted files are sorted once at load; both give a scan's items."
    from collab_lessons.model_files import SavedModel, by_user
    g = torch.Generator().manual_seed(0)
    train, held = (torch.stack([torch.randint(1, 30, (n,), generator=g), torch.randint(1, 50, (n,), generator=g)], 1) for n in (400, 100))
    users, titles = ['#na#'] + list(range(1, 30)), [str(i) for i in range(50)]
    fast = SavedModel(None, users, titles, torch.cat([by_user(train), by_user(held)]), torch.zeros(50, dtype=torch.long), {'n_train': 400})
    slow = SavedModel(None, users, titles, torch.cat([train, held]), torch.zeros(50, dtype=torch.long), {'n_train': 400})
    assert fast._blocks[0].data_ptr() == fast.seen.data_ptr() and slow._blocks[0].data_ptr() != slow.seen.data_ptr()  # sorted blocks are not copied
    for u in range(30):
        expected = sorted(torch.cat([train, held])[torch.cat([train, held])[:, 0] == u, 1].tolist())
        assert sorted(fast.rated_by(u).tolist()) == sorted(slow.rated_by(u).tolist()) == expected
    for lo, hi in [(0, 30), (3, 9), (29, 30)]:
        in_range = torch.cat([train, held])[(torch.cat([train, held])[:, 0] >= lo) & (torch.cat([train, held])[:, 0] < hi)]
        assert sorted(map(tuple, fast.rated_pairs(lo, hi).tolist())) == sorted(map(tuple, slow.rated_pairs(lo, hi).tolist())) == sorted(map(tuple, in_range.tolist()))


@pytest.mark.parametrize('chunk', [1, 7, 64])
def test_all_users_top_n_matches_one_user_at_a_time(chunk):
    "Every user's top 5 from the chunked batch (one reused score buffer, seen pairs sliced per chunk) equals `top_n_for_user`, one user at a time."
    from collab_lessons.bench_query import synthetic_saved
    from collab_lessons.products import all_users_top_n, top_n_for_user
    saved = synthetic_saved(n_users=30, n_items=40, n_factors=4, n_seen=300, seed=3)
    table = all_users_top_n(saved, 5, chunk=chunk)
    for u in range(1, 30):
        one = top_n_for_user(saved, u, 5)
        mine = table[table.user == saved.users[u]]
        assert mine.title.tolist() == one.title.tolist() and mine.score.tolist() == pytest.approx(one.predicted_rating.tolist(), abs=0.006)
        assert not set(mine.item_index) & set(saved.rated_by(u).tolist())
