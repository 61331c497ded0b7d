import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons import bench as bench_module
from collab_lessons.bench import BLEND, RECIPES, blend_record, main, run_fast, run_once
from collab_lessons.splits import split_random


def _record(rmse, fit_s, curve):
    return dict(rmse=rmse, mae=rmse * 0.8, fit_s=fit_s, s_per_epoch=fit_s / 2, peak_mb=100., extra_mb=10., curve=curve)


def test_run_fast_record(tiny_ratings):
    train, valid = split_random(tiny_ratings)
    r = run_fast(train, valid, epochs=2, bs=64)
    assert len(r['curve']) == 2 and r['curve'][1][0] >= r['curve'][0][0]
    assert abs(r['rmse'] - r['curve'][-1][1]) < 1e-6 and r['s_per_epoch'] == pytest.approx(r['fit_s'] / 2)


def test_main_help_names_the_options(capsys):
    with pytest.raises(SystemExit): main(['--help'])
    text = capsys.readouterr().out
    assert all(opt in text for opt in ('--repeats', '--threads', '--smoke', '--scale', '--out'))


def test_blend_record_sums_time_and_scores_the_blend():
    y = torch.tensor([1., 2., 3., 4.])
    a = dict(_record(.5, 10., [(10, .5)]), preds=y + 0.5)
    b = dict(_record(.5, 5., [(5, .5)]), preds=y - 0.5)
    r = blend_record(a, b, y, 0.5)
    assert r['rmse'] == pytest.approx(0.) and r['fit_s'] == 15. and r['curve'] == [(15., r['rmse'])] and r['weight'] == .5
    assert blend_record(dict(a, curve=[]), b, y, 0.5)['curve'] == []   # u1-test: no curve


def test_run_once_tunes_the_blend_weight_on_u1_tune_only(monkeypatch):
    "The weight comes from `u1-tune` and is reused unchanged on the later splits; `preds` never reach the report."
    frames = {s: (pd.DataFrame(dict(rating=[1., 2.])), pd.DataFrame(dict(rating=[3., 4., 5.]))) for s in ('u1-tune', 'u1-test')}
    offsets = {('u1-tune', 'bpmf'): (.5, .5, .5), ('u1-tune', 'kernel_ae'): (-.5, -.5, -.5),   # equal and opposite: w = 0.5
               ('u1-test', 'bpmf'): (1., 1., 1.), ('u1-test', 'kernel_ae'): (0., 0., 0.)}      # kernel_ae exact: w = 1 if refit
    calls = iter([('u1-tune', 'bpmf'), ('u1-tune', 'kernel_ae'), ('u1-test', 'bpmf'), ('u1-test', 'kernel_ae')])
    def fake(name, train, valid, *args, **kwargs):
        split, _ = next(calls)
        return dict(_record(.1, 1., [(1, .1)]), preds=torch.tensor(valid.rating.to_numpy(), dtype=torch.float32) + torch.tensor(offsets[split, name]))
    monkeypatch.setattr(bench_module, 'run_recipe', fake)
    results, tuning = run_once(frames, recipes=('bpmf', 'kernel_ae'), log=lambda *a: None)
    assert tuning['blend_weight'] == pytest.approx(0.5)
    assert results['u1-test']['best_blend']['rmse'] == pytest.approx(0.5)    # 0.5 * 1 + 0.5 * 0 off everywhere
    assert all('preds' not in r for split in results.values() for r in split.values())
    json.dumps(results)


def test_run_folds_reuses_u1_and_scores_each_other_fold_once(monkeypatch):
    "u1 comes from this run's record; every other fold is fitted on its base file and blended with the u1-tune weight."
    from collab_lessons.bench import run_folds
    seen = []
    def fake_split(fold):
        seen.append(fold)
        return pd.DataFrame(dict(rating=[1., 2.])), pd.DataFrame(dict(rating=[3., 5.]))
    def fake(name, train, valid, *args, **kwargs):
        off = 1. if name == 'bpmf' else -1.
        return dict(_record(.1, 2., []), preds=torch.tensor(valid.rating.to_numpy(), dtype=torch.float32) + off)
    monkeypatch.setattr(bench_module, 'load_split', fake_split)
    monkeypatch.setattr(bench_module, 'run_recipe', fake)
    out = run_folds(0.25, dict(rmse=.9, fit_s=40.), folds=('u1', 'u2', 'u3'), log=lambda *a: None)
    assert seen == ['u2', 'u3'] and out['rmse']['u1'] == .9 and out['fit_s']['u2'] == 4.
    assert out['rmse']['u2'] == pytest.approx(0.5)          # 0.75 * (+1) + 0.25 * (-1) off everywhere
    assert out['mean_rmse'] == pytest.approx((.9 + .5 + .5) / 3)


def test_lesson_quotes_the_committed_best_model_run():
    "Lesson 96 shows `bench/best_model.json` (read in a cell, its table stored), and the benchmark uses the chosen settings."
    root = Path(__file__).parent.parent
    run = json.loads((root/'bench/best_model.json').read_text())
    for name in BLEND: assert run['settings'][name] == {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPES[name].items() if k != 'kind'}
    cells = {c['id']: c for c in json.loads((root/'nbs/96_bench.ipynb').read_text())['cells']}
    shown = ''.join(''.join(o.get('data', {}).get('text/plain', '')) for o in cells['0e1f2a3b']['outputs'])
    assert all(f"{r['blend_rmse']:.4f}" in shown for r in run['tune'])
    chosen = next(r for r in run['tune'] if (r['bpmf_samples'], r['ae_seeds'], r['ae_epochs']) == (200, 1, 24))
    assert chosen['blend_rmse'] <= min(r['blend_rmse'] for r in run['tune']) + 0.001   # within 0.001 of the best tried on u1-tune
    assert run['u1']['best_rmse'] <= 0.89
