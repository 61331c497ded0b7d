"""Choose the best model's settings on u1-tune, then time it against the reference side by side on u1 and score it on u1-u5.

    OMP_NUM_THREADS=1 python tools/best_model.py [--out bench/best_model.json]

Everything runs in one process with one torch thread, so the times share the machine's state. Settings are compared on
the `u1-tune` carve-out of u1.base only; u1.test and u2-u5.test are scored once each, with the settings the benchmark uses.
"""
import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from collab_lessons.bayes import fit_bpmf_ensemble
from collab_lessons.bench import BLEND, RECIPES, bench_splits, blend_record, run_bpmf, run_kernel_ae, run_recipe, warm_up
from collab_lessons.fast import fast_loaders
from collab_lessons.kernel_ae import blend, blend_weight, fit_kernel_ae
from collab_lessons.measure import rating_metrics
from collab_lessons.splits import load_split


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def tune_table(log=print):
    "Blends of BPMF and kernel-AE settings on u1-tune: each component's RMSE and seconds, the blend's RMSE and summed seconds."
    train, valid = bench_splits()['u1-tune']
    train_dl, valid_dl, classes = fast_loaders(train, valid)
    n_users, n_items, y = len(classes['user']), len(classes['item']), valid_dl.y
    bpmf = {}
    for n_samples in (100, 200):
        torch.manual_seed(42)
        (preds, _), s = _timed(fit_bpmf_ensemble, train_dl, n_users, n_items, valid_dl, ranks=(5, 10, 20),
                               n_samples=n_samples, burn_in=n_samples // 5, every=0)
        bpmf[n_samples] = preds, s
        log(f"bpmf ranks (5, 10, 20), {n_samples} samples: {rating_metrics(preds, y)['rmse']:.4f} in {s:.1f} s")
    ae = {}
    for seed, epochs in ((0, 24), (1, 24), (2, 24), (0, 20)):
        torch.manual_seed(seed)
        (preds, _, _), s = _timed(fit_kernel_ae, train_dl, n_users, n_items, valid_dl, epochs=epochs, every=0)
        ae[seed, epochs] = preds, s
        log(f"kernel_ae seed {seed}, {epochs} epochs: {rating_metrics(preds, y)['rmse']:.4f} in {s:.1f} s")
    rows = []
    for n_samples, seeds, epochs in ((200, (0, 1, 2), 24), (200, (0, 1), 24), (200, (0,), 24), (100, (0,), 24), (200, (0,), 20)):
        b_preds, b_s = bpmf[n_samples]
        a_preds = torch.stack([ae[s, epochs][0] for s in seeds]).mean(0)
        a_s = sum(ae[s, epochs][1] for s in seeds)
        w = blend_weight(b_preds, a_preds, y)
        rows.append(dict(bpmf_samples=n_samples, ae_seeds=len(seeds), ae_epochs=epochs,
                         bpmf_rmse=rating_metrics(b_preds, y)['rmse'], ae_rmse=rating_metrics(a_preds, y)['rmse'],
                         blend_rmse=rating_metrics(blend(b_preds, a_preds, w), y)['rmse'], weight=w, fit_s=b_s + a_s))
    return rows


def _component(name, train, valid, final=False):
    "The record of one part of the blend with `RECIPES`' settings, keeping its predictions (the benchmark's rows train whole kinds)."
    settings = {k: v for k, v in RECIPES[name].items() if k != 'kind'}
    return (run_bpmf if name == 'bpmf' else run_kernel_ae)(train, valid, final=final, **settings)


def side_by_side(log=print):
    "Reference, then `best_blend` (the benchmark's settings), then the reference again, all on u1.base, scored once on u1.test."
    tune_train, tune_valid = bench_splits()['u1-tune']
    a, b = (_component(n, tune_train, tune_valid) for n in BLEND)
    w = blend_weight(a['preds'], b['preds'], torch.tensor(tune_valid.rating.to_numpy(), dtype=torch.float32))
    train, test = load_split('u1')
    y = torch.tensor(test.rating.to_numpy(), dtype=torch.float32)
    ref1 = run_recipe('reference', train, test, final=True)
    best = blend_record(*(_component(n, train, test, final=True) for n in BLEND), y, w)
    ref2 = run_recipe('reference', train, test, final=True)
    log(f"u1: reference {ref1['fit_s']:.1f} s and {ref2['fit_s']:.1f} s (RMSE {ref1['rmse']:.4f}); best_blend {best['fit_s']:.1f} s (RMSE {best['rmse']:.4f})")
    return w, dict(reference_fit_s=[ref1['fit_s'], ref2['fit_s']], reference_rmse=ref1['rmse'], best_fit_s=best['fit_s'],
                   best_rmse=best['rmse'], fit_ratio=best['fit_s'] / np.mean([ref1['fit_s'], ref2['fit_s']]), weight=w)


def folds(w, u1_rmse, log=print):
    "`best_blend` on u2-u5 (fit on uK.base, scored once on uK.test) with the u1-tune weight `w`; u1 from the side-by-side run."
    rmse, fit_s = {'u1': u1_rmse}, {}
    for fold in ('u2', 'u3', 'u4', 'u5'):
        train, test = load_split(fold)
        r = blend_record(*(_component(n, train, test, final=True) for n in BLEND), torch.tensor(test.rating.to_numpy(), dtype=torch.float32), w)
        rmse[fold], fit_s[fold] = r['rmse'], r['fit_s']
        log(f"{fold}: best_blend {r['rmse']:.4f} in {r['fit_s']:.1f} s")
    return dict(rmse=rmse, fit_s=fit_s, mean_rmse=float(np.mean(list(rmse.values()))))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='bench/best_model.json')
    args = p.parse_args()
    torch.set_num_threads(1)
    warm_up()
    start = time.perf_counter()
    report = dict(date=datetime.now(timezone.utc).isoformat(timespec='seconds'), threads=1, cpus=os.cpu_count(),
                  load_before=os.getloadavg()[0], settings={n: {k: v for k, v in RECIPES[n].items() if k != 'kind'} for n in BLEND})
    report['tune'] = tune_table()
    w, report['u1'] = side_by_side()
    report['folds'] = folds(w, report['u1']['best_rmse'])
    report['seconds'], report['load_after'] = time.perf_counter() - start, os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(report, indent=1, default=list) + '\n')
    print(json.dumps(report, indent=1, default=list))


if __name__ == '__main__': main()
