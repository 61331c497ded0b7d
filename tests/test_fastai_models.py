import pytest
import torch
from fastai.collab import EmbeddingDotBias, EmbeddingNN

from collab_lessons.bias import DotProductBias
from collab_lessons.splits import collab_dls
from collab_lessons.course import fit_learner
from collab_lessons.fastai_models import MODEL_KINDS, compare_row, make_learner, to_embedding_dot_bias


def test_make_learner_kinds(tiny_ratings):
    dls = collab_dls(tiny_ratings, bs=16)
    kinds = {k: type(make_learner(dls, k, n_factors=4).model) for k in MODEL_KINDS}
    assert kinds == {'bias': DotProductBias, 'fastai_dot': EmbeddingDotBias, 'fastai_nn': EmbeddingNN}
    with pytest.raises(ValueError, match='choose one of bias, fastai_dot, fastai_nn'): make_learner(dls, 'svd')


def test_embedding_dot_bias_is_the_same_model():
    torch.manual_seed(0)
    ours = DotProductBias(6, 9, 5)
    with torch.no_grad():
        for p in ours.parameters(): p.normal_()
    theirs = to_embedding_dot_bias(ours)
    x = torch.tensor([[0, 0], [1, 8], [5, 3]])
    with torch.no_grad(): assert torch.allclose(ours(x).view(-1), theirs(x), atol=1e-6)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_train_and_compare_rows(tiny_ratings):
    dls = collab_dls(tiny_ratings, bs=16)
    learn = make_learner(dls, 'fastai_nn', n_factors=4, layers=(8,))
    seconds = fit_learner(learn, epochs=2, lr=1e-2, wd=0.1)
    row = compare_row('fastai_nn', learn, seconds)
    assert len(learn.recorder.values) == 2
    with learn.no_bar(): preds, targs = learn.get_preds(ds_idx=1)
    mse = (preds.view(-1) - targs.view(-1)).pow(2).mean().item()  # the validation MSE computed here, not by the recorder
    assert row['model'] == 'EmbeddingNN' and row['valid_mse'] == pytest.approx(mse, abs=1e-3) and row['seconds'] == seconds
    assert row['n_params'] == sum(p.numel() for p in learn.model.parameters())
