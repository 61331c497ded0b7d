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
from collab_lessons.bench import (blend_record, check_scale, check_targets, format_scale, format_table, main, measure, rss_mb,
                                  run_fast, run_once, scale_one, scale_shape, summarise, time_to)
from collab_lessons.ratings import collab_dls, split_random
from collab_lessons.scale import ML25M_SHAPE


def _record(rmse, fit_s, curve):
    return dict(rmse=rmse, mae=rmse * 0.8, fit_s=fit_s, s_per_epoch=fit_s / 2, peak_mb=100., extra_mb=10., curve=curve)


def test_time_to_first_crossing():
    assert time_to([(1, .95), (2, .91), (3, .90)], .91) == 2
    assert time_to([(1, .95)], .91) is None


def test_summarise_medians_and_ratios():
    runs = [{'s': {'reference': _record(.90, 10., [(5, .95), (10, .90)]), 'fast': _record(.89, 1., [(.2, .91), (.4, .895)])}},
            {'s': {'reference': _record(.92, 30., [(15, .95), (30, .92)]), 'fast': _record(.90, 2., [(.3, .90), (.6, .90)])}},
            {'s': {'reference': _record(.91, 20., [(10, .95), (20, .91)]), 'fast': _record(.93, 3., [(1., .95), (3., .93)])}}]
    table = summarise(runs)
    assert table['s']['reference']['rmse'] == .91 and table['s']['reference']['fit_ratio'] == 1
    assert table['s']['fast']['fit_s'] == 2 and table['s']['fast']['fit_ratio'] == pytest.approx(0.1)
    assert table['s']['fast']['ttq_s'] is None                 # the third repeat never reaches 0.91
    text = format_table(table)
    assert 'reference' in text and '0.9100' in text


def test_summarise_time_to_quality_ratio():
    runs = [{'s': {'reference': _record(.91, 20., [(10, .95), (20, .91)]), 'fast': _record(.90, 2., [(.5, .92), (1., .905)]),
                   'svd': None}}]
    row = summarise(runs)['s']['fast']
    assert row['ttq_s'] == 1. and row['ttq_ratio'] == pytest.approx(1 / 20)
    assert summarise(runs)['s']['svd'] is None and 'skipped' in format_table(summarise(runs))


def test_check_targets_verdicts():
    ref = _record(.915, 30., [(30, .915)])
    tune = {'reference': ref, 'fast': _record(.91, 1., [(1., .912)]), 'fast_lazy': _record(.93, 1., [(1., .93)]),
            'best_blend': _record(.90, 60., [(60, .90)])}
    test = {'reference': ref, 'fast': _record(.912, 1.2, [(1.2, .912)]), 'fast_lazy': _record(.93, 1., [(1., .93)]),
            'best_blend': _record(.899, 60., [(60, .899)]), 'surprise_svd_tuned': _record(.92, 5., [(5, .92)])}
    t = check_targets(summarise([{'u1-tune': tune, 'u1-test': test}]))
    assert t['fast_ttq_ratio_u1_tune']['ok'] and t['fast_ttq_ratio_u1_tune']['model'] == 'fast'
    assert t['best_u1_test']['ok'] and t['best_u1_test']['best_baseline'] == .912
    test['best_blend'] = _record(.913, 60., [(60, .913)])
    assert not check_targets(summarise([{'u1-tune': tune, 'u1-test': test}]))['best_u1_test']['ok']


def test_measure_sees_allocation():
    _, used = measure(lambda: np.ones(40_000_000).sum())
    assert used['fit_s'] > 0
    if not np.isnan(rss_mb()): assert used['extra_mb'] > 250


def test_run_fast_record(tiny_ratings):
    train, valid = split_random(tiny_ratings)
    r = run_fast(train, valid, epochs=2, bs=64)
    assert len(r['curve']) == 2 and r['curve'][1][0] >= r['curve'][0][0]
    assert abs(r['rmse'] - r['curve'][-1][1]) < 1e-6 and r['s_per_epoch'] == pytest.approx(r['fit_s'] / 2)


