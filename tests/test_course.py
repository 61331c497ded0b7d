import re
from pathlib import Path

import pytest

from collab_lessons.course import COURSE_STEPS, lesson_scores, train_step
from collab_lessons.dot_product import valid_scores

ROOT = Path(__file__).parents[1]


def test_every_step_is_stored_in_its_lesson():
    stored = lesson_scores(ROOT/'nbs')
    assert sorted(zip(stored.lesson, stored.step)) == sorted((s['lesson'], s['step']) for s in COURSE_STEPS)
    assert ((stored.valid_rmse ** 2 - stored.valid_mse).abs() < 2e-3).all()


def test_lesson_scores_needs_run_notebooks(tmp_path):
    with pytest.raises(FileNotFoundError, match='run the lessons first'):
        lesson_scores(tmp_path)


def test_weight_decay_recipe_reaches_the_issue_target_on_ml100k(ml100k):
    step = next(s for s in COURSE_STEPS if s['step'] == 'weight_decay')
    scores = valid_scores(train_step(ml100k, step), 'weight_decay')
    stored = lesson_scores(ROOT/'nbs').set_index('step').loc['weight_decay']
    assert scores['valid_mse'] <= 0.830
    assert abs(scores['valid_mse'] - stored.valid_mse) <= 0.01


def setup_commands(text):
    "The `bash tools/...` commands a page tells a newcomer to run."
    return re.findall(r'^(bash tools/\S+)', text, flags=re.M)


def test_readme_and_index_give_the_same_setup_commands():
    import json
    index = ''.join(''.join(c['source']) for c in json.loads((ROOT/'nbs/index.ipynb').read_text())['cells'])
    readme = (ROOT/'README.md').read_text()
    assert setup_commands(readme)[:2] == setup_commands(index)[:2] == ['bash tools/course.sh', 'bash tools/test.sh']
