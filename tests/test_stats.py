"""Uncertainty helpers against scipy and simulation."""

import numpy as np
from scipy import stats as sps

from analyzer.core.stats import bootstrap_interval, t_band, t_interval


def test_t_interval_matches_scipy():
    x = np.array([0.1, 0.4, 0.35, 0.2, np.nan])
    iv = t_interval(x)
    lo, hi = sps.t.interval(0.95, 3, loc=x[:4].mean(), scale=sps.sem(x[:4]))
    assert iv.n == 4 and np.isclose(iv.lo, lo) and np.isclose(iv.hi, hi)
    assert np.isnan(t_interval([1.0]).lo) and t_interval([]).n == 0


def test_t_band_along_axis():
    x = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 4.0]])
    mean, lo, hi = t_band(x, axis=0)
    assert np.allclose(mean, [3.0, 3.0])
    assert np.isclose(lo[0], t_interval(x[:, 0]).lo) and np.isclose(hi[1], t_interval([2, 4]).hi)


def test_t_interval_covers_the_mean_about_95_percent():
    rng = np.random.default_rng(0)
    hits = sum(
        (lambda iv: iv.lo <= 1.0 <= iv.hi)(t_interval(rng.normal(1.0, 2.0, 5))) for _ in range(2000)
    )
    assert 0.93 < hits / 2000 < 0.97


def test_bootstrap_interval_of_a_mean():
    x = np.random.default_rng(1).normal(0, 1, 400)
    lo, hi = bootstrap_interval(lambda idx: x[idx].mean(), len(x), n_boot=400, seed=2)
    half = 1.96 / np.sqrt(400)
    assert abs((hi - lo) / 2 - half) < 0.3 * half and lo < x.mean() < hi
