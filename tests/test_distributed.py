"Data-parallel training under torchrun (gloo, CPU): two ranks against one process, two nodes, a killed rank, resuming, fastai's distrib_ctx."
import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from collab_lessons.entry import main
from collab_lessons.distributed import (broadcast_indices, fix_fastai_broadcast, fit_sharded, largest_replicated_rows, plan_rank, rank_files,
                                        write_shards)
from collab_lessons.launch import FAULT_ENV, _failure, _free_port, launch, torchrun_command, train_local, worker_args
from collab_lessons.scale import synthetic_ratings

RECIPE = dict(epochs=8, bs=256, n_factors=8, lr=5e-3, l2=0.1)  # 38 steps an epoch, near convergence: the batch order moves RMSE < 0.001
SHARDS = dict(parts=2)  # about 19 steps an epoch on 2 ranks: seconds
TIMEOUT = 120  # no job may hang a CI run
from fastai.distributed import DistributedDL
ORIGINAL_BROADCAST = DistributedDL._broadcast


@pytest.fixture(scope='module')
def ratings():
    "A small synthetic table whose `title` column labels two movie ids with one title: items are keyed by id, titles only label them."
    return synthetic_ratings(n_users=300, n_items=200, n_ratings=12_000, seed=0).assign(title=lambda d: 'Movie ' + (d.movie // 2).astype(str))


@pytest.fixture(scope='module')
def two_ranks(ratings, tmp_path_factory):
    "One uninterrupted 2-rank job that the other tests compare against; it also writes a model file."
    out = tmp_path_factory.mktemp('two_ranks')/'model.pt'
    return train_local(ratings, 2, out=out, checkpoint=out.with_name('model.pt.ckpt'), timeout=TIMEOUT, audit=True, **RECIPE)


@pytest.mark.slow
def test_two_ranks_match_one_process(ratings, two_ranks, tmp_path):
    one = fit_sharded(write_shards(ratings, tmp_path, **SHARDS), audit=True, **RECIPE)[2]
    assert abs(two_ranks['valid_rmse'] - one[-1]['valid_rmse']) < 0.005, (two_ranks['valid_rmse'], one[-1]['valid_rmse'])
    assert two_ranks['valid_rmse'] < 0.85  # it learned: predicting the mean scores about 1.1 on this table
    assert all(h['seen_once'] for h in two_ranks['history']) and all(h['seen_once'] for h in one)
    assert two_ranks['world_size'] == 2 and len(two_ranks['peak_mb_per_rank']) == 2


@pytest.mark.slow
def test_two_ranks_agree_and_save_a_model(ratings, two_ranks):
    from collab_lessons.model_files import load_model
    assert len(set(two_ranks['weight_sums'])) == 1  # both ranks hold the same weights at the end
    assert two_ranks['n_items'] == ratings.movie.nunique() > ratings.title.nunique()  # movies that share a title stay apart
    saved = load_model(two_ranks['model_file'])
    assert len(saved.users) == two_ranks['n_users'] + 1 and saved.info['world_size'] == 2  # '#na#' first, as in every model file
    assert saved.items[0] == saved.titles[0] == '#na#'
    assert all(t == f'Movie {int(i) // 2}' for i, t in zip(saved.items[1:], saved.titles[1:]))  # ids, labelled by their titles
    assert saved.info['n_train'] == int(12_000 * 0.8)  # rank 0 recorded every training rating of both shards,
    assert len(saved.seen) == 12_000 and len(torch.unique(saved.seen, dim=0)) == 12_000  # then every held-out one: never recommended


@pytest.mark.slow
def test_two_nodes_on_localhost(ratings, two_ranks, tmp_path):
    "Two torchrun processes of one rank each meet through c10d rendezvous, as two machines would."
    shards, result = write_shards(ratings, tmp_path/'shards', **SHARDS), tmp_path/'result.json'
    port, env = _free_port(), {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore'}
    args = worker_args(shards=shards, result=result, audit=True, **RECIPE)
    cmd = torchrun_command(1, args, nnodes=2, rdzv_endpoint=f'127.0.0.1:{port}', rdzv_id=f'test{port}')
    nodes = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try: outs = [n.communicate(timeout=TIMEOUT)[0] for n in nodes]
    finally:
        for n in nodes: n.kill()
    assert [n.returncode for n in nodes] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    res = json.loads(result.read_text())
    assert res['world_size'] == 2 and len(set(res['weight_sums'])) == 1 and all(h['seen_once'] for h in res['history'])
    assert abs(res['valid_rmse'] - two_ranks['valid_rmse']) < 1e-6  # same shards, same ranks: the same training


@pytest.mark.slow
def test_killed_rank_stops_the_job_and_resume_continues_it(ratings, tmp_path, capsys, monkeypatch):
    csv, out = tmp_path/'ratings.csv', tmp_path/'model.pt'
    ratings.drop(columns='title').to_csv(csv, index=False)
    cmd = ['train', '--nproc', '2', '--ratings', str(csv), '--out', str(out), '--epochs', '8', '--bs', '256', '--factors', '8',
           '--lr', '0.005', '--wd', '0.1', '--quiet']
    os.environ[FAULT_ENV] = '1:1:5'  # rank 1 kills itself (SIGKILL) at step 5 of the second epoch
    try: code = main(cmd)
    finally: del os.environ[FAULT_ENV]
    err = capsys.readouterr().err.strip()
    assert code == 8 and not out.exists()  # the job-failed exit code, documented in --help
    assert '\n' not in err and 'rank 1 was killed by SIGKILL' in err and 'holds epoch 1: rerun with --resume' in err, err
    ckpt = tmp_path/'model.pt.ckpt'
    assert torch.load(ckpt, weights_only=True)['epoch'] == 0  # the first epoch's checkpoint, whole
    assert not list(tmp_path.glob('.*.tmp'))  # no half-written file left behind
    # `--resume` hands the checkpoint to the same job (lesson 98 runs it to the end and compares); here only the hand-over
    seen = {}
    monkeypatch.setattr('collab_lessons.launch.train_local', lambda *a, **k: seen.update(args=a, **k) or dict(valid_rmse=0.7, valid_mae=0.5,
                        history=[dict(seconds=1.)], model_file=str(out)))
    assert main(cmd + ['--resume']) == 0
    assert seen['args'][3:5] == (ckpt, True) and seen['epochs'] == 8 and seen['l2'] == 0.1


def test_failure_message_names_the_rank_that_died():
    report = ["[rank0]: RuntimeError: [pair.cc:545] Read error [127.0.0.1]:8918: Connection reset by peer.",
              "Failures:", "[0]:", "  rank      : 0 (local_rank: 0)", "  exitcode  : 1 (pid: 11)",
              "Root Cause (first observed failure):", "[1]:", "  rank      : 1 (local_rank: 1)", "  exitcode  : -9 (pid: 12)"]
    msg = _failure(report, 2, 0, '/nowhere/ckpt')
    assert msg.startswith('rank 1 was killed by SIGKILL, so torchrun stopped all 2 ranks; no model was written') and 'no epoch had finished' in msg
    raised = ["[rank0]: ValueError: shards/ holds 1 train shard(s) but the job has 2 ranks", "  rank      : 0 (local_rank: 0)", "  exitcode  : 1 (pid: 11)"]
    assert _failure(raised, 2, 0, None).startswith('rank 0 exited with code 1 (ValueError: shards/ holds 1 train shard(s)')
    assert 'ran past 5 s' in _failure([], 2, 0, None, timeout=5)


@pytest.mark.slow
def test_torchrun_restart_resumes_to_the_same_result(ratings, two_ranks, tmp_path):
    ckpt = tmp_path/'ckpt'
    res = train_local(ratings, 2, checkpoint=ckpt, max_restarts=1, timeout=TIMEOUT, env={FAULT_ENV: '0:2:4'}, **RECIPE)
    assert abs(res['valid_rmse'] - two_ranks['valid_rmse']) < 1e-6 and len(res['history']) == 8


def test_fastai_broadcast_needs_the_fix(tmp_path):
    "fastai's `DistributedDL._broadcast` calls `.cuda()`: on a machine without CUDA it fails; `broadcast_indices` runs on gloo."
    import torch.distributed as dist
    from fastai.distributed import DistributedDL
    dist.init_process_group('gloo', store=dist.FileStore(str(tmp_path/'store'), 1), rank=0, world_size=1)
    try:
        if not torch.cuda.is_available():
            with pytest.raises(RuntimeError): DistributedDL._broadcast(None, [3, 1, 2], 0)
        assert broadcast_indices(None, [3, 1, 2], 0) == [3, 1, 2]
        fixed = fix_fastai_broadcast()
        assert fixed is DistributedDL and DistributedDL._broadcast is broadcast_indices
    finally:
        dist.destroy_process_group()
        DistributedDL._broadcast = ORIGINAL_BROADCAST  # leave fastai as other tests expect it


@pytest.mark.slow
def test_fastai_learner_on_two_ranks(ratings, tmp_path):
    data, result = tmp_path/'ratings.parquet', tmp_path/'result.json'
    ratings.to_parquet(data)
    launch(worker_args(fastai=data, result=result, epochs=1, n_factors=8, bs=256, lr=5e-3, l2=0.1, device='cpu'), 2, timeout=TIMEOUT)
    res = json.loads(result.read_text())
    assert res['world_size'] == 2 and len(res['ranks']) == 2
    assert len({r['weight_sum'] for r in res['ranks']}) == 1  # gradients were averaged: both ranks hold the same model
    assert len({r['valid_rmse'] for r in res['ranks']}) == 1 and math.isfinite(res['valid_rmse']) and res['valid_rmse'] < 1.5


def test_bad_options_fail_before_launching(tmp_path, capsys):
    assert main(['train', '--nproc', '2', '--model-kind', 'fastai_dot', '--out', str(tmp_path/'m.pt')]) == 2
    assert '--model-kind fast' in capsys.readouterr().err
    with pytest.raises(ValueError, match='1 train shard'):
        rank_files(write_shards(synthetic_ratings(50, 40, 500), tmp_path/'one', parts=1), 'train', 0, 2)


def test_nproc_must_be_a_positive_whole_number(capsys):
    with pytest.raises(SystemExit) as e: main(['train', '--nproc', '0'])
    assert e.value.code == 2 and 'argument --nproc: must be a whole number from 1 to 64' in capsys.readouterr().err


def test_plan_rank_counts_bytes_by_hand():
    p = plan_rank(1_000_000, 1000, 500, n_factors=9, ranks=2, bs=100, bandwidth=1e6)
    assert math.isclose(p['tables_gb'] * 1e9, 1500 * 10 * 4) and math.isclose(p['memory_gb'], 4 * p['tables_gb'] + 1e7 / 1e9)
    assert math.isclose(p['dense_mb'] * 1e6, 60_000)          # ring: 2 (R-1)/R of the float32 table
    assert math.isclose(p['sparse_mb'] * 1e6, 100 * (40 + 8))  # × 2 rows per rating × local batch 50 × (values + index)
    assert math.isclose(p['dense_ms'], 60.0)                   # 60 kB at 1 MB/s
    s = plan_rank(1_000_000, 1000, 500, n_factors=9, ranks=2, bs=100, sharded=True)
    assert math.isclose(s['tables_gb'], p['tables_gb'] / 2) and 'dense_mb' not in s and s['alltoall_mb'] > 0
    assert largest_replicated_rows(80, 64) * 16 * 65 == pytest.approx(80e9)


def test_distributed_rows_reach_the_benchmark_markdown():
    from collab_lessons.bench_report import format_markdown
    from collab_lessons.bench_report import format_distributed
    rows = [dict(n_ratings=5_000_000, config='2 ranks × 1 thread', grads='dense', s_per_epoch=45.1, epoch_x=2.93, allreduce_share=0.57,
                 peak_mb_per_rank=1064., valid_rmse=0.7106)]
    table = format_distributed(rows)
    assert '| 5,000,000 | 2 ranks × 1 thread | dense | 45.1 | 2.93 | 57% | 1064 | 0.7106 |' in table
    report = dict(table={'u1-test': {}}, date='d', repeats=1, threads=1, machine=dict(cpus=2), distributed=rows)
    assert table.strip() in format_markdown(report)
