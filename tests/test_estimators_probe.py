"""Probe bound: never above H(Y), below the truth on a known task, ~0 on independent data."""

import numpy as np
from scipy import integrate
from scipy.stats import norm

from analyzer.core.probe import label_entropy, probe_label_mi


def _two_gaussians_mi(sep):
    def integrand(t):
        p0, p1 = norm.pdf(t, -sep), norm.pdf(t, sep)
        m = 0.5 * (p0 + p1)
        return 0.5 * (p0 * np.log(p0 / m) + p1 * np.log(p1 / m))

    return integrate.quad(integrand, -20, 20, epsabs=1e-12)[0]


def test_label_entropy():
    assert np.isclose(
        label_entropy(np.array([0, 0, 1, 1, 2, 2, 2, 2])),
        -(2 * 0.25 * np.log(0.25) + 0.5 * np.log(0.5)),
    )


def test_below_truth_and_h_y_on_gaussian_classes():
    """1-D Gaussians at +-sep: logistic regression is the Bayes classifier, so the bound is
    close to the quadrature truth from below; N=5000: the held-out mean log loss has a
    standard error of ~0.007 nats, so the upper margin 0.02 is ~3 standard errors."""
    rng = np.random.default_rng(0)
    for sep in (0.3, 1.0, 3.0):
        truth = _two_gaussians_mi(sep)
        y = rng.integers(0, 2, 5000)
        t = rng.normal(sep * (2.0 * y - 1.0))[:, None]
        bound = probe_label_mi(t, y)
        assert bound <= label_entropy(y) + 1e-12
        assert truth - 0.03 < bound < truth + 0.02, (sep, bound, truth)


def test_independent_near_zero_and_never_above_h_y():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 600)
    x = rng.normal(size=(600, 16))
    bound = probe_label_mi(x, y)
    assert -0.1 < bound < 0.01
    sep = np.eye(10)[y] * 50 + rng.normal(size=(600, 10))  # perfectly decodable
    top = probe_label_mi(sep, y)
    assert top <= label_entropy(y) + 1e-12 and top > label_entropy(y) - 0.05


def test_nan_features():
    x = np.zeros((20, 2))
    x[3, 1] = np.nan
    assert np.isnan(probe_label_mi(x, np.arange(20) % 2))
