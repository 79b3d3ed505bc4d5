import math

import numpy as np
from scipy import integrate, stats

from analyzer.noisy_mi import noisy_input_mi


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
