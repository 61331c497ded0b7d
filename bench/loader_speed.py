"""The course's recipe (`DotProductBias`, 50 factors, `fit_one_cycle(5, 5e-3, wd=0.1)`, bs 64, seed 42 on ML-100k) trained
with `collab_dls`'s loader (`tensor_tab_dl()`: batches indexed from tensors made once) and with fastai's `TabDataLoader`
(a pandas `iloc` per batch), in turns, one torch thread. Both give the same batches, so the final weights must be equal;
the script checks that and prints each run's seconds and the ratio per pair.

    OMP_NUM_THREADS=1 python bench/loader_speed.py --pairs 3 > bench/results/loader_speed-DATE.txt"""
import argparse
import datetime
import os
import statistics
import time

import torch
from fastai.learner import Learner
from fastai.losses import MSELossFlat
from fastai.tabular.core import TabDataLoader

from collab_lessons.bias import DotProductBias
from collab_lessons.dot_product import rmse
from collab_lessons.own_ratings import load_ratings
from collab_lessons.splits import collab_dls

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument('--pairs', type=int, default=3, help='runs of each loader, taken in turns')
p.add_argument('--epochs', type=int, default=5)
a = p.parse_args()

ratings = load_ratings('ml-100k')


def fit(dl_type):
    "Seconds to build the loaders and fit the recipe, the final validation MSE and the trained weights."
    start = time.perf_counter()
    dls = collab_dls(ratings, dl_type=dl_type)
    learn = Learner(dls, DotProductBias(len(dls.classes['user']), len(dls.classes['title']), 50), loss_func=MSELossFlat(), metrics=rmse)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(a.epochs, 5e-3, wd=0.1)
    return time.perf_counter() - start, learn.recorder.values[-1][1], [w.detach().clone() for w in learn.model.parameters()]


print(f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, torch threads {torch.get_num_threads()}, "
      f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} CPUs, {a.epochs} epochs, {a.pairs} pairs")
print('pair  tab_s  tensor_s  tab/tensor  same_weights  valid_mse')
ratios = []
for i in range(a.pairs):
    tab_s, tab_mse, tab_w = fit(TabDataLoader)
    ten_s, ten_mse, ten_w = fit(None)
    same = all(torch.equal(x, y) for x, y in zip(tab_w, ten_w))
    ratios.append(tab_s / ten_s)
    print(f'{i + 1:>4}  {tab_s:5.1f}  {ten_s:8.1f}  {tab_s / ten_s:10.2f}  {str(same):>12}  {ten_mse:.6f}', flush=True)
    assert same and tab_mse == ten_mse, 'the two loaders trained different models'
print(f'median tab/tensor: {statistics.median(ratios):.2f}')
