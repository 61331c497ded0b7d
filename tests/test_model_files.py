import errno
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
    monkeypatch.setattr(mf, 'open', lambda p, mode: _FullDisk(p, mode), raising=False)
    with pytest.raises(ModelFileError, match=r'Could not save .*m.pt: the disk is full\. The previous m.pt, if any, is unchanged') as e:
        save_model(path, model, USERS, TITLES)
    assert str(path) in str(e.value) and len(str(e.value).splitlines()) == 1
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['m.pt']


def test_disk_full_on_fsync_or_rename_is_reported_too(tmp_path, model, monkeypatch):
    path = tmp_path/'m.pt'
    def full(*args): raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    monkeypatch.setattr(mf.os, 'fsync', full)
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
