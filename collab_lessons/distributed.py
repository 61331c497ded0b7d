import argparse
import json
import os
import re
import signal
import subprocess
import threading
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from .fast import FastDotProductBias, encode_ids
from .measure import rss_mb
from .ratings import DataError
from .splits import random_split_index


def pick_device(device=None): # 'cpu', 'cuda', 'cuda:1' or a `torch.device`; `None`: CUDA when available, else the CPU
    "`device` as a `torch.device`: the one given, else CUDA when it is available (as fastai picks), else the CPU."
    if device is None: device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return torch.device(device)


def write_shards(ratings, # DataFrame of ratings
                 folder, # where the Parquet shards go (created if missing)
                 parts=2, # number of training (and validation) shards; at least the number of ranks that will read them
                 valid_pct=0.2, seed=42, # the seeded random validation share, as `fast_loaders` holds out
                 user_name='user', item_name='movie', rating_name='rating'): # column names in `ratings`
    "Hold out a seeded validation share of `ratings`, deal both sides at random into `parts` Parquet shards in `folder`; return `folder`."
    if parts < 1: raise ValueError(f"parts={parts}: write at least one shard.")
    missing = [c for c in (user_name, item_name, rating_name) if c not in ratings.columns]
    if missing: raise DataError(f"ratings has no column(s) {missing}; it has {list(ratings.columns)}. Pass the column names.")
    table = pd.DataFrame(dict(user=ratings[user_name].to_numpy(), item=ratings[item_name].to_numpy(),
                              rating=ratings[rating_name].to_numpy(dtype=np.float32)))
    train_idx, valid_idx = random_split_index(len(table), valid_pct, seed)
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob('*-*.parquet'): old.unlink()
    for kind, idx in (('train', train_idx), ('valid', valid_idx)):
        side = table.iloc[idx].reset_index(drop=True).assign(row=np.arange(len(idx)))  # `row`: the rating's number on its side
        order = np.random.default_rng(seed).permutation(len(side))
        for part, rows in enumerate(np.array_split(order, parts)):
            side.iloc[np.sort(rows)].to_parquet(folder/f'{kind}-{part:03d}.parquet', index=False)
    return folder


def rank_files(folder, # a folder written by `write_shards`
               kind, # 'train' or 'valid'
               rank, world_size): # this process's rank and the number of ranks
    "The `kind` shard files of `folder` that rank `rank` reads: every `world_size`-th one, starting at its own."
    files = sorted(Path(folder).glob(f'{kind}-*.parquet'))
    if not files: raise DataError(f"{folder} holds no {kind}-*.parquet shards: write them with `write_shards` first.")
    if len(files) < world_size:
        raise ValueError(f"{folder} holds {len(files)} {kind} shard(s) but the job has {world_size} ranks: "
                         f"write at least {world_size} shards (`write_shards(..., parts={world_size})`).")
    return files[rank::world_size]

def read_shard(files): # Parquet files of one rank
    "The ratings of `files` in one DataFrame (`user`, `item`, `rating`, `row`)."
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _world():
    "This process's rank and the number of ranks (0 and 1 outside a process group)."
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)

def shared_vocab(*columns): # arrays of ids this rank holds
    "Sorted distinct ids across every rank: each rank sends its own distinct ids, every rank keeps the union, so all agree."
    local = np.unique(np.concatenate([np.asarray(c) for c in columns]))
    if _world()[1] == 1: return local
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, local)
    return np.unique(np.concatenate(parts))

def encode_shard(shard, classes, device):
    "The `(n, 2)` codes and `(n,)` ratings of `shard` against the shared `classes`, on `device`."
    x = torch.stack([encode_ids(shard[c].to_numpy(), classes[c], c)[0] for c in ('user', 'item')], 1)  # (n, 2)
    return x.to(device), torch.from_numpy(shard.rating.to_numpy(dtype=np.float32)).to(device)


