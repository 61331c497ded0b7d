"""New users known only by their features, on ML-100k: hold out 10% of the users entirely (seeded), train bayes_fm on the
rest (u.user and u.item as side features), save it, and run `collab-lessons evaluate --user-features` on the held-out
users' ratings. Prints the command's table; the data files are written to a temporary folder, never into the repository.

    python bench/coldstart_users.py --samples 512 --json-out bench/results/coldstart_users-DATE.json > bench/results/coldstart_users-DATE.txt"""
import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from collab_lessons.bayes_fm import ml100k_user_features
from collab_lessons.entry import main
from collab_lessons.model_files import save_trained
from collab_lessons.model_kinds import train_kind
from collab_lessons.own_ratings import load_ratings

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument('--samples', type=int, default=512, help='Gibbs sweeps (a fifth burn-in)')
p.add_argument('--rank', type=int, default=10)
p.add_argument('--share', type=float, default=0.1, help='share of the users held out')
p.add_argument('--seed', type=int, default=0, help='seed of the held-out users (training uses seed 42)')
p.add_argument('--json-out', metavar='PATH', help="also write the command's --json result here, with the run's settings")
a = p.parse_args()

ratings = load_ratings('ml-100k')
users = np.sort(ratings.user.unique())
new = np.random.default_rng(a.seed).choice(users, size=int(len(users) * a.share), replace=False)
known, held = ratings[~ratings.user.isin(new)], ratings[ratings.user.isin(new)]
start = time.perf_counter()
trained = train_kind('bayes_fm', known, None, 'cpu', ranks=[a.rank], n_samples=a.samples)
seconds = time.perf_counter() - start
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    save_trained(tmp/'fm.pt', trained, known, info=dict(dataset='ml-100k', split=f'{len(new)} users held out, seed {a.seed}'))
    held[['user', 'movie', 'rating']].to_csv(tmp/'new_users_ratings.csv', index=False)
    ml100k_user_features().to_csv(tmp/'users.csv', index=False)
    args = ['evaluate', '--model', str(tmp/'fm.pt'), '--test', str(tmp/'new_users_ratings.csv'), '--user-features', str(tmp/'users.csv'), '-q']
    out, as_json = io.StringIO(), io.StringIO()  # the command's table, as a user sees it, and its --json result
    with contextlib.redirect_stdout(out): code = main(args)
    with contextlib.redirect_stdout(as_json): main(args + ['--json'])
    text, result = out.getvalue().replace(str(tmp) + '/', ''), json.loads(as_json.getvalue())  # the temporary folder is gone: name the files only
print(f"bayes_fm on ML-100k with {len(new)} of {len(users)} users held out (seed {a.seed}): rank {a.rank}, {a.samples} sweeps "
      f"({a.samples // 5} burn-in), ids + implicit + u.user/u.item features; trained on {len(known):,} ratings in {seconds:.0f} s (one CPU thread).")
print(f"$ collab-lessons evaluate --model fm.pt --test new_users_ratings.csv --user-features users.csv   (exit {code})")
print(text, end='')
if a.json_out:
    settings = dict(held_out_users=len(new), users=len(users), seed=a.seed, rank=a.rank, n_samples=a.samples, train_ratings=len(known), train_seconds=round(seconds))
    Path(a.json_out).write_text(json.dumps(dict(settings=settings, new_users=result['new_users']), indent=1) + '\n')
sys.exit(code)
