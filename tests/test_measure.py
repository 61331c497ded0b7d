import math
import time

import numpy as np
import pytest
import torch

from collab_lessons.measure import measure, rating_metrics, rss_mb


def test_measure_sees_allocation():
    _, used = measure(lambda: np.ones(40_000_000).sum())  # 320 MB of float64
    if not np.isnan(rss_mb()): assert used['extra_mb'] > 250


def test_measure_times_what_it_runs():
    result, used = measure(lambda: time.sleep(0.3) or 'done')
    assert result == 'done' and 0.3 <= used['fit_s'] < 3



def test_rating_metrics_against_numpy():
    rng = np.random.default_rng(0)
    p, t = rng.normal(3, 1, 500), rng.integers(1, 6, 500)
    m = rating_metrics(torch.tensor(p), t)
    assert m['rmse'] == pytest.approx(np.sqrt(np.mean((p - t)**2))) and m['mae'] == pytest.approx(np.mean(np.abs(p - t)))


def test_rating_metrics_known_values():
    m = rating_metrics(torch.tensor([1., 2., 3.]), [2, 2, 5])
    assert m['rmse'] == pytest.approx(math.sqrt(5 / 3)) and m['mae'] == pytest.approx(1.0)


def test_exercise_equal_errors_give_equal_rmse_and_mae():
    assert rating_metrics([1.5, 2.5], [1, 3]) == dict(rmse=0.5, mae=0.5)
