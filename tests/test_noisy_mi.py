import math

import numpy as np
import pytest
from scipy import integrate, stats

from analyzer.core.noisy_mi import noisy_input_mi


def test_limits_zero_and_log_n():
    rng = np.random.default_rng(0)
    same = np.zeros((50, 3))
    assert abs(noisy_input_mi(same, 0.5)) < 1e-9
    far = rng.normal(size=(50, 3)) * 1000
    assert abs(noisy_input_mi(far, 0.1) - math.log(50)) < 1e-6


def test_two_point_mixture_matches_numerical_integration():
    s, beta = np.array([-1.0, 1.0]), 0.8

    def p(t):
        return 0.5 * (stats.norm.pdf(t, -1, beta) + stats.norm.pdf(t, 1, beta))

    h_t = integrate.quad(lambda t: -p(t) * math.log(p(t)), -12, 12)[0]
    exact = h_t - 0.5 * math.log(2 * math.pi * math.e * beta**2)
    est = noisy_input_mi(s, beta, samples_per_point=20000)
    assert abs(est - exact) < 0.01
    assert 0 < est < math.log(2)


def test_single_gaussian_zero_and_separated_log_n_with_bounds():
    from analyzer.core.noisy_mi import noisy_mi

    same = noisy_mi(np.full((40, 3), 0.3), [0.1, 1.0])
    assert np.allclose([same.estimate, same.upper, same.lower], 0, atol=1e-12)
    far = noisy_mi(np.arange(40)[:, None] * np.ones((1, 2)) * 100.0, [0.1, 1.0])
    assert np.allclose([far.estimate, far.upper, far.lower], math.log(40), atol=1e-9)


def test_two_points_quadrature_inside_bounds():
    from analyzer.core.noisy_mi import noisy_mi

    for d, beta in [(2.0, 0.8), (1.0, 1.0), (0.5, 0.2)]:

        def p(t, beta=beta, d=d):
            return 0.5 * (stats.norm.pdf(t, 0, beta) + stats.norm.pdf(t, d, beta))

        h_t = integrate.quad(lambda t: -p(t) * math.log(p(t)), -12 * beta, d + 12 * beta)[0]
        exact = h_t - 0.5 * math.log(2 * math.pi * math.e * beta**2)
        r = noisy_mi(np.array([[0.0], [d]]), [beta], samples_per_point=20000)
        assert abs(r.estimate[0] - exact) < 0.01
        assert r.lower[0] - 1e-12 <= exact <= r.upper[0] + 1e-12
        # the bounds in closed form (Kolchinsky & Tracey): ln 2 - ln(1 + exp(-D))
        up = math.log(2) - math.log1p(math.exp(-(d**2) / (2 * beta**2)))
        lo = math.log(2) - math.log1p(math.exp(-(d**2) / (8 * beta**2)))
        assert r.upper[0] == pytest.approx(up, abs=1e-12) and r.lower[0] == pytest.approx(
            lo, abs=1e-12
        )


def test_blocked_kernel_equals_dense_logsumexp():
    from scipy.special import logsumexp

    from analyzer.core.noisy_mi import noisy_mi

    rng = np.random.default_rng(5)
    s = np.tanh(rng.normal(size=(300, 6)))
    betas = [0.05, 0.3, 2.0]
    r = noisy_mi(s, betas, samples_per_point=2, seed=3)
    z = np.random.default_rng([3, 20180101]).standard_normal((600, 6))
    own = np.tile(np.arange(300), 2)
    s0 = s - s.mean(0)
    d2 = ((s0[:, None] - s0[None]) ** 2).sum(-1)
    for k, beta in enumerate(betas):
        t = s0[own] + beta * z
        a = -((t[:, None] - s0[None]) ** 2).sum(-1) / (2 * beta**2) + (z * z).sum(1)[:, None] / 2
        assert r.estimate[k] == pytest.approx(math.log(300) - logsumexp(a, axis=1).mean(), abs=1e-9)
        up = math.log(300) - logsumexp(-d2 / (2 * beta**2), axis=1).mean()
        lo = math.log(300) - logsumexp(-d2 / (8 * beta**2), axis=1).mean()
        assert r.upper[k] == pytest.approx(up, abs=1e-9) and r.lower[k] == pytest.approx(
            lo, abs=1e-9
        )
        assert r.lower[k] <= r.estimate[k] + 0.02 and r.estimate[k] <= r.upper[k] + 0.02
