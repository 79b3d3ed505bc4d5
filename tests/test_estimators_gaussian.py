"""Gaussian MI: closed forms, scipy entropies and scikit-learn's Ledoit-Wolf."""

import numpy as np
from scipy.stats import multivariate_normal, norm
from sklearn.covariance import ledoit_wolf as sk_ledoit_wolf

from analyzer.core.gaussian import gaussian_label_mi, gaussian_layer_mi, ledoit_wolf


def test_channel_equals_scipy_entropies_of_fitted_gaussians():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 500)
    x = rng.normal(size=(500, 6)) * (1 + y[:, None]) + y[:, None]
    ours = gaussian_label_mi(x.astype(np.float32), y)
    for j in range(6):
        c = x[:, j].astype(np.float32).astype(np.float64)
        h = norm(scale=c.std()).entropy()
        h_k = sum((y == k).mean() * norm(scale=c[y == k].std()).entropy() for k in range(4))
        np.testing.assert_allclose(ours[j], h - h_k, rtol=1e-9, atol=1e-12)


def test_channel_equal_variance_closed_form_and_constants():
    """Equal class variances s^2, overall variance v: I = 0.5 log(v / s^2) exactly."""
    x = np.array([[-1.0, 2.0], [1.0, 2.0], [4.0, 2.0], [6.0, 2.0], [np.nan, 2.0], [0, 2.0]])
    y = np.array([0, 0, 1, 1, 0, 1])
    mi = gaussian_label_mi(x[:4], y[:4])
    assert np.isclose(mi[0], 0.5 * np.log(x[:4, 0].var() / 1.0)) and mi[1] == 0.0
    assert np.isnan(gaussian_label_mi(x, y)[0])


def test_ledoit_wolf_matches_sklearn():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 20)) @ rng.normal(size=(20, 20))
    x -= x.mean(axis=0)
    np.testing.assert_allclose(
        ledoit_wolf(x), sk_ledoit_wolf(x, assume_centered=True)[0], rtol=1e-10
    )


def test_layer_equals_closed_form_for_gaussian_classes():
    """Equal-covariance classes are not jointly Gaussian, but the estimator's own target is
    0.5 (log det S - log det W): check it against scipy entropies of the fitted Gaussians."""
    rng = np.random.default_rng(2)
    d, n = 4, 20000
    y = rng.integers(0, 3, n)
    means = rng.normal(size=(3, d))
    t = means[y] + rng.normal(size=(n, d))
    cov = np.cov(t.T, bias=True)
    h = multivariate_normal(cov=cov).entropy()
    h_k = sum(
        (y == k).mean() * multivariate_normal(cov=np.cov(t[y == k].T, bias=True)).entropy()
        for k in range(3)
    )
    assert abs(gaussian_layer_mi(t, y) - (h - h_k)) < 1e-3  # shrinkage ~0 at n >> d


def test_independent_label_near_zero():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 3925)
    x = rng.normal(size=(3925, 8))
    assert np.abs(gaussian_label_mi(x, y)).max() < 0.01
    assert abs(gaussian_layer_mi(x, y)) < 0.05
