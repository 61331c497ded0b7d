"Oracle tests for the course's models: NumPy on the same weights, fastai's own `EmbeddingDotBias`, and each other."
import numpy as np
import pytest
import torch
from fastai.collab import EmbeddingDotBias
from hypothesis import given, settings, strategies as st

from collab_lessons.bias import DotProductBias
from collab_lessons.dot_product import DotProduct, rmse
from collab_lessons.from_scratch import ScratchDotProductBias, create_params, to_scratch
from collab_lessons.prediction_range import DotProductRange

N_USERS, N_MOVIES, N_FACTORS = 12, 9, 4


def batch(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, N_USERS, (n,), generator=g), torch.randint(0, N_MOVIES, (n,), generator=g)], 1)


def test_dot_product_matches_numpy():
    model, x = DotProduct(N_USERS, N_MOVIES, N_FACTORS), batch()
    u, m = model.user_factors.weight.detach().numpy(), model.item_factors.weight.detach().numpy()
    expected = np.einsum('bf,bf->b', u[x[:, 0]], m[x[:, 1]])
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=1e-5, atol=1e-7)


def test_range_model_is_sigmoid_of_dot_product():
    plain, ranged, x = DotProduct(N_USERS, N_MOVIES, N_FACTORS), DotProductRange(N_USERS, N_MOVIES, N_FACTORS), batch()
    ranged.load_state_dict(plain.state_dict())
    torch.testing.assert_close(ranged(x), torch.sigmoid(plain(x)) * 5.5)


def test_bias_model_matches_fastai_embedding_dot_bias():
    ours, x = DotProductBias(N_USERS, N_MOVIES, N_FACTORS), batch()
    theirs = EmbeddingDotBias(N_FACTORS, N_USERS, N_MOVIES, y_range=(0, 5.5))
    with torch.no_grad():
        theirs.u_weight.weight.copy_(ours.user_factors.weight)
        theirs.i_weight.weight.copy_(ours.item_factors.weight)
        theirs.u_bias.weight.copy_(ours.user_bias.weight + 0.3)
        theirs.i_bias.weight.copy_(ours.item_bias.weight - 0.2)
        ours.user_bias.weight += 0.3
        ours.item_bias.weight -= 0.2
    torch.testing.assert_close(ours(x).view(-1), theirs(x).view(-1))


def test_scratch_model_gives_identical_predictions_for_identical_weights():
    model, x = DotProductBias(N_USERS, N_MOVIES, N_FACTORS), batch()
    with torch.no_grad():
        for p in model.parameters(): p.normal_(0, 0.5)  # large enough that a mix-up would show
    torch.testing.assert_close(to_scratch(model)(x), model(x), rtol=0, atol=0)


def test_create_params_registers_parameter_with_small_std():
    torch.manual_seed(0)
    p = create_params((500, 40))
    assert isinstance(p, torch.nn.Parameter) and p.requires_grad and p.shape == (500, 40)
    assert abs(p.mean().item()) < 1e-3 and abs(p.std().item() - 0.01) < 5e-4
    model = ScratchDotProductBias(N_USERS, N_MOVIES, N_FACTORS)
    assert {n: tuple(p.shape) for n, p in model.named_parameters()} == {
        'user_factors': (N_USERS, N_FACTORS), 'user_bias': (N_USERS, 1),
        'item_factors': (N_MOVIES, N_FACTORS), 'item_bias': (N_MOVIES, 1)}


def test_rmse_metric_is_over_the_whole_validation_set():
    "The course's `rmse` column: the root of the mean squared error of every batch's predictions together, not a mean of per-batch RMSEs."
    batches = [(torch.tensor([1., 2.]), torch.tensor([[2.], [2.]])), (torch.tensor([3., 5.]), torch.tensor([[5.], [4.]]))]
    rmse.reset()
    for pred, targ in batches: rmse.accum_values(pred, targ)  # what `accumulate` does with each batch; targets come as (bs, 1)
    assert rmse.name == 'rmse' and rmse.value.item() == pytest.approx(np.sqrt((1 + 0 + 4 + 1) / 4))
    assert rmse.value.item() != pytest.approx(np.mean([np.sqrt(1 / 2), np.sqrt(5 / 2)]))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 8), st.floats(0.01, 100.0), st.integers(0, 10_000),
       st.sampled_from([DotProductRange, DotProductBias, ScratchDotProductBias]))
def test_predictions_stay_inside_y_range(n_users, n_items, n_factors, scale, seed, cls):
    torch.manual_seed(seed)
    model = cls(n_users, n_items, n_factors, y_range=(1, 5))
    with torch.no_grad():
        for p in model.parameters(): p.normal_(0, scale)
    x = torch.stack([torch.randint(0, n_users, (50,)), torch.randint(0, n_items, (50,))], 1)
    preds = model(x)
    assert torch.isfinite(preds).all() and (preds >= 1).all() and (preds <= 5).all()
