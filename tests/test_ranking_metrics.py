"Ranking metrics (collab_lessons.ranking): hand-worked examples, a plain-Python oracle, agreement with ranx, and planted bugs that the checks catch."
import math

import numpy as np
import pytest
import torch

from collab_lessons import ranking
from collab_lessons.ranking import METRICS, pairs_by_user, rank_metrics, user_item_mask, user_metrics


def random_case(seed, n_users=15, n_items=40, n_seen=150, n_rel=90):
    "Continuous random scores (no ties), random training pairs and held-out pairs that do not overlap them."
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n_users, n_items, generator=g, dtype=torch.float64)
    pairs = torch.stack([torch.randint(0, n_users, (n_seen + n_rel,), generator=g), torch.randint(0, n_items, (n_seen + n_rel,), generator=g)], 1)
    pairs = torch.unique(pairs, dim=0)
    pairs = pairs[torch.randperm(len(pairs), generator=g)]
    return scores, pairs[:n_seen], pairs[n_seen:]


def oracle(scores, seen, relevant, k, exclude=()):
    "Plain-Python per-user metrics, written from the definitions without the library."
    seen_set = {tuple(p) for p in seen.tolist()}
    rel = {}
    for u, i in relevant.tolist(): rel.setdefault(u, set()).add(i)
    out = {}
    for u, items in rel.items():
        cands = [i for i in range(scores.shape[1]) if (u, i) not in seen_set and i not in exclude]
        ranked = sorted(cands, key=lambda i: -float(scores[u, i]))[:k]
        hits = [i in items for i in ranked]
        n_hit, first = sum(hits), next((j + 1 for j, h in enumerate(hits) if h), None)
        ap = sum(sum(hits[:j + 1]) / (j + 1) for j, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(items))))
        out[u] = dict(precision=n_hit / k, recall=n_hit / len(items), ndcg=sum(h / math.log2(j + 2) for j, h in enumerate(hits)) / idcg,
                      map=ap / min(k, len(items)), hit_rate=float(n_hit > 0), mrr=1 / first if first else 0.)
    return out


def test_hand_worked_list():
    # ranks 1..5: hit, miss, hit, miss, hit; 4 relevant items in all
    m = user_metrics(torch.tensor([[1, 0, 1, 0, 1]], dtype=torch.bool), torch.tensor([4]))
    assert m['precision'].item() == pytest.approx(3 / 5)
    assert m['recall'].item() == pytest.approx(3 / 4)
    assert m['map'].item() == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    dcg, idcg = 1 + 1 / math.log2(4) + 1 / math.log2(6), sum(1 / math.log2(j + 1) for j in range(1, 5))
    assert m['ndcg'].item() == pytest.approx(dcg / idcg)
    assert m['hit_rate'].item() == 1 and m['mrr'].item() == 1
    late = user_metrics(torch.tensor([[0, 0, 1]], dtype=torch.bool), torch.tensor([1]))
    assert late['mrr'].item() == pytest.approx(1 / 3) and late['map'].item() == pytest.approx(1 / 3)
    assert late['ndcg'].item() == pytest.approx(1 / math.log2(4))
    none = user_metrics(torch.zeros(1, 3, dtype=torch.bool), torch.tensor([2]))
    assert all(v.item() == 0 for v in none.values())


def test_map_denominators():
    # one hit at rank 1 of k=2, 5 relevant: min(k, |R|) = 2 vs |R| = 5
    hits = torch.tensor([[True, False]])
    assert user_metrics(hits, torch.tensor([5]))['map'].item() == pytest.approx(1 / 2)
    assert user_metrics(hits, torch.tensor([5]), ap_denominator='all')['map'].item() == pytest.approx(1 / 5)
    perfect = user_metrics(torch.ones(1, 3, dtype=torch.bool), torch.tensor([7]))
    assert perfect['map'].item() == 1 and perfect['ndcg'].item() == pytest.approx(1)


def test_csr_mask_matches_pairs():
    _, seen, _ = random_case(0)
    mask = user_item_mask(pairs_by_user(seen, 15), torch.arange(15), 40)
    assert mask.sum() == len(seen) and mask[seen[:, 0], seen[:, 1]].all()
    users = torch.tensor([4, 1, 4])  # any order, repeats allowed
    assert torch.equal(user_item_mask(pairs_by_user(seen, 15), users, 40), mask[users])


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('k', [1, 5, 10])
def test_matches_a_plain_python_oracle(seed, k):
    scores, seen, relevant = random_case(seed)
    res, each = rank_metrics(scores, seen, relevant, 15, 40, k=k, exclude_items=[0], chunk=4, per_user=True)
    want = oracle(scores, seen, relevant, k, exclude=(0,))
    assert each['users'].tolist() == sorted(want)
    for m in METRICS:
        assert np.allclose(each[m].numpy(), [want[u][m] for u in sorted(want)], atol=1e-9), m
    assert res['skipped'] == len(set(seen[:, 0].tolist()) - set(relevant[:, 0].tolist()))


def test_scorer_function_chunks_and_matrix_agree():
    scores, seen, relevant = random_case(3)
    a = rank_metrics(scores, seen, relevant, 15, 40, k=5)
    calls = []
    b = rank_metrics(lambda u: calls.append(len(u)) or scores[u], seen, relevant, 15, 40, k=5, chunk=4)
    assert a == b and max(calls) <= 4


