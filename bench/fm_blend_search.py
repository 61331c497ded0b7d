"""Carve-out search for the fm_blend kind: each candidate part is trained on 90% of u1.base and scored on the other 10%
(split_random(base, 0.1, seed=0)); the test file is never read. Predictions are cached so blends can be compared.
Usage: python bench/fm_blend_search.py NAME  (one part per call; see PARTS), or `python bench/fm_blend_search.py blends`."""
import json, sys, time
from itertools import combinations
from pathlib import Path

import torch
from collab_lessons.splits import load_split, split_random
from collab_lessons.fast import rating_loader
from collab_lessons.model_kinds import train_kind, scoring_model
import collab_lessons.bayes_fm  # registers bayes_fm

CACHE = Path('/tmp/fm_blend_search'); CACHE.mkdir(exist_ok=True)
PARTS = {
    'fm': ('bayes_fm', {}),
    'fm_r20': ('bayes_fm', dict(ranks=[20])),
    'fm_r5_10_20': ('bayes_fm', dict(ranks=[5, 10, 20], n_samples=256)),
    'fm_s1024': ('bayes_fm', dict(n_samples=1024)),
    'fm_s256': ('bayes_fm', dict(n_samples=256)),
    'fm_ids_implicit': ('bayes_fm', dict(fm_groups=['implicit'])),
    'kae': ('kernel_ae', {}),
    'kae1': ('kernel_ae', dict(seeds=[0])),
    'bpmf': ('bpmf', {}),
    'kaeT1': ('kernel_ae', dict(seeds=[0], transpose=True)),   # user-based: the autoencoder over users' rows (user and movie swapped)
    'kaeT': ('kernel_ae', dict(transpose=True)),
    'fm_r10_20': ('bayes_fm', dict(ranks=[10, 20])),
}

def carve():
    base, _ = load_split('u1')
    return split_random(base, 0.1, seed=0)

def run_part(name):
    fit, tune = carve()
    kind, opts = PARTS[name]
    opts = dict(opts)
    if opts.pop('transpose', False): fit, tune = (f.rename(columns=dict(user='movie', movie='user')) for f in (fit, tune))
    t = train_kind(kind, fit, tune, 'cpu', **opts)
    dl = rating_loader(tune, dict(user=t.users, item=t.items), bs=len(tune))
    with torch.no_grad(): preds = scoring_model(kind, t.weights, t.info)(dl.x).view(-1)
    torch.save(dict(preds=preds, y=dl.y, x=dl.x, seconds=t.scores['seconds'], rmse=t.scores['valid_rmse']), CACHE/f'{name}.pt')
    print(json.dumps(dict(part=name, kind=kind, opts=opts, carve_rmse=t.scores['valid_rmse'], seconds=t.scores['seconds'])), flush=True)

def lstsq_weights(P, y):
    "Least-squares weights (summing to 1, each clipped at 0 afterwards) of the columns of P against y."
    from collab_lessons.bayes_fm import blend_weights
    return blend_weights(P, y)

def blends():
    parts = {p.stem: torch.load(p) for p in sorted(CACHE.glob('*.pt'))}
    y = next(iter(parts.values()))['y']
    half = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(y), generator=half); a, b = idx[: len(y) // 2], idx[len(y) // 2:]
    rmse = lambda p: ((p - y) ** 2).mean().sqrt().item()
    rows = []
    for k in (1, 2, 3):
        for names in combinations(parts, k):
            P = torch.stack([parts[n]['preds'] for n in names], 1)
            if k == 1: rows.append((names, rmse(P[:, 0]), rmse(P[:, 0]), [1.])); continue
            w = lstsq_weights(P, y)
            # cross-fitted: weights fitted on one half of the carve-out, scored on the other, and back
            out = torch.empty_like(y)
            for fit_i, score_i in ((a, b), (b, a)): out[score_i] = P[score_i] @ lstsq_weights(P[fit_i], y[fit_i])
            rows.append((names, rmse(P @ w), rmse(out), [round(float(v), 3) for v in w]))
    rows.sort(key=lambda r: r[2])
    for names, inr, cross, w in rows: print(f"| {' + '.join(names)} | {inr:.4f} | {cross:.4f} | {w} |")

if __name__ == '__main__':
    blends() if sys.argv[1] == 'blends' else run_part(sys.argv[1])