def epoch_batches(n, # rows in this rank's shard
                  steps, # batches every rank takes this epoch (the same on all ranks)
                  seed, epoch, rank): # the shared seed, the epoch and this rank
    "This rank's batches for `epoch`: a permutation of `range(n)` drawn from (`seed`, `epoch`, `rank`), cut into `steps` near-equal parts."
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 1_009 + rank)
    return torch.tensor_split(torch.randperm(n, generator=gen), steps)

def steps_per_epoch(n_local, bs): # this rank's rows and the global batch size
    "Batches per epoch, agreed by all ranks: enough that the largest shard's batches hold about `bs / world_size` rows."
    world = _world()[1]
    most = torch.tensor([n_local])
    if world > 1: dist.all_reduce(most, op=dist.ReduceOp.MAX)
    return max(1, -(-int(most) * world // bs))


def average_grads(model):
    "All-reduce (sum) every gradient of `model` across ranks and divide by the number of ranks; sparse gradients stay sparse. Returns the seconds it took."
    world = _world()[1]
    if world == 1: return 0.
    start = time.perf_counter()
    for p in model.parameters():
        if p.grad is None: continue
        if p.grad.is_sparse: p.grad = p.grad.coalesce()  # one entry per row before sending
        dist.all_reduce(p.grad)
        p.grad.mul_(1 / world)
    return time.perf_counter() - start


def sharded_model(n_users, n_items, n_factors=50, y_range=(0, 5.5), sparse=False, seed=42, device='cpu'):
    "A `FastDotProductBias` seeded by `seed` (the same weights on every rank), with sparse embedding gradients if `sparse`."
    torch.manual_seed(seed)
    model = FastDotProductBias(n_users, n_items, n_factors, y_range).to(device)
    for emb in model.children(): emb.sparse = sparse
    if _world()[1] > 1:
        for p in model.parameters(): dist.broadcast(p.data, 0)  # rank 0's weights everywhere, as DDP does
    return model

def make_optimizer(model, lr, total_steps, sparse):
    "Adam (`SparseAdam` for sparse gradients) with a one-cycle schedule over `total_steps`, as `fit_fast` trains."
    opt = torch.optim.SparseAdam(model.parameters(), lr=lr) if sparse else torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps)


def train_epoch(model, opt, sched, x, y, # model, optimiser, schedule, this rank's codes and ratings
                batches, # this epoch's row batches from `epoch_batches`
                l2=0.1, # weight of the per-example L2 `penalty`
                fault=None): # `(step, action)`: call `action()` before that step (to test failures)
    "One epoch of data-parallel training on this rank's shard; returns the seconds spent and the seconds in all-reduce."
    start, comm = time.perf_counter(), 0.
    for step, idx in enumerate(batches):
        if fault and step == fault[0]: fault[1]()
        xb, yb = x[idx], y[idx]
        loss = ((model(xb) - yb)**2).mean() + l2 * model.penalty(xb)
        opt.zero_grad(); loss.backward()
        comm += average_grads(model)
        opt.step(); sched.step()
    return dict(seconds=time.perf_counter() - start, allreduce_s=comm)


def score_sharded(model, x, y): # the model and this rank's validation codes and ratings
    "Validation RMSE and MAE over every rank's share: each rank sums its squared and absolute errors, an all-reduce adds them."
    with torch.no_grad():
        err = (torch.cat([model(x[i:i + 65536]) for i in range(0, len(y), 65536)]) - y).double() if len(y) else torch.zeros(0, dtype=torch.float64)
        sums = torch.stack([err.pow(2).sum(), err.abs().sum(), torch.tensor(float(len(y)), dtype=torch.float64)])
    if _world()[1] > 1: dist.all_reduce(sums)
    return dict(rmse=(sums[0] / sums[2]).sqrt().item(), mae=(sums[1] / sums[2]).item())

def seen_once(rows, n): # the `row` numbers of this rank's shard visited this epoch, and the training set's size
    "Whether every training rating was visited exactly once this epoch across all ranks (an all-reduced count per rating)."
    counts = torch.bincount(rows, minlength=n)
    if _world()[1] > 1: dist.all_reduce(counts)
    return bool((counts == 1).all())


def save_checkpoint(path, model, opt, sched, epoch, history, config):
    "Write the training state after `epoch` to `path` atomically (a crash leaves the previous checkpoint whole)."
    from .model_files import atomic_save  # imported here: it pulls in fastai, which the ranks need only to save
    atomic_save(dict(epoch=epoch, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(),
                     history=history, config=config), path)

def load_checkpoint(path, model, opt, sched, config):
    "Restore `model`, `opt` and `sched` from the checkpoint at `path`; return its last finished epoch and history."
    ck = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    diff = {k: (ck['config'].get(k), v) for k, v in config.items() if ck['config'].get(k) != v}
    if diff: raise ValueError(f"{path} was written by a run with other settings ({diff}, as (checkpoint, now)): "
                              "resume with the same options, or delete the checkpoint to start over.")
    model.load_state_dict(ck['model']); opt.load_state_dict(ck['opt']); sched.load_state_dict(ck['sched'])
    return ck['epoch'], ck['history']


def fit_sharded(shards, # folder of Parquet shards from `write_shards`
                epochs=4, lr=1e-2, l2=0.1, # one-cycle length, peak learning rate, per-example L2 weight (as `fit_fast`)
                bs=8192, # global batch size: each of R ranks takes about `bs / R` rows a step
                n_factors=50, sparse=False, seed=42, # factors; sparse gradients (SparseAdam) or dense (AdamW); shared seed
                device=None, # `None`: CUDA when available, else the CPU
                checkpoint=None, resume=False, # checkpoint file written by rank 0 after each epoch; start from it?
                fault=None, # `(epoch, step, action)`: call `action()` before that step (to test failures)
                audit=False, # also check that every training rating is visited exactly once per epoch
                log=None): # called by rank 0 with one line per epoch
    "Data-parallel training of a `FastDotProductBias` on this rank's shards; returns the model, the vocabulary and one record per epoch."
    rank, world = _world()
    device = pick_device(device)
    train, valid = (read_shard(rank_files(shards, kind, rank, world)) for kind in ('train', 'valid'))
    classes = {c: shared_vocab(train[c], valid[c]) for c in ('user', 'item')}
    (x, y), (vx, vy) = encode_shard(train, classes, device), encode_shard(valid, classes, device)
    steps = steps_per_epoch(len(y), bs)
    model = sharded_model(len(classes['user']), len(classes['item']), n_factors, sparse=sparse, seed=seed, device=device)
    opt, sched = make_optimizer(model, lr, epochs * steps, sparse)
    config = dict(epochs=epochs, lr=lr, l2=l2, bs=bs, n_factors=n_factors, sparse=sparse, seed=seed, world_size=world,
                  n_users=len(classes['user']), n_items=len(classes['item']))
    first, history = 0, []
    if resume and checkpoint and Path(checkpoint).exists():
        last, history = load_checkpoint(checkpoint, model, opt, sched, config)
        first = last + 1
        if log: log(f"resumed from {checkpoint} after epoch {last + 1}/{epochs}")
    rows = torch.from_numpy(train.row.to_numpy())
    for epoch in range(first, epochs):
        batches = epoch_batches(len(y), steps, seed, epoch, rank)
        hook = fault[1:] if fault and fault[0] == epoch else None
        record = dict(epoch=epoch, **train_epoch(model, opt, sched, x, y, batches, l2, hook))
        record.update({f'valid_{k}': v for k, v in score_sharded(model, vx, vy).items()}, peak_mb=rss_mb('VmHWM'))
        if audit: record['seen_once'] = seen_once(rows[torch.cat(batches)], _total(len(y)))
        history.append(record)
        if rank == 0 and checkpoint: save_checkpoint(checkpoint, model, opt, sched, epoch, history, config)
        if log: log(f"epoch {epoch + 1}/{epochs}: valid RMSE {record['valid_rmse']:.4f}, {record['seconds']:.1f} s "
                    f"({record['allreduce_s']:.1f} s all-reduce), peak {record['peak_mb']:.0f} MB")
    return model, classes, history

def _total(n):
    "The sum of `n` over all ranks."
    t = torch.tensor([n])
    if _world()[1] > 1: dist.all_reduce(t)
    return int(t)


def save_fast_model(path, model, classes, seen=None, info=None):
    "Save a trained `FastDotProductBias` as a course model file (a `DotProductBias` with the same weights) atomically; return `path`."
    from .bias import DotProductBias  # imported here: these pull in fastai, which only rank 0 needs, once, at the end
    from .model_files import save_model
    course = DotProductBias(len(classes['user']), len(classes['item']), model.user_factors.weight.shape[1], model.y_range)
    course.load_state_dict({'user_factors.weight': model.user_factors.weight, 'user_bias.weight': model.user_bias.weight,
                            'movie_factors.weight': model.item_factors.weight, 'movie_bias.weight': model.item_bias.weight})
    seen = None if seen is None else seen.rename(columns={'item': 'title'})
    return save_model(path, course.cpu(), list(classes['user']), list(classes['item']), seen, info)

def gather_frames(df):
    "`df` of every rank, concatenated (rank 0 first); `df` itself outside a process group."
    if _world()[1] == 1: return df
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, df)
    return pd.concat(parts, ignore_index=True)


