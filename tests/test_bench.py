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


def test_run_once_runs_every_recipe_on_every_split_and_reports_the_blend_weight(monkeypatch):
    "Every recipe on every split, u1-test scored once (`final`); the tuning reports the weight `blend` chose on u1-tune."
    frames = {s: (pd.DataFrame(dict(rating=[1., 2.])), pd.DataFrame(dict(rating=[3., 4., 5.]))) for s in ('u1-tune', 'u1-test')}
    calls = []
    def fake(name, train, valid, svd_params=None, smoke=False, final=False):
        calls.append((name, final))
        return dict(_record(.1, 1., [(1, .1)]), weight=.3 if not final else .9) if name == 'best_blend' else _record(.2, 2., [(2, .2)])
    monkeypatch.setattr(bench_module, 'run_recipe', fake)
    results, tuning = run_once(frames, recipes=('fast', 'best_blend'), log=lambda *a: None)
    assert calls == [('fast', False), ('best_blend', False), ('fast', True), ('best_blend', True)]
    assert tuning['blend_weight'] == .3 and set(results['u1-test']) == {'fast', 'best_blend'}
    json.dumps(results)


def test_recipes_of_model_kinds_train_as_the_command_does(monkeypatch, tiny_ratings):
    "A recipe whose `kind` is registered goes through `train_kind` with its options (as `collab-lessons train` would), then is scored once."
    seen = {}
    real = bench_module.train_kind
    def spy(kind, train, valid=None, device=None, **opts):
        seen.update(kind=kind, valid=valid, **opts)
        return real(kind, train, valid, device, **opts)
    monkeypatch.setattr(bench_module, 'train_kind', spy)
    train, valid = split_random(tiny_ratings)
    r = bench_module.run_recipe('kernel_ae', train, valid, smoke=True, final=True)
    assert seen == dict(kind='kernel_ae', valid=None, seeds=(0,), epochs=1, n_hid=16)   # RECIPES' settings, then SMOKE's
    assert r['curve'] == [] and 0.3 < r['rmse'] < 3 and r['fit_s'] > 0 and r['n_scored'] <= len(valid)


def test_run_folds_reuses_u1_and_trains_the_blend_on_each_other_fold(monkeypatch):
    "u1 comes from this run's record; every other fold trains `best_blend` on its base file and scores it once on its test file."
    from collab_lessons.bench import run_folds
    seen, runs = [], []
    def fake_split(fold):
        seen.append(fold)
        return pd.DataFrame(dict(rating=[1., 2.])), pd.DataFrame(dict(rating=[3., 5.]))
    def fake(name, train, valid, svd_params=None, smoke=False, final=False):
        runs.append((name, final))
        return dict(_record(.5, 2., []), weight=.25)
    monkeypatch.setattr(bench_module, 'load_split', fake_split)
    monkeypatch.setattr(bench_module, 'run_recipe', fake)
    out = run_folds(dict(rmse=.9, fit_s=40., weight=.3), folds=('u1', 'u2', 'u3'), log=lambda *a: None)
    assert seen == ['u2', 'u3'] and runs == [('best_blend', True)] * 2 and out['rmse']['u1'] == .9 and out['fit_s']['u2'] == 2.
    assert out['weights'] == dict(u1=.3, u2=.25, u3=.25) and out['mean_rmse'] == pytest.approx((.9 + .5 + .5) / 3)


def test_lesson_quotes_the_committed_best_model_run():
    "Lesson 96 shows `bench/best_model.json` (read in a cell, its table stored), and the benchmark uses the chosen settings."
    root = Path(__file__).parent.parent
    run = json.loads((root/'bench/best_model.json').read_text())
    for name in BLEND: assert run['settings'][name] == {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPES[name].items() if k != 'kind'}
    cells = {c['id']: c for c in json.loads((root/'nbs/reference/29_bench.ipynb').read_text())['cells']}
    shown = ''.join(''.join(o.get('data', {}).get('text/plain', '')) for o in cells['0e1f2a3b']['outputs'])
    assert all(f"{r['blend_rmse']:.4f}" in shown for r in run['tune'])
    chosen = next(r for r in run['tune'] if (r['bpmf_samples'], r['ae_seeds'], r['ae_epochs']) == (200, 1, 24))
    assert chosen['blend_rmse'] <= min(r['blend_rmse'] for r in run['tune']) + 0.001   # within 0.001 of the best tried on u1-tune
    assert run['u1']['best_rmse'] <= 0.89