def test_fewer_candidates_than_k():
    # 4 items, user 0 saw 2: only 2 candidates for a list of 5; precision still divides by k
    res = rank_metrics(torch.tensor([[.1, .2, .3, .4]]), torch.tensor([[0, 3], [0, 2]]), torch.tensor([[0, 1]]), 1, 4, k=5)
    assert res['precision@5'] == pytest.approx(1 / 5) and res['recall@5'] == 1 and res['coverage@5'] == pytest.approx(2 / 4)
    assert res['mrr@5'] == 1  # item 1 (score .2) beats item 0 (score .1)


def test_users_argument_and_skipped_count():
    scores, seen, relevant = random_case(4)
    with_rel = sorted(set(relevant[:, 0].tolist()))
    res = rank_metrics(scores, seen, relevant, 15, 40, users=with_rel[:3] + [99 % 15 if 99 % 15 not in with_rel else 14], k=3)
    assert res['users'] + res['skipped'] == 4


def test_seen_items_never_listed():
    scores, seen, relevant = random_case(5)
    boosted = scores.clone()
    boosted[seen[:, 0], seen[:, 1]] += 10  # seen items score highest: they must still be left out
    assert rank_metrics(boosted, seen, relevant, 15, 40, k=5) == rank_metrics(scores, seen, relevant, 15, 40, k=5)


def test_nan_scores_refused():
    with pytest.raises(ValueError, match='NaN'):
        rank_metrics(torch.full((2, 3), float('nan')), torch.zeros(0, 2, dtype=torch.long), torch.tensor([[0, 1]]), 2, 3)


# --- ranx, a well-kept peer implementation (optional extra `peers`)

def ranx_means(scores, seen, relevant, k, exclude=()):
    "ranx's means of the same metrics: every unseen, not excluded item of a user goes into its run with its score."
    ranx = pytest.importorskip('ranx')
    seen_set = {tuple(p) for p in seen.tolist()}
    qrels, run = {}, {}
    for u, i in relevant.tolist(): qrels.setdefault(f'u{u}', {})[f'i{i}'] = 1
    for q in qrels:
        u = int(q[1:])
        run[q] = {f'i{i}': float(scores[u, i]) for i in range(scores.shape[1]) if (u, i) not in seen_set and i not in exclude}
    names = {'precision': f'precision@{k}', 'recall': f'recall@{k}', 'ndcg': f'ndcg@{k}', 'map': f'map@{k}',
             'hit_rate': f'hit_rate@{k}', 'mrr': f'mrr@{k}'}
    got = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), list(names.values()))
    return {m: float(got[n]) for m, n in names.items()}


def agrees_with_ranx(seed, k):
    "Do our means (AP over |R_u|, as ranx defines MAP@k) equal ranx's to 1e-6 on a random case?"
    scores, seen, relevant = random_case(seed, n_users=25, n_items=60, n_seen=300, n_rel=200)
    ours = rank_metrics(scores, seen, relevant, 25, 60, k=k, exclude_items=[0], ap_denominator='all', chunk=7)
    theirs = ranx_means(scores, seen, relevant, k, exclude=(0,))
    return all(abs(ours[f'{m}@{k}'] - theirs[m]) < 1e-6 for m in METRICS)


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
@pytest.mark.parametrize('k', [1, 3, 10, 20])
def test_agrees_with_ranx(seed, k):
    assert agrees_with_ranx(seed, k)


def test_map_min_denominator_is_ranx_map_rescaled():
    # AP@k over min(k, |R|) times min(k, |R|)/|R| is ranx's AP@k over |R|, user by user
    scores, seen, relevant = random_case(6, n_users=25, n_items=60, n_seen=300, n_rel=200)
    _, mine = rank_metrics(scores, seen, relevant, 25, 60, k=4, per_user=True)
    _, trec = rank_metrics(scores, seen, relevant, 25, 60, k=4, ap_denominator='all', per_user=True)
    n_rel = torch.bincount(relevant[:, 0], minlength=25)[mine['users']].double()
    assert torch.allclose(mine['map'] * n_rel.clamp(max=4) / n_rel, trec['map'])


def test_planted_off_by_one_is_caught(monkeypatch):
    "A list of k + 1 items scored as if it were k long: the ranx check must fail."
    pytest.importorskip('ranx')
    assert agrees_with_ranx(0, 5)
    real = ranking.top_k
    monkeypatch.setattr(ranking, 'top_k', lambda scores, blocked, k: real(scores, blocked, k + 1))
    assert not agrees_with_ranx(0, 5)


def test_planted_seen_item_leak_is_caught(monkeypatch):
    "Training items left among the candidates: the ranx check must fail."
    pytest.importorskip('ranx')
    assert agrees_with_ranx(1, 5)
    real = ranking.top_k
    monkeypatch.setattr(ranking, 'top_k', lambda scores, blocked, k: real(scores, torch.zeros_like(blocked), k))
    assert not agrees_with_ranx(1, 5)


def test_ties_go_to_the_lower_index():
    from collab_lessons.ranking import top_k
    scores = torch.tensor([[2., 1., 2., 1., 2., 0.]]).expand(3, -1)  # an expanded (stride 0) tensor, as popularity scores are
    blocked = torch.tensor([[False] * 6, [True] + [False] * 5, [False, False, True, False, False, False]])
    idx, real = top_k(scores, blocked, 4)
    assert idx.tolist() == [[0, 2, 4, 1], [2, 4, 1, 3], [0, 4, 1, 3]] and real.all()
