"""ML-100k u1..u5: the `fm_blend` kind and the course's reference kind trained by `collab-lessons train --split uK` (one process each,
its fit time as the command reports it), and myFM (PyPI `myfm`, optional) on the same folds with the same features (`fm_sides`).
Every model is scored by the same code (`rating_metrics`) on the test pairs whose user and movie are in uK.base.
Nothing is chosen on a test file: `fm_blend` picks its blend weights on a 10% carve-out of uK.base inside `train`.
Usage: python bench/fm_blend_folds.py [--folds u1 u2 ...] [--kinds fm_blend course] [--myfm reg ordinal] [--out STEM]"""
import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

from collab_lessons.splits import load_split
from collab_lessons.fast import rating_tensors
from collab_lessons.measure import rating_metrics
from collab_lessons.model_files import load_model
from collab_lessons.model_kinds import vocab
from collab_lessons.bayes_fm import FM_GROUPS, fm_sides

RUN_CLI = 'import sys; from collab_lessons.cli import main; sys.exit(main(sys.argv[1:]))'


def known_pairs(base, test):
    "The test ratings whose user and movie are in `base`: (n, 2) ids as strings and the ratings."
    users, items = set(base.user.astype(str)), set(base.movie.astype(str))
    keep = test.user.astype(str).isin(users) & test.movie.astype(str).isin(items)
    return test[keep]


def score_model_file(path, test):
    "RMSE and MAE of a saved model on `test` (pairs it knows), by `rating_metrics`."
    saved = load_model(path)
    x, y, _ = rating_tensors(test, dict(user=saved.users, item=saved.items), drop_unknown=True)
    with torch.no_grad(): preds = saved.model(x).view(-1)
    return {k: round(float(v), 4) for k, v in rating_metrics(preds, y).items() if k in ('rmse', 'mae')}, len(y)


def cli_train(split, kind, folder):
    "Train `kind` on `split` through the command in a fresh process; its JSON (with the fit `seconds`) and the model file."
    out = Path(folder)/f'{split}-{kind}.pt'
    argv = ['train', '--split', split, '--model-kind', kind, '--out', str(out), '--json', '-q', '--device', 'cpu']
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-c', RUN_CLI, *argv], capture_output=True, text=True)
    if done.returncode: raise RuntimeError(f"{kind} on {split} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout), out, round(time.perf_counter() - start, 1)


def myfm_relations(x, users, items):
    "myFM's view of `bayes_fm`'s features (`fm_sides` of the codes `x`): a function of rating codes giving the user and item `RelationBlock`s, and each column's group."
    import scipy.sparse as sps
    import myfm
    sides = fm_sides(x, users, items, FM_GROUPS, None, None, True)
    data = [sps.csr_matrix(torch.cat([b[0].to_dense() for b in s.blocks], 1).numpy()) for s in sides]
    grouping = sides[0].groups.tolist() + (sides[1].groups + sides[0].n_groups).tolist()
    return (lambda codes: [myfm.RelationBlock(codes[:, 0].numpy(), data[0]), myfm.RelationBlock(codes[:, 1].numpy(), data[1])]), grouping


def myfm_fit(base, test, ordinal=False, rank=10, n_iter=512, seed=42):
    "myFM (Gibbs regression, or ordered probit scored by its expected rating) on the same ids, implicit and side features as `bayes_fm`."
    import scipy.sparse as sps
    import myfm
    users, items = vocab(base.user), vocab(base.movie)
    x, r, _ = rating_tensors(base, dict(user=users, item=items), drop_unknown=True)
    tx, ty, _ = rating_tensors(test, dict(user=users, item=items), drop_unknown=True)
    start = time.perf_counter()
    rel, grouping = myfm_relations(x, users, items)
    empty = lambda n: sps.csr_matrix((n, 0))
    if ordinal:
        fm = myfm.MyFMOrderedProbit(rank=rank, random_seed=seed)
        fm.fit(empty(len(r)), (r.numpy() - 1).astype(int), X_rel=rel(x), n_iter=n_iter, grouping=grouping)
        fit_s = time.perf_counter() - start
        preds = fm.predict_proba(empty(len(ty)), rel(tx)) @ np.arange(1, 6)
    else:
        fm = myfm.MyFMRegressor(rank=rank, random_seed=seed)
        fm.fit(empty(len(r)), r.numpy(), X_rel=rel(x), n_iter=n_iter, grouping=grouping)
        fit_s = time.perf_counter() - start
        preds = fm.predict(empty(len(ty)), rel(tx))
    preds = torch.tensor(preds, dtype=torch.float32).clamp(float(r.min()), float(r.max()))
    m = rating_metrics(preds, ty)
    return dict(rmse=round(float(m['rmse']), 4), mae=round(float(m['mae']), 4), n_test=len(ty), seconds=round(fit_s, 1))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('--folds', nargs='+', default=['u1', 'u2', 'u3', 'u4', 'u5'])
    p.add_argument('--kinds', nargs='+', default=['course', 'fm_blend'])
    p.add_argument('--myfm', nargs='*', default=['reg', 'ordinal'])
    p.add_argument('--out', default='bench/results/fm_blend_folds-2026-12-07')
    a = p.parse_args(argv)
    path = Path(a.out + '.json')
    results = json.loads(path.read_text()) if path.exists() else {}
    folder = tempfile.mkdtemp()
    for split in a.folds:
        base, test = load_split(split)
        test = known_pairs(base, test)
        row = results.setdefault(split, {})
        for kind in a.kinds:
            out, model, wall = cli_train(split, kind, folder)
            scores, n = score_model_file(model, test)
            row[kind] = dict(scores, n_test=n, seconds=out['seconds'], process_s=wall, **{k: out[k] for k in ('valid_rmse',) if k in out})
            print(split, kind, row[kind], flush=True)
            path.write_text(json.dumps(results, indent=1))
        for mode in a.myfm:
            try: row[f'myfm_{mode}'] = myfm_fit(base, test, ordinal=mode == 'ordinal')
            except ImportError as e: print(f"myfm not installed ({e}): skipped", flush=True); break
            print(split, f'myfm_{mode}', row[f'myfm_{mode}'], flush=True)
            path.write_text(json.dumps(results, indent=1))
    return results


if __name__ == '__main__': main()
