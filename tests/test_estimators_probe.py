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


def test_softmax_fit_equals_sklearn_logistic_regression():
    """Same objective (C * sum log loss + |W|^2 / 2, bias free): same probabilities."""
    from sklearn.linear_model import LogisticRegression

    from analyzer.core.probe import fit_softmax

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 400)
    x = rng.normal(size=(400, 6)) + 0.8 * rng.normal(size=(4, 6))[y]
    x1 = np.hstack([x, np.ones((400, 1))])
    for c in (0.01, 1.0):
        w = fit_softmax(x1, np.eye(4)[y], c, np.zeros((7, 4)), max_iter=2000)
        ref = LogisticRegression(C=c, tol=1e-10, max_iter=5000).fit(x, y)
        ours = np.exp(x1 @ w - np.logaddexp.reduce(x1 @ w, axis=1, keepdims=True))
        np.testing.assert_allclose(ours, ref.predict_proba(x), atol=1e-4)


def test_stratified_folds_balance_each_class():
    from analyzer.core.probe import stratified_folds

    y = np.repeat(np.arange(5), [30, 31, 7, 3, 100])
    fold = stratified_folds(y, 3, np.random.default_rng(0))
    for c in range(5):
        counts = np.bincount(fold[y == c], minlength=3)
        assert counts.max() - counts.min() <= 1


def test_bound_on_a_wide_layer_below_truth():
    """A 512-wide layer whose label signal lies in a 3-dim subspace (class means on it,
    isotropic noise): the truth is the MI of that 3-dim Gaussian mixture (Monte Carlo, N =
    100k, standard error ~0.003); the probe on its 64 whitened components is below it."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(4)
    k, d, n = 5, 512, 2000
    means3 = 1.5 * rng.normal(size=(k, 3))
    basis = np.linalg.qr(rng.normal(size=(d, 3)))[0]  # (d, 3) orthonormal

    def draw(m):
        y = rng.integers(0, k, m)
        return y, means3[y] + rng.normal(size=(m, 3))

    y_mc, t_mc = draw(100_000)
    logf = np.stack([multivariate_normal(mu, np.eye(3)).logpdf(t_mc) for mu in means3])
    terms = logf[y_mc, np.arange(y_mc.size)] - (np.logaddexp.reduce(logf, axis=0) - np.log(k))
    truth, se = terms.mean(), terms.std() / np.sqrt(terms.size)
    y, t = draw(n)
    layer = t @ basis.T + rng.normal(size=(n, d))  # noise outside the subspace too
    layer = layer - (layer @ basis) @ basis.T + t @ basis.T  # keep the 3-dim part exact
    bound = probe_label_mi(layer, y)
    assert bound < truth + 4 * se + 0.03  # 0.03: held-out sampling error at N = 2000
    assert bound > 0.5 * truth  # a linear probe recovers most of it: the check has teeth