def broadcast_indices(self, t, rank):
    "`DistributedDL._broadcast` that moves the indices to the GPU only for NCCL (which needs CUDA tensors), not for gloo on a CPU."
    t = torch.LongTensor(t)
    if dist.get_backend() == 'nccl': t = t.cuda()
    dist.broadcast(t, rank)
    return t.tolist()

def fix_fastai_broadcast():
    "Make fastai's `DistributedDL` broadcast with `broadcast_indices`, so `learn.distrib_ctx(cpu=True)` trains on CPUs; return the class."
    from fastai.distributed import DistributedDL
    DistributedDL._broadcast = broadcast_indices
    return DistributedDL

def fit_fastai(ratings, epochs=2, lr=5e-3, wd=0.1, n_factors=50, bs=64, seed=42, device=None):
    "Train the course `Learner` on `ratings` inside `learn.distrib_ctx` (every rank holds all ratings; fastai splits each batch); return it."
    from .course import course_learner, fit_learner
    from .splits import collab_dls
    fix_fastai_broadcast()
    item = 'title' if 'title' in ratings.columns else 'movie'
    learn = course_learner(collab_dls(ratings, item_name=item, bs=bs, seed=seed, device=pick_device(device)), n_factors=n_factors)
    with learn.distrib_ctx(cpu=pick_device(device).type == 'cpu'): fit_learner(learn, epochs, lr, wd)
    return learn


