import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons.bench_report import check_targets, format_markdown, format_table, load_targets, summarise, time_to
from collab_lessons.bench_scale import check_scale

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


def test_format_markdown_tables_and_verdicts(scale_rows):
    "The README's tables: one row per model with its ratios, and verdicts that follow the targets."
    ref = _record(.915, 30., [(30, .915)])
    splits = {'u1-tune': {'reference': ref, 'fast': _record(.91, 1., [(1., .912)]), 'best_blend': _record(.89, 60., [(60, .89)])},
              'u1-test': {'reference': ref, 'fast': _record(.912, 1.2, [(1.2, .912)]), 'best_blend': _record(.8991, 60., [(60, .8991)])}}
    splits['random20'] = splits['u1-test']
    table = summarise([splits])
    rows = scale_rows((0.4, 1.3))
    report = dict(date='2026-11-29', repeats=1, threads=1, machine=dict(cpus=2), table=table, targets=check_targets(table),
                  scale=rows, scale_targets=check_scale(rows))
    text = format_markdown(report)
    assert '| `best_blend` | 0.8991 |' in text and '| `fast` | 0.9120 |' in text
    assert 'ahead of every other model: met (`best_blend` 0.8991' in text and 'stretch ≤ 0.889: **not met**' in text
    assert 'linear growth' in text and '**not met** (epoch ×81.2 for ×25 ratings: 3.25× per rating)' in text


def test_readme_quotes_the_stored_benchmark():
    "The README's Performance tables and verdicts are `bench/results/bench.md`, line for line, and it matches `bench.json`."
    root = Path(__file__).parent.parent
    stored = (root/'bench/results/bench.md').read_text()
    assert stored == format_markdown(json.loads((root/'bench/results/bench.json').read_text()))
    readme = (root/'README.md').read_text()
    missing = [line for line in stored.splitlines() if line.startswith(('|', '- ')) and line not in readme]
    assert not missing, missing



def test_targets_file_holds_every_bar_with_its_meaning():
    t = load_targets()
    bars = {k: v for k, v in t.items() if k != '_about'}
    assert set(bars) == set(t['_about']) and all(isinstance(v, (int, float)) and v > 0 for v in bars.values())


def test_check_targets_follows_the_targets_file(monkeypatch):
    "A stricter bar in the data file turns the same table's verdict around: the bars live in the file, not the code."
    ref = _record(.915, 30., [(30, .915)])
    tune = {'reference': ref, 'fast': _record(.91, 1., [(1., .912)]), 'best_blend': _record(.89, 60., [(60, .89)])}
    test = {'reference': ref, 'fast': _record(.912, 1.2, [(1.2, .912)]), 'best_blend': _record(.899, 60., [(60, .899)])}
    table = summarise([{'u1-tune': tune, 'u1-test': test}])
    assert check_targets(table)['best_u1_test']['ok']
    assert not check_targets(table, dict(load_targets(), best_u1_test_rmse=0.89))['best_u1_test']['ok']


def test_exercise_time_to_ordering():
    quick = [(1, 0.95), (2, 0.925), (3, 0.92)]
    slow = [(5, 0.94), (10, 0.91), (15, 0.89)]
    assert (time_to(quick, 0.93), time_to(slow, 0.93)) == (2, 10)
    assert (time_to(quick, 0.91), time_to(slow, 0.91)) == (None, 10)


def test_best_at_seed_cost_and_folds_verdicts(scale_rows):
    "The best model's fit ratio and u1.test RMSE against their bars, its u1-u5 mean, and the file-to-model rows in the Markdown."
    ref = _record(.915, 30., [(30, .915)])
    tune = {'reference': ref, 'fast': _record(.91, 1., [(1., .912)]), 'best_blend': _record(.887, 50., [(50, .887)])}
    test = {'reference': ref, 'fast': _record(.912, 1.2, [(1.2, .912)]), 'best_blend': _record(.889, 50., [(50, .889)])}
    table = summarise([{'u1-tune': tune, 'u1-test': test, 'random20': test}])
    folds = dict(rmse={'u1': .889, 'u2': .88}, fit_s={'u1': 50., 'u2': 48.}, mean_rmse=.8845)
    t = check_targets(table, folds=folds)
    assert t['best_at_seed_cost']['ok'] and t['best_at_seed_cost']['fit_ratio'] == pytest.approx(50 / 30)
    assert t['best_folds_mean']['ok'] and not check_targets(table, folds=dict(folds, mean_rmse=.886))['best_folds_mean']['ok']
    slow = summarise([{'u1-tune': tune, 'u1-test': dict(test, best_blend=_record(.889, 61., [(61, .889)])), 'random20': test}])
    assert not check_targets(slow)['best_at_seed_cost']['ok'] and 'best_folds_mean' not in check_targets(slow)
    files = [dict(format='csv', n_ratings=25_000_095, n_users=162_541, n_items=59_047, read_s=20., train_s=48., epochs=5,
                  save_s=.1, total_s=68.1, peak_mb=2600.)]
    report = dict(date='2026-12-03', repeats=1, threads=1, machine=dict(cpus=2), table=table, targets=t, folds=folds,
                  file_to_model=files, file_to_model_targets={'csv': dict(seconds=68.1, bar_s=90, peak_mb=2600., bar_mb=3000, ok=True)})
    text = format_markdown(report)
    assert "fits in ≤ 2× the reference's fit time with `u1.test` RMSE ≤ 0.890: met (1.67×, 0.8890)" in text
    assert '| test RMSE | 0.8890 | 0.8800 | 0.8845 |' in text and 'over u1, u2 ≤ 0.885: met (0.8845)' in text
    assert '| csv | 25,000,095 | 162,541 | 59,047 | 20.0 | 48.0 (5) | 0.1 | 68.1 | 2600 |' in text
    assert 'csv file → saved lazy model in ≤ 90 s with peak ≤ 3000 MB: met (68.1 s, 2600 MB)' in text
