"The BPR model, loss and triplet loader of lesson 73 (`collab_lessons.learning_to_rank`) on tiny hand-built data."
import math

import pytest
import torch
import torch.nn.functional as F

from collab_lessons.learning_to_rank import BPRModel, TripletLoader, bpr_loss


def test_bpr_loss_is_mean_minus_log_sigmoid():
    diff = torch.tensor([2., 0., -1., 0.5])
    expected = -sum(math.log(1 / (1 + math.exp(-d))) for d in diff.tolist()) / len(diff)
    assert bpr_loss(diff).item() == pytest.approx(expected, rel=1e-6)
    assert bpr_loss(diff, torch.ones(4)).item() == pytest.approx(expected, rel=1e-6)  # fastai passes targets: ignored
    assert bpr_loss(torch.zeros(3)).item() == pytest.approx(math.log(2), rel=1e-6)
    assert bpr_loss(diff).item() == pytest.approx(F.binary_cross_entropy_with_logits(diff, torch.ones(4)).item(), rel=1e-6)


def test_bpr_model_returns_score_differences():
    torch.manual_seed(0)
    model = BPRModel(3, 5, n_factors=4)
    with torch.no_grad(): model.item_bias.weight.normal_()
    x = torch.tensor([[1, 2, 3], [2, 4, 1]])
    u, i, j = x.T
    by_hand = ((model.user_factors.weight[u] * model.item_factors.weight[i]).sum(1) + model.item_bias.weight[i, 0]
               - (model.user_factors.weight[u] * model.item_factors.weight[j]).sum(1) - model.item_bias.weight[j, 0])
    assert torch.allclose(model(x), by_hand, atol=1e-6)
    scores = model.user_scores(torch.tensor([1, 2]))
    assert scores.shape == (2, 5)
    assert torch.allclose(scores[0, 2] - scores[0, 3], model(x)[0], atol=1e-6)


def toy_pairs():
    "Users 1-4 see items 1-3, users 5-8 see items 4-6: two groups."
    return torch.tensor([(u, i) for u in range(1, 9) for i in ((1, 2, 3) if u <= 4 else (4, 5, 6))])


def test_triplet_loader_draws_unseen_negatives_and_visits_every_pair():
    pairs = toy_pairs()
    loader = TripletLoader(pairs, 9, 7, bs=5, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.shape == (len(pairs), 3) and bool((y == 1).all())
    assert sorted(map(tuple, x[:, :2].tolist())) == sorted(map(tuple, pairs.tolist()))  # each positive once per epoch
    assert bool((x[:, 2] >= 1).all())                                                  # never the `#na#` slot
    # half of each user's items are seen here: 3 redraws leave about 1 in 16 seen; many redraws leave none
    assert loader.seen[x[:, 0], x[:, 2]].float().mean() < 0.25
    users = torch.arange(1, 9).repeat(50)
    assert not loader.seen[users, loader.negatives(users, tries=60)].any()


def test_bpr_loss_decreases_and_ranks_the_group_first():
    torch.manual_seed(0)
    pairs = toy_pairs()
    loader = TripletLoader(pairs, 9, 7, bs=8, seed=0)
    model = BPRModel(9, 7, n_factors=4)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        total = 0.
        for xb, yb in loader:
            loss = bpr_loss(model(xb), yb)
            opt.zero_grad(); loss.backward(); opt.step()
            total += loss.item() * len(xb)
        losses.append(total / len(pairs))
    assert losses[0] > 0.6 and losses[-1] < 0.5 * losses[0]
    with torch.no_grad(): scores = model.user_scores(torch.tensor([1, 5]))
    assert scores[0, 1:4].min() > scores[0, 4:].max() and scores[1, 4:].min() > scores[1, 1:4].max()