def _worker_parser():
    "The options of one rank, `python -m collab_lessons.distributed` (torchrun starts it once per rank)."
    p = argparse.ArgumentParser(prog='python -m collab_lessons.distributed', description='One rank of a data-parallel training job; start it with torchrun.')
    p.add_argument('--shards', help='folder of Parquet shards from write_shards (the fast model)')
    p.add_argument('--fastai', metavar='PATH', help="train the course Learner on this Parquet file of ratings instead, with fastai's distrib_ctx")
    p.add_argument('--out', help='model file that rank 0 writes at the end')
    p.add_argument('--result', help='JSON summary that rank 0 writes at the end')
    p.add_argument('--checkpoint', help='checkpoint file that rank 0 writes after every epoch')
    p.add_argument('--resume', action='store_true', help='start from --checkpoint if it exists (always so after a torchrun restart)')
    for name, kind, default in (('epochs', int, 4), ('lr', float, 1e-2), ('l2', float, 0.1), ('bs', int, 8192),
                                ('n-factors', int, 50), ('seed', int, 42), ('threads', int, 1), ('timeout', float, 300)):
        p.add_argument(f'--{name}', type=kind, default=default)
    p.add_argument('--sparse', action='store_true', help='sparse embedding gradients (SparseAdam) instead of dense (AdamW)')
    p.add_argument('--audit', action='store_true', help='check that every training rating is visited once per epoch')
    p.add_argument('--device', help="'cpu' or 'cuda' (default: CUDA when available)")
    return p

