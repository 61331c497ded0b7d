"""Does the date of a rating help a factorization machine, and can a recommender use it? myFM (PyPI `myfm`, the `peers`
extra) on a carve-out of ML-100k u1.base: 10% of it (`split_random(seed=0)`, the carve-out `fm_blend` was chosen on),
trained on the other 90% with the features `bayes_fm` builds (`fm_sides`: ids, SVD++-style implicit, user and movie side
features), with and without a one-hot of each rating's date. No test file is read.

Modes (the carve-out ratings are scored with):
  none   no date feature at all
  day    the date (day) of each rating, in training and for the carve-out ratings (what the published myFM result does)
  week   the same with the week
  day0   trained with the day, the carve-out scored with no date (the date weights left out)
  dayL   trained with the day, every carve-out rating scored as if made on the last day of training (a recommender
         predicts for now, not for the day the user will rate)

Usage: python bench/time_features.py [--modes none day week day0 dayL] [--out bench/results/time_features-DATE]  (writes .txt and .json)"""
import argparse, json, time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sps
import torch

from collab_lessons.fast import rating_tensors
from collab_lessons.measure import rating_metrics
from collab_lessons.model_kinds import vocab
from collab_lessons.splits import load_split, split_random
from fm_blend_folds import myfm_relations  # the same features, as myFM takes them (bench/ is this script's folder)

PERIODS = {'day': lambda s: s.dt.normalize(), 'week': lambda s: s.dt.to_period('W').dt.start_time}


def date_onehot(frame, periods, how):
    "(len(frame), len(periods)) one-hot of each rating's period (`how`: 'day' or 'week'); a period not in `periods` gets an empty row."
    code = pd.Categorical(PERIODS[how](pd.to_datetime(frame.timestamp, unit='s')), categories=periods).codes
    rows = np.flatnonzero(code >= 0)
    return sps.csr_matrix((np.ones(len(rows)), (rows, code[rows])), shape=(len(frame), len(periods)))


def rating_days(frame):
    "How concentrated each user's ratings are in time: the share of users whose ratings all fall on one day or two days in a row."
    day = pd.to_datetime(frame.timestamp, unit='s').dt.normalize()
    span = day.groupby(frame.user).agg(lambda d: (d.max() - d.min()).days)
    return round(float((span <= 1).mean()), 3)


def run(mode, fit, tune, seed=42, rank=10, n_iter=512):
    "Carve-out RMSE and fit seconds of myFM regression in `mode`."
    import myfm
    users, items = vocab(fit.user), vocab(fit.movie)
    x, r, _ = rating_tensors(fit, dict(user=users, item=items))
    tx, ty, _ = rating_tensors(tune, dict(user=users, item=items))
    start = time.perf_counter()
    rel, grouping = myfm_relations(x, users, items)
    how = mode.rstrip('0L')
    if how == 'none': X, TX, g = sps.csr_matrix((len(fit), 0)), sps.csr_matrix((len(tune), 0)), []
    else:
        periods = sorted(PERIODS[how](pd.to_datetime(fit.timestamp, unit='s')).unique())  # the training ratings' periods only
        X = date_onehot(fit, periods, how)
        TX = date_onehot(tune, periods, how)
        if mode.endswith('0'): TX = sps.csr_matrix(TX.shape)
        if mode.endswith('L'): TX = sps.csr_matrix((np.ones(len(tune)), (np.arange(len(tune)), np.full(len(tune), len(periods) - 1))), shape=TX.shape)
        g = [max(grouping) + 1] * len(periods)
    fm = myfm.MyFMRegressor(rank=rank, random_seed=seed)
    fm.fit(X, r.numpy(), X_rel=rel(x), n_iter=n_iter, grouping=g + grouping)
    seconds = time.perf_counter() - start
    preds = torch.tensor(fm.predict(TX, rel(tx)), dtype=torch.float32).clamp(float(r.min()), float(r.max()))
    return round(float(rating_metrics(preds, ty)['rmse']), 4), round(seconds, 1)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('--modes', nargs='+', default=['none', 'day', 'week', 'day0', 'dayL'])
    p.add_argument('--out', default=f'bench/results/time_features-{date.today()}')
    a = p.parse_args(argv)
    base, _ = load_split('u1')
    fit, tune = split_random(base, 0.1, seed=0)
    tune = tune[tune.user.isin(set(fit.user)) & tune.movie.isin(set(fit.movie))]
    share = rating_days(fit)
    rows, lines = {}, [f"myFM {__import__('myfm').__version__} regression, rank 10, 512 sweeps, seed 42, one thread; trained on "
             f"{len(fit):,} ratings of u1.base, scored on the other {len(tune):,} (users and movies seen in training).",
             f"Users of the training part whose ratings all fall on one day or two days in a row: {share:.1%}.",
             '', '| mode | carve-out RMSE | fit s |', '|---|---|---|']
    for mode in a.modes:
        rmse, seconds = run(mode, fit, tune)
        rows[mode] = dict(rmse=rmse, seconds=seconds)
        lines.append(f'| {mode} | {rmse:.4f} | {seconds} |'); print(lines[-1], flush=True)
    Path(a.out + '.txt').write_text(__doc__.split('\n\nUsage')[0] + '\n\n' + '\n'.join(lines) + '\n')
    Path(a.out + '.json').write_text(json.dumps(dict(about=lines[0], share_users_rating_within_a_day=share, n_fit=len(fit), n_tune=len(tune), modes=rows), indent=1) + '\n')


if __name__ == '__main__': main()