def test_scale_shape_and_one_small_size():
    assert scale_shape(ML25M_SHAPE['n_ratings']) == ML25M_SHAPE
    assert scale_shape(1_000_000)['n_users'] == int(162_541 * 0.2)
    row = scale_one(30_000, epochs=2)
    assert row['n_ratings'] == 30_000 and row['loader_s'] > 0 and row['s_per_epoch'] > 0 and row['valid_rmse'] < 2
    assert len(row['epoch_s']) == 2 and row['s_per_epoch'] == min(row['epoch_s'])   # the fastest epoch is kept
    rows = [dict(row, size_x=1., epoch_x=1., us_per_rating=1.)]
    assert '30,000' in format_scale(rows)


def test_module_entry_point_scale_one():
    "`python -m collab_lessons.bench --scale-one N` prints one JSON line: the path `--scale` uses per size."
    out = subprocess.run([sys.executable, '-m', 'collab_lessons.bench', '--scale-one', '20000', '--epochs', '1'],
                         capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row['n_ratings'] == 20000 and row['peak_mb'] > 0


def test_main_help_names_the_options(capsys):
    with pytest.raises(SystemExit): main(['--help'])
    text = capsys.readouterr().out
    assert all(opt in text for opt in ('--repeats', '--threads', '--smoke', '--scale', '--out'))


def _scale_rows(per_rating_us):
    "`run_scale`-like rows for 1M and 25M ratings with the given microseconds per rating."
    rows = [dict(n_ratings=n, n_users=n // 150, n_items=n // 400, loader_s=2., peak_mb=2000., valid_rmse=.7, us_per_rating=us,
                 s_per_epoch=us * n / 1e6)
            for n, us in zip((1_000_000, 25_000_000), per_rating_us)]
    for r in rows: r.update(size_x=r['n_ratings'] / 1e6, epoch_x=r['s_per_epoch'] / rows[0]['s_per_epoch'])
    return rows


def test_check_scale_verdicts():
    ok = check_scale(_scale_rows((0.4, 0.48)))
    assert all(t['ok'] for t in ok.values()) and ok['linear']['per_rating_x'] == pytest.approx(1.2)
    slow = check_scale(_scale_rows((0.4, 1.3)))                # 32.5 s per epoch, 3.25x per rating
    assert not slow['linear']['ok'] and not slow['epoch']['ok'] and slow['loader']['ok'] and slow['peak']['ok']


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


def test_format_markdown_tables_and_verdicts():
    "The README's tables: one row per model with its ratios, and verdicts that follow the targets."
    ref = _record(.915, 30., [(30, .915)])
    splits = {'u1-tune': {'reference': ref, 'fast': _record(.91, 1., [(1., .912)]), 'best_blend': _record(.89, 60., [(60, .89)])},
              'u1-test': {'reference': ref, 'fast': _record(.912, 1.2, [(1.2, .912)]), 'best_blend': _record(.8991, 60., [(60, .8991)])}}
    splits['random20'] = splits['u1-test']
    table = summarise([splits])
    rows = _scale_rows((0.4, 1.3))
    report = dict(date='2026-11-29', repeats=1, threads=1, machine=dict(cpus=2), table=table, targets=check_targets(table),
                  scale=rows, scale_targets=check_scale(rows))
    text = bench_module.format_markdown(report)
    assert '| `best_blend` | 0.8991 |' in text and '| `fast` | 0.9120 |' in text
    assert 'ahead of every other model: met (`best_blend` 0.8991' in text and 'stretch ≤ 0.889: **not met**' in text
    assert 'linear growth' in text and '**not met** (epoch ×81.2 for ×25 ratings: 3.25× per rating)' in text


def test_readme_quotes_the_stored_benchmark():
    "The README's Performance tables and verdicts are `bench/results/bench.md`, line for line, and it matches `bench.json`."
    root = Path(__file__).parent.parent
    stored = (root/'bench/results/bench.md').read_text()
    assert stored == bench_module.format_markdown(json.loads((root/'bench/results/bench.json').read_text()))
    readme = (root/'README.md').read_text()
    missing = [line for line in stored.splitlines() if line.startswith(('|', '- ')) and line not in readme]
    assert not missing, missing