FAULT_ENV = 'COLLAB_LESSONS_FAULT'

def _fault(rank):
    "`(epoch, step, kill)` from `COLLAB_LESSONS_FAULT=rank:epoch:step` for this rank on a job's first attempt, else `None`."
    spec = os.environ.get(FAULT_ENV)
    if not spec or os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') != '0': return None
    r, epoch, step = map(int, spec.split(':'))
    return (epoch, step, lambda: os.kill(os.getpid(), signal.SIGKILL)) if r == rank else None

def _run_fast(args, rank, log):
    "Train on the shards with `fit_sharded`; rank 0 writes the model and the summary."
    restarted = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') != '0'
    model, classes, history = fit_sharded(args.shards, args.epochs, args.lr, args.l2, args.bs, args.n_factors, args.sparse, args.seed,
                                          args.device, args.checkpoint, args.resume or restarted, _fault(rank), args.audit, log)
    ranks = gather_frames(pd.DataFrame(dict(peak_mb=[rss_mb('VmHWM')], weight_sum=[sum(p.double().sum().item() for p in model.parameters())])))
    seen = gather_frames(read_shard(rank_files(args.shards, 'train', rank, _world()[1]))[['user', 'item']]) if args.out else None
    last = history[-1]
    summary = dict(world_size=_world()[1], epochs=args.epochs, sparse=args.sparse, n_users=len(classes['user']), n_items=len(classes['item']),
                   valid_rmse=last['valid_rmse'], valid_mae=last['valid_mae'], peak_mb_per_rank=ranks.peak_mb.tolist(),
                   weight_sums=ranks.weight_sum.tolist(), history=history)
    if rank == 0 and args.out:
        info = {k: summary[k] for k in ('world_size', 'epochs', 'valid_rmse', 'valid_mae')}
        summary['model_file'] = str(save_fast_model(args.out, model, classes, seen, info))
    return summary

def _run_fastai(args, rank, log):
    "Train the course `Learner` with fastai's `distrib_ctx`; every rank reports its validation RMSE and a checksum of its weights."
    learn = fit_fastai(pd.read_parquet(args.fastai), args.epochs, args.lr, args.l2, args.n_factors, args.bs, args.seed, args.device)
    ranks = gather_frames(pd.DataFrame(dict(rank=[rank], valid_rmse=[float(learn.recorder.values[-1][2])],
                                            weight_sum=[sum(p.double().sum().item() for p in learn.model.parameters())])))
    if log: log(f"fastai: {args.epochs} epoch(s), valid RMSE {ranks.valid_rmse[0]:.4f} on every rank: {ranks.valid_rmse.nunique() == 1}")
    return dict(world_size=_world()[1], fastai=True, valid_rmse=float(ranks.valid_rmse[0]), ranks=ranks.to_dict(orient='records'))

def worker(argv=None):
    "One rank: join the process group torchrun describes (gloo on CPUs, NCCL on GPUs), train, and leave it."
    args = _worker_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # torchrun stops the others with SIGTERM: clean up on the way out
    cuda = pick_device(args.device).type == 'cuda'
    if cuda: torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    store, rank, world = next(dist.rendezvous('env://'))
    attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')  # a restarted job must not read the addresses of the last attempt
    dist.init_process_group('nccl' if cuda else 'gloo', store=dist.PrefixStore(f'attempt{attempt}/', store), rank=rank,
                            world_size=world, timeout=timedelta(seconds=args.timeout))
    try:
        rank = dist.get_rank()
        log = (lambda line: print(line, file=sys.stderr, flush=True)) if rank == 0 else None
        summary = _run_fastai(args, rank, log) if args.fastai else _run_fast(args, rank, log)
        if rank == 0 and args.result:
            from .model_files import atomic_write
            atomic_write(args.result, lambda f: f.write(json.dumps(summary, default=float).encode()))
        dist.barrier()  # no rank leaves while another still talks to it
    finally: dist.destroy_process_group()


