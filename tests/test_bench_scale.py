import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from collab_lessons.bench_scale import check_scale, format_scale, read_speed, scale_one, scale_shape
from collab_lessons.scale import ML25M_SHAPE


def test_scale_shape_and_one_small_size():
    assert scale_shape(ML25M_SHAPE['n_ratings']) == ML25M_SHAPE
    assert scale_shape(1_000_000)['n_users'] == int(162_541 * 0.2)
    row = scale_one(30_000, epochs=2)
    assert row['n_ratings'] == 30_000 and row['loader_s'] > 0 and row['s_per_epoch'] > 0 and row['valid_rmse'] < 2
    assert len(row['epoch_s']) == 2 and row['s_per_epoch'] == min(row['epoch_s'])   # the fastest epoch is kept
    rows = [dict(row, size_x=1., epoch_x=1., us_per_rating=1.)]
    assert '30,000' in format_scale(rows)


@pytest.mark.slow
def test_module_entry_point_scale_one():
    "`python -m collab_lessons.bench_scale --one N` prints one JSON line: the path `--scale` uses per size."
    out = subprocess.run([sys.executable, '-m', 'collab_lessons.bench_scale', '--one', '20000', '--epochs', '1'],
                         capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row['n_ratings'] == 20000 and row['peak_mb'] > 0


def test_check_scale_verdicts(scale_rows):
    ok = check_scale(scale_rows((0.4, 0.48)))
    assert all(t['ok'] for t in ok.values()) and ok['linear']['per_rating_x'] == pytest.approx(1.2)
    slow = check_scale(scale_rows((0.4, 1.3)))                # 32.5 s per epoch, 3.25x per rating
    assert not slow['linear']['ok'] and not slow['epoch']['ok'] and slow['loader']['ok'] and slow['peak']['ok']



@pytest.mark.slow
def test_read_speed_times_both_readers_on_the_same_file():
    speed = read_speed(20_000, log=lambda *a: None)
    assert speed['read_ratings']['rows'] == speed['read_csv']['rows'] == 20_000
    assert speed['time_x'] == pytest.approx(speed['read_ratings']['seconds'] / speed['read_csv']['seconds'])
    assert speed['read_ratings']['peak_mb'] > 0


def test_exercise_blocked_and_shuffled_epochs():
    blocked, shuffled = scale_one(20_000, epochs=2), scale_one(20_000, epochs=2, block_rows=None)
    assert blocked['valid_rmse'] < 1.2 and shuffled['valid_rmse'] < 1.2


@pytest.mark.slow
def test_file_to_model_both_formats_and_verdicts():
    "CSV and Parquet files of the same synthetic ratings, each trained in a fresh process: same shape, every stage timed."
    from collab_lessons.bench_scale import check_file_to_model, file_to_model
    rows = file_to_model(20_000, epochs=1, log=lambda *a: None)
    assert [r['format'] for r in rows] == ['csv', 'parquet'] and rows[0]['n_users'] == rows[1]['n_users']
    assert all(r['n_train'] == round(0.8 * r['n_ratings']) and r['total_s'] >= r['read_s'] + r['train_s'] - 0.05 and r['peak_mb'] > 0 for r in rows)  # train_s: 0.1 s steps
    v = check_file_to_model(rows, dict(file_to_model_s=1e6, file_to_model_peak_mb=1e6))
    assert v['csv']['ok'] and v['parquet']['ok']
    v = check_file_to_model([dict(rows[0], total_s=91.)], dict(file_to_model_s=90, file_to_model_peak_mb=1e6))
    assert not v['csv']['ok'] and v['csv']['seconds'] == 91.
