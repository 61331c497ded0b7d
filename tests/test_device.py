"""Every training path takes a `device`: `pick_device`'s clear errors, `device='cpu'` giving exactly what `device=None` gives
on a machine without CUDA, and (only where CUDA is available) each kind trained on the GPU and saved with CPU tensors."""
import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons import distributed
from collab_lessons.bayes import fit_bpmf, fit_bpmf_ensemble
from collab_lessons.course import COURSE_STEPS, FINAL_STEP, run_course
from collab_lessons.errors import EXIT_CODES, error_kind
from collab_lessons.fast import FastDotProductBias, fast_loaders, fit_fast, fit_lazy, pick_device
from collab_lessons.kernel_ae import fit_kernel_ae, fit_kernel_ae_ensemble
from collab_lessons.model_files import load_model, save_learner
from collab_lessons.model_kinds import KINDS, train_kind
from collab_lessons.products import train_model

CUDA = torch.cuda.is_available()
needs_no_cuda = pytest.mark.skipif(CUDA, reason='compares device=None with the CPU: only the same device where CUDA is absent')
needs_cuda = pytest.mark.skipif(not CUDA, reason='needs a CUDA GPU')
TINY = dict(epochs=2, n_factors=4, n_samples=8, ranks=[3], seeds=[0], n_hid=8, layers=[8])
CPU = torch.device('cpu')


def same(a, b):
    "Whether two nested results (dicts, lists, tensors, numbers) are exactly equal, tensors by `torch.equal`."
    if isinstance(a, torch.Tensor): return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def no_seconds(history):
    "`history` rows without their wall-clock `seconds`, which differ from run to run."
    return [{k: v for k, v in row.items() if k != 'seconds'} for row in history]


def on_cpu(tensors):
    return all(t.device == CPU for t in tensors)


def fresh_loaders(ratings):
    "New training and validation loaders with their sizes: a training loader's shuffle moves on every epoch, so each run needs its own."
    train, valid, classes = fast_loaders(ratings, bs=32, seed=0)
    return train, valid, len(classes['user']), len(classes['item'])


@pytest.fixture
def loaders(tiny_ratings): return fresh_loaders(tiny_ratings)


# pick_device: one implementation, clear one-line errors that the command reports as bad arguments (exit code 2)

def test_one_pick_device_shared_by_the_distributed_trainer():
    assert distributed.pick_device is pick_device


def test_pick_device_default_and_explicit():
    assert pick_device() == torch.device('cuda' if CUDA else 'cpu')
    assert pick_device('cpu') == pick_device(CPU) == CPU


@pytest.mark.parametrize('device', ['tpu', 'gpu', 'mps', 'meta', 'cuda:x', '', 1.5])
def test_unknown_device_is_a_one_line_usage_error(device):
    with pytest.raises(ValueError) as e: pick_device(device)
    message = str(e.value)
    assert f'device={device!r}' in message and "'cpu', 'cuda'" in message and '\n' not in message
    assert EXIT_CODES[error_kind(e.value)] == 2


@needs_no_cuda
@pytest.mark.parametrize('device', ['cuda', 'cuda:0', torch.device('cuda', 1)])
def test_cuda_without_cuda_says_what_to_do(device):
    with pytest.raises(ValueError, match="CUDA is not available") as e: pick_device(device)
    assert "device='cpu'" in str(e.value) and '\n' not in str(e.value) and EXIT_CODES[error_kind(e.value)] == 2


@needs_cuda
def test_cuda_index_past_the_last_gpu():
    with pytest.raises(ValueError, match='CUDA device'): pick_device(f'cuda:{torch.cuda.device_count()}')