class WorkerFailedError(RuntimeError):
    "A rank of a distributed job died or failed, so torchrun stopped the job; the message names the rank and the checkpoint to resume from."

def _free_port():
    "A TCP port on 127.0.0.1 that nothing listens on right now."
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def torchrun_command(nproc=2, # ranks on this machine
                     worker_args=(), # options of `python -m collab_lessons.distributed`
                     max_restarts=0, # how often torchrun restarts the whole job after a rank fails
                     nnodes=1, rdzv_endpoint=None, rdzv_id='collab'): # machines, and where they meet (c10d rendezvous); `None`: this machine alone
    "The `torchrun` command line (as `python -m torch.distributed.run`) for a job of `nnodes` machines with `nproc` ranks each."
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', str(nproc), '--max-restarts', str(max_restarts)]
    if rdzv_endpoint is None: cmd += ['--standalone']
    else: cmd += ['--nnodes', str(nnodes), '--rdzv-backend', 'c10d', '--rdzv-endpoint', rdzv_endpoint, '--rdzv-id', rdzv_id]
    return cmd + ['-m', 'collab_lessons.distributed', *map(str, worker_args)]

def worker_args(**opts):
    "`opts` as command-line options of the worker: `n_factors=8` → `--n-factors 8`, `sparse=True` → `--sparse`; `None` and `False` are left out."
    out = []
    for k, v in opts.items():
        if v is None or v is False: continue
        out += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return out

def _why(lines):
    "The rank that stopped the job and how (its signal or exit code, and its error), from torchrun's report."
    text = '\n'.join(lines)
    entries = [tuple(map(int, m)) for m in re.findall(r'rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-?\d+)', text)]
    if not entries: return 'a rank failed'
    killed = sorted((e for e in entries if e[1] < 0 and e[1] != -signal.SIGTERM), key=lambda e: e[1] != -signal.SIGKILL)
    rank, code = (killed or entries)[0]  # a signal torchrun did not send itself is the cause; SIGTERM is how it stops the others
    raised = [(kind, msg) for r, kind, msg in re.findall(r'^\[rank(\d+)\]:\s*(\w+(?:Error|Exception)): (.*)$', text, re.M)
              if int(r) == rank and 'by peer' not in msg]
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    return f"rank {rank} {how}" + (f" ({raised[-1][0]}: {raised[-1][1]})" if raised else '')

