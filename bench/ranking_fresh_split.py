"""A check on a split that no design decision looked at: ML-100k stratified 75/25 per user with seeds 43 and 44 (the
ranking benchmark uses 42), our `ease`, `ease_ials` and `popularity` trained through `train_kind` as `collab-lessons train`
does, every choice on carve-outs of the training part, scored by the benchmark's code (full ranking, k = 10).

    OMP_NUM_THREADS=1 python bench/ranking_fresh_split.py > bench/results/ranking_fresh_split-DATE.txt"""
import datetime

import collab_lessons.bench_ranking as br
from collab_lessons.splits import stratified_split

print(f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}: ML-100k, stratified 75/25 per user, k = 10")
print('seed  model       ndcg@10  precision@10  fit_s')
for seed in (43, 44):
    br.PROTOCOLS['ml-100k'] = (f'stratified 75/25 per user, seed {seed}', lambda r, s=seed: stratified_split(r, 0.75, s))
    for row in br.run_dataset('ml-100k', peers={}, kinds=('popularity', 'ease', 'ease_ials'), progress=lambda r: None):
        print(f"{seed:>4}  {row['model']:<10}  {row['ndcg@10']:7.4f}  {row['precision@10']:12.4f}  {row['fit_s']:5.1f}", flush=True)