def test_a_bad_device_stops_training_before_it_starts(tiny_ratings, loaders, tmp_path):
    train, valid, n_users, n_items = loaders
    model = FastDotProductBias(n_users, n_items, 4)
    before = model.user_factors.weight.detach().clone()
    for fit in (fit_fast, fit_lazy):
        with pytest.raises(ValueError, match='tpu'): fit(model, train, device='tpu')
    assert torch.equal(model.user_factors.weight, before)
    with pytest.raises(ValueError, match='tpu'): fit_bpmf(train, n_users, n_items, device='tpu')
    with pytest.raises(ValueError, match='tpu'): fit_kernel_ae(train, n_users, n_items, device='tpu')
    with pytest.raises(ValueError, match='tpu'): train_kind('fast', tiny_ratings, device='tpu')
    with pytest.raises(ValueError, match='tpu'): run_course(tiny_ratings, COURSE_STEPS[:1], epochs=1, show_progress=False, device='tpu')
    with pytest.raises(ValueError, match='tpu'): train_model('lazy', tiny_ratings, None, tmp_path/'m.pt', 'mine', 'random', device='tpu')
    assert not (tmp_path/'m.pt').exists()


# device='cpu' is exactly device=None on this CPU-only machine, for every training path

@needs_no_cuda
@pytest.mark.parametrize('fit', [fit_fast, fit_lazy])
def test_fast_and_lazy_cpu_equals_default(tiny_ratings, fit):
    runs = []
    for device in (None, 'cpu'):
        train, valid, n_users, n_items = fresh_loaders(tiny_ratings)
        torch.manual_seed(0)
        model = FastDotProductBias(n_users, n_items, 4)
        history = fit(model, train, valid, epochs=2, device=device)
        runs.append((no_seconds(history), model.state_dict()))
    assert same(*runs) and on_cpu(runs[1][1].values())


def _lazy_from_file(tiny_ratings, tmp_path, device):
    "`train --model-kind lazy --ratings r.csv` through its library calls, on `device`; the saved record."
    from collab_lessons.products import train_model, training_frames
    tiny_ratings[['user', 'movie', 'rating']].to_csv(tmp_path/'r.csv', index=False)
    train, held_out = training_frames(ratings=tmp_path/'r.csv')
    train_model('lazy', train, held_out, tmp_path/f'{device}.pt', 'r.csv', 'random', device=device, epochs=2, bs=32, n_factors=4)
    return torch.load(tmp_path/f'{device}.pt', weights_only=True)

@needs_no_cuda
def test_lazy_file_training_cpu_equals_default(tiny_ratings, tmp_path):
    a, b = (_lazy_from_file(tiny_ratings, tmp_path, d) for d in (None, 'cpu'))
    assert same(a['weights'], b['weights']) and on_cpu(b['weights'].values())


@needs_no_cuda
def test_bpmf_cpu_equals_default(loaders):
    train, valid, n_users, n_items = loaders
    runs = []
    for device in (None, 'cpu'):
        torch.manual_seed(0)
        preds, history = fit_bpmf(train, n_users, n_items, valid, rank=3, n_samples=8, burn_in=2, every=2, device=device)
        torch.manual_seed(0)
        ens, _ = fit_bpmf_ensemble(train, n_users, n_items, valid, ranks=(2, 3), n_samples=6, burn_in=2, every=0, device=device)
        runs.append((preds, no_seconds(history), ens))
    assert same(*runs) and on_cpu([runs[1][0], runs[1][2]])


@needs_no_cuda
def test_kernel_ae_cpu_equals_default(loaders):
    train, valid, n_users, n_items = loaders
    runs = []
    for device in (None, 'cpu'):
        torch.manual_seed(0)
        preds, history, model = fit_kernel_ae(train, n_users, n_items, valid, epochs=2, n_hid=8, device=device)
        ens, _ = fit_kernel_ae_ensemble(train, n_users, n_items, valid, seeds=(0,), epochs=1, n_hid=8, every=0, device=device)
        runs.append((preds, no_seconds(history), model.state_dict(), ens))
    assert same(*runs) and on_cpu([runs[1][0], runs[1][3], *runs[1][2].values()])


@needs_no_cuda
@pytest.mark.parametrize('kind', KINDS)
def test_every_kind_cpu_equals_default(tiny_ratings, kind):
    train, valid = tiny_ratings.iloc[:240], tiny_ratings.iloc[240:]
    a, b = (train_kind(kind, train, valid, device=device, **TINY) for device in (None, 'cpu'))
    assert same(a.weights, b.weights) and a.info == b.info and a.users == b.users and a.items == b.items
    assert {k: v for k, v in a.scores.items() if k != 'seconds'} == {k: v for k, v in b.scores.items() if k != 'seconds'}
    assert on_cpu(b.weights.values())