def launch(worker_args, # from `worker_args(...)`: what each rank runs
           nproc=2, max_restarts=0, # ranks, and restarts torchrun may make after a failure
           threads=1, # torch threads per rank
           checkpoint=None, # the job's checkpoint file, named in the error if a rank fails
           timeout=None, # seconds before the whole job is killed; `None`: no limit
           log=None, # called with each progress line of rank 0
           env=None, **torchrun): # extra environment variables; `nnodes`, `rdzv_endpoint`, `rdzv_id` for `torchrun_command`
    "Run a torchrun job on this machine and wait for it; `WorkerFailedError` with a one-line reason if a rank fails."
    cmd = torchrun_command(nproc, worker_args, max_restarts, **torchrun)
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'PYTHONWARNINGS': 'ignore', **(env or {})}
    proc = subprocess.Popen(cmd + ['--threads', str(threads)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    late = []  # set when the timer had to stop the job
    timer = threading.Timer(timeout, lambda: late.append(os.killpg(proc.pid, signal.SIGKILL))) if timeout else None
    if timer: timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if log and re.match(r'(epoch \d|resumed from|fastai:)', line): log(line.rstrip())
        rc = proc.wait()
    finally:
        if timer: timer.cancel()
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    if rc: raise WorkerFailedError(_failure(lines, nproc, max_restarts, checkpoint, timeout if late else None))
    return lines

def _failure(lines, nproc, max_restarts, checkpoint, timeout=None):
    "The one-line message of a failed job (`timeout`: the seconds after which it was stopped, if it was)."
    if timeout: return f"the job ran past {timeout} s and was stopped; no model was written"
    restarts = f" after {max_restarts} restart(s)" if max_restarts else ''
    saved = ''
    if checkpoint and Path(checkpoint).exists():
        epoch = torch.load(checkpoint, map_location='cpu', weights_only=True)['epoch']
        saved = f"; the checkpoint {checkpoint} holds epoch {epoch + 1}: rerun with --resume to continue from it"
    elif checkpoint: saved = "; no epoch had finished, so there is no checkpoint: run again"
    return f"{_why(lines)}, so torchrun stopped all {nproc} ranks{restarts}; no model was written{saved}"


def train_local(ratings, # DataFrame of ratings
                nproc=2, # ranks on this machine
                out=None, # model file rank 0 writes; `None`: none
                checkpoint=None, resume=False, # checkpoint file after each epoch; start from it?
                item_name='movie', seed=42, # column that names the item; seed of the split, the shards and the model
                max_restarts=0, threads=1, timeout=None, log=None, env=None, # see `launch`
                **opts): # training options of `fit_sharded`: `epochs`, `lr`, `l2`, `bs`, `n_factors`, `sparse`, `audit`, `device`
    "Shard `ratings` into a temporary folder and train on `nproc` ranks of this machine with torchrun; return rank 0's summary."
    import tempfile
    with tempfile.TemporaryDirectory(prefix='collab_shards_') as d:
        write_shards(ratings, Path(d)/'shards', nproc, seed=seed, item_name=item_name)
        result = Path(d)/'result.json'
        args = worker_args(shards=Path(d)/'shards', out=out, result=result, checkpoint=checkpoint, resume=resume, seed=seed, **opts)
        launch(args, nproc, max_restarts, threads, checkpoint, timeout, log, env)
        return json.loads(result.read_text())

def train_command(args, # parsed options of `collab-lessons train` with `--nproc N`
                  log=None): # called with progress lines
    "`collab-lessons train --nproc N`: the fast model on N local ranks (torchrun, gloo), checkpoints beside `--out`; returns the summary."
    from .model_files import check_output_file
    from .ratings import load_ratings
    if args.split != 'random': raise ValueError(f"--nproc trains on a random split: use --split random, not --split {args.split}.")
    if args.model_kind != 'bias': raise ValueError(f"--nproc trains the fast dot-product model with biases: use --model-kind bias, not {args.model_kind}.")
    nproc = args.nproc or 1
    if not 1 <= nproc <= 64: raise ValueError(f"--nproc must be a whole number from 1 to 64, not {nproc}.")
    out = check_output_file(args.out)
    ratings = (load_ratings(args.ratings, items=args.items, user=args.user_col, item=args.item_col, rating=args.rating_col)
               if args.ratings else load_ratings(args.dataset))
    item = 'title' if 'title' in ratings.columns else 'movie'
    if log: log(f"Training on {len(ratings):,} ratings with {nproc} rank(s) ...")
    result = train_local(ratings, nproc, out, out.with_name(out.name + '.ckpt'), args.resume, item, args.seed, log=log,
                         epochs=args.epochs, lr=args.lr, l2=args.wd, bs=args.bs, n_factors=args.factors)
    return dict(model='FastDotProductBias', ranks=nproc, dataset=str(args.ratings or args.dataset), epochs=args.epochs,
                valid_rmse=result['valid_rmse'], valid_mae=result['valid_mae'], seconds=round(sum(h['seconds'] for h in result['history']), 1),
                model_file=str(Path(result['model_file']).resolve()))


if __name__ == '__main__' and getattr(globals().get('__spec__'), 'name', '') == 'collab_lessons.distributed': worker()
