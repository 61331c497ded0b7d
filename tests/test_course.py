import torch
import re
from pathlib import Path

import pandas as pd
import pytest

from collab_lessons.course import COURSE_STEPS, lesson_scores, train_step
from collab_lessons.dot_product import valid_scores

ROOT = Path(__file__).parents[1]


def test_every_step_is_stored_in_its_lesson():
    stored = lesson_scores(ROOT/'nbs'/'course')
    assert sorted(zip(stored.lesson, stored.step)) == sorted((s['lesson'], s['step']) for s in COURSE_STEPS)
    assert ((stored.valid_rmse ** 2 - stored.valid_mse).abs() < 2e-3).all()


def test_lesson_scores_needs_run_notebooks(tmp_path):
    with pytest.raises(FileNotFoundError, match='run the lessons first'):
        lesson_scores(tmp_path)


def setup_commands(text):
    "The `bash tools/...` commands a page tells a newcomer to run."
    return re.findall(r'^(bash tools/\S+)', text, flags=re.M)


def test_readme_and_index_give_the_same_setup_commands():
    import json
    index = ''.join(''.join(c['source']) for c in json.loads((ROOT/'nbs/index.ipynb').read_text())['cells'])
    readme = (ROOT/'README.md').read_text()
    assert setup_commands(readme)[:2] == setup_commands(index)[:2] == ['bash tools/course.sh', 'bash tools/test.sh']


# ---------------------------------------------------------------- one runner, one builder, no diverged model

from collab_lessons.course import (FINAL_STEP, DivergedError, check_finite, course_learner, fit_learner, plot_scores,
                                   run_course)
from collab_lessons.splits import collab_dls


def test_run_course_table_learners_and_log(tiny_ratings):
    steps = [s for s in COURSE_STEPS if s['step'] in ('bias', FINAL_STEP)]
    lines = []
    table, learners = run_course(tiny_ratings, steps, epochs=1, show_progress=False, log=lines.append)
    assert list(table.columns) == ['step', 'lesson', 'model', 'wd', 'epochs', 'valid_mse', 'valid_rmse', 'seconds']
    assert list(table.step) == ['bias', FINAL_STEP] and list(table.lesson) == ['40_bias', '50_weight_decay']
    assert list(table.wd) == [0.01, 0.1]  # the number the optimiser used: fastai's default where the step gives none
    assert set(learners) == {'bias', FINAL_STEP}
    assert learners[FINAL_STEP].recorder.values[-1][1] == pytest.approx(table.valid_mse[1], abs=1e-4)
    assert len(lines) == 2 and lines[0].startswith('  1/2 bias: valid MSE')


def test_run_course_without_progress_prints_nothing(tiny_ratings, capsys):
    run_course(tiny_ratings, COURSE_STEPS[:1], epochs=1, show_progress=False)
    assert capsys.readouterr().out == ''  # a hidden fastprogress bar would still print a character


def test_run_course_equals_train_step(tiny_ratings):
    step = COURSE_STEPS[3]
    table, _ = run_course(tiny_ratings, [step], epochs=2, show_progress=False)
    assert table.valid_mse[0] == valid_scores(train_step(tiny_ratings, step, epochs=2), 'x')['valid_mse']


def test_course_learner_builds_each_course_model(tiny_ratings):
    dls = collab_dls(tiny_ratings, bs=16)
    for step in COURSE_STEPS:
        learn = course_learner(dls, step['model'], n_factors=3)
        assert type(learn.model) is step['model'] and learn.metrics[0].name == 'rmse'
        assert learn.model(dls.one_batch()[0]).shape[0] == 16


@pytest.mark.parametrize('lr', [1e6, 1e9])
def test_diverged_training_raises(tiny_ratings, lr):
    learn = course_learner(collab_dls(tiny_ratings, bs=16), COURSE_STEPS[0]['model'], n_factors=4)  # DotProduct: no y_range
    with pytest.raises(DivergedError, match='lower learning rate'): fit_learner(learn, epochs=2, lr=lr)


def test_check_finite_names_nan_weights(tiny_ratings):
    import torch
    learn = course_learner(collab_dls(tiny_ratings, bs=16))
    fit_learner(learn, epochs=1)
    check_finite(learn)  # a healthy run passes
    with torch.no_grad(): learn.model.item_bias.weight[2, 0] = float('inf')
    with pytest.raises(DivergedError, match='1 weight tensor'): check_finite(learn)


@pytest.mark.parametrize('kwargs, message', [(dict(epochs=0), 'epochs'), (dict(epochs=1.5), 'epochs'), (dict(lr=float('nan')), 'lr'),
                                             (dict(lr=-1), 'lr'), (dict(wd=-0.1), 'wd'), (dict(wd=float('inf')), 'wd')])
def test_fit_learner_refuses_bad_recipes(tiny_ratings, kwargs, message):
    learn = course_learner(collab_dls(tiny_ratings, bs=16))
    before = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(ValueError, match=f'^{message} must be'): fit_learner(learn, **kwargs)
    assert all((a == b).all() for a, b in zip(before, learn.model.parameters()))  # refused before any training


def test_plot_scores_has_one_bar_per_step():
    import pandas as pd
    table = pd.DataFrame(dict(step=['a', 'b', 'c'], valid_mse=[0.9, 0.8, 1.0]))
    ax = plot_scores(table).axes[0]
    assert [p.get_width() for p in ax.patches] == [0.9, 0.8, 1.0]
    assert ax.get_xlim() == pytest.approx((0.7, 1.05))


def test_lesson_70_rerun_reproduces_every_lessons_stored_score():
    "The table lesson 70 stores from `run_course` holds the scores each lesson stored (the check that used to run in the lesson)."
    import io, json
    from collab_lessons.course import lesson_scores
    nbs = Path(__file__).parents[1]/'nbs'/'course'
    cells = json.loads((nbs/'70_course.ipynb').read_text(encoding='utf-8'))['cells']
    src = next(c for c in cells if 'run_course(load_ratings' in ''.join(c['source']))
    text = next(''.join(o['data']['text/plain']) for o in src['outputs'] if o['output_type'] == 'execute_result')
    blocks = [pd.read_csv(io.StringIO(b.replace('\\', '')), sep=r'\s+') for b in text.split('\n\n')]  # pandas wraps wide tables
    rerun = pd.concat(blocks, axis=1).set_index('step').valid_mse
    stored = lesson_scores(nbs).set_index('step').valid_mse
    assert sorted(rerun.index) == sorted(stored.index)
    assert ((rerun - stored[rerun.index]).abs() <= 1e-4).all(), (rerun, stored)


def test_trim_heap_trims_every_n_training_batches_and_after_each_epoch(tiny_ratings):
    "`TrimHeap` calls `malloc_trim` after every `every`-th training batch and at each epoch's end, and changes no number."
    from collab_lessons.course import TrimHeap
    calls, runs = [], []
    for trim in (True, False):
        torch.manual_seed(0)
        dls = collab_dls(tiny_ratings, bs=16)
        learn = course_learner(dls)
        cb = TrimHeap(every=3)
        if trim: cb.trim = calls.append
        else: cb.trim = None
        with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-2, cbs=cb)
        runs.append([p.detach().clone() for p in learn.model.parameters()])
    n_batches = len(dls.train)
    assert len(calls) == 2 * (n_batches // 3 + 1) and set(calls) == {0}
    assert all(torch.equal(a, b) for a, b in zip(*runs))