@needs_no_cuda
def test_train_model_cpu_equals_default(tiny_ratings, tmp_path):
    train, held_out = tiny_ratings.iloc[:240], tiny_ratings.iloc[240:]
    rows = [train_model('fast', train, held_out, tmp_path/f'{d}.pt', 'mine', 'random', device=d, **TINY) for d in (None, 'cpu')]
    assert [{k: v for k, v in r.items() if k not in ('seconds', 'model_file')} for r in rows][0] == \
           [{k: v for k, v in r.items() if k not in ('seconds', 'model_file')} for r in rows][1]
    a, b = (torch.load(tmp_path/f'{d}.pt', weights_only=True) for d in (None, 'cpu'))
    assert same(a['weights'], b['weights']) and on_cpu(b['weights'].values())


@needs_no_cuda
def test_run_course_cpu_equals_default(tiny_ratings):
    step = [s for s in COURSE_STEPS if s['step'] == FINAL_STEP]
    (ta, la), (tb, lb) = (run_course(tiny_ratings, step, epochs=1, show_progress=False, device=d) for d in (None, 'cpu'))
    assert ta.drop(columns='seconds').equals(tb.drop(columns='seconds'))
    assert same(la[FINAL_STEP].model.state_dict(), lb[FINAL_STEP].model.state_dict())
    assert lb[FINAL_STEP].dls.device == CPU


def test_run_course_command_passes_the_device_on(monkeypatch, tiny_ratings, tmp_path):
    "The `course` command's training trains where it is told: here a bad device stops it before any training."
    from collab_lessons import products
    monkeypatch.setattr(products, 'load_ratings', lambda dataset: tiny_ratings)
    with pytest.raises(ValueError, match='tpu'):
        products.run_course_command('mine', tmp_path/'out', final_only=True, epochs=1, say=lambda *a: None, device='tpu')


# on a GPU: every kind trains there, and what comes back (weights, predictions, model files) is on the CPU

@needs_cuda
@pytest.mark.parametrize('kind', KINDS)
def test_every_kind_trains_on_cuda_and_saves_cpu_tensors(tiny_ratings, tmp_path, kind):
    train, held_out = tiny_ratings.iloc[:240], tiny_ratings.iloc[240:]
    row = train_model(kind, train, held_out, tmp_path/'m.pt', 'mine', 'random', device='cuda', **TINY)
    assert 0.3 < row['valid_rmse'] < 3
    record = torch.load(tmp_path/'m.pt', weights_only=True)
    assert on_cpu(record['weights'].values())
    saved = load_model(tmp_path/'m.pt')
    assert saved.model.user_scores(torch.tensor([1])).device == CPU


@needs_cuda
def test_trainers_on_cuda_hand_back_cpu_models_and_predictions(tiny_ratings, loaders, tmp_path):
    train, valid, n_users, n_items = loaders
    for fit in (fit_fast, fit_lazy):
        model = FastDotProductBias(n_users, n_items, 4)
        history = fit(model, train, valid, epochs=2, device='cuda')
        assert on_cpu(model.state_dict().values()) and np.isfinite(history[-1]['valid_rmse'])
    preds, _ = fit_bpmf(train, n_users, n_items, valid, rank=3, n_samples=8, burn_in=2, device='cuda')
    assert preds.device == CPU and torch.isfinite(preds).all()
    preds, _, model = fit_kernel_ae(train, n_users, n_items, valid, epochs=2, n_hid=8, device='cuda')
    assert preds.device == CPU and on_cpu(model.state_dict().values())
    assert on_cpu(_lazy_from_file(tiny_ratings, tmp_path, 'cuda')['weights'].values())
    table, learners = run_course(tiny_ratings, [s for s in COURSE_STEPS if s['step'] == FINAL_STEP], epochs=1, show_progress=False, device='cuda')
    assert learners[FINAL_STEP].dls.device.type == 'cuda' and np.isfinite(table.valid_mse[0])
    save_learner(tmp_path/'course.pt', learners[FINAL_STEP], tiny_ratings)
    assert on_cpu(torch.load(tmp_path/'course.pt', weights_only=True)['weights'].values())
