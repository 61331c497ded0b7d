import pytest
from fastai.learner import Learner
from fastai.losses import MSELossFlat

from collab_lessons.bias import DotProductBias
from collab_lessons.splits import collab_dls
from collab_lessons.dot_product import rmse
from collab_lessons.weight_decay import param_norms


def train(ratings, wd):
    dls = collab_dls(ratings, bs=32)
    model = DotProductBias(len(dls.classes['user']), len(dls.classes['title']), 8)
    learn = Learner(dls, model, loss_func=MSELossFlat(), metrics=rmse)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(4, 5e-2, wd=wd)
    return model


def test_param_norms_names_every_parameter(tiny_ratings):
    model = DotProductBias(5, 4, 3)
    norms = param_norms(model)
    assert list(norms.index) == [n for n, _ in model.named_parameters()]
    assert norms['user_factors.weight'] == pytest.approx(model.user_factors.weight.norm().item())


def test_weight_decay_lowers_every_norm(tiny_ratings):
    without, with_wd = param_norms(train(tiny_ratings, 0)), param_norms(train(tiny_ratings, 0.5))
    assert (with_wd < without).all(), (with_wd, without)
