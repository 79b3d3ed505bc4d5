"""Ground-truth tasks: quadrature truth vs Monte Carlo; the suite runs on a tiny size."""

import numpy as np
import pytest

from analyzer.validate.__main__ import main
from analyzer.validate.tasks import FAMILIES, true_mi_monte_carlo, true_mi_quadrature


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("n_classes,sep", [(2, 0.5), (10, 1.0), (2, 3.0)])
def test_quadrature_equals_monte_carlo(family, n_classes, sep):
    truth = true_mi_quadrature(family, n_classes, sep)
    mc, se = true_mi_monte_carlo(family, n_classes, sep, 200_000, np.random.default_rng(0))
    assert abs(truth - mc) < 4 * se + 1e-9
    assert 0 <= truth <= np.log(n_classes) + 1e-9


def test_zero_separation_is_zero_and_disjoint_uniforms_are_h_y():
    assert abs(true_mi_quadrature("gaussian", 10, 0.0)) < 1e-9
    assert np.isclose(true_mi_quadrature("uniform", 10, 1.0), np.log(10), atol=1e-8)


def test_suite_prints_a_table(capsys):
    main(["--sizes", "60", "--seeds", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| task | N | true MI | histogram")
    assert len(lines) == 2 + 24


def test_histogram_bias_on_independent_data_is_the_exact_permutation_null_mean():
    """Truth 0: the histogram's mean estimate over seeds equals the mean of the exact
    permutation-null means the analyzer computes (within 4 standard errors)."""
    from analyzer.core.histogram import channel_label_mi
    from analyzer.core.kernels import bin_codes
    from analyzer.core.null_mean import exact_null_means
    from analyzer.validate.tasks import sample

    est, null = [], []
    for seed in range(200):
        x, y = sample("gaussian", 10, 0.0, 359, np.random.default_rng(seed))
        est.append(channel_label_mi(x, y, 20, 10)[0])
        codes, _ = bin_codes(x, 20)
        null.append(
            exact_null_means(
                np.bincount(codes[0], minlength=20)[None], np.bincount(y, minlength=10)
            )[0][0]
        )
    diff = np.array(est) - np.array(null)
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(diff.size)
    assert np.mean(est) > 0.1  # the bias is large at N=359, B=20, K=10: the check has teeth


def test_estimators_agree_near_zero_on_independent_data():
    """Truth 0 (a ReLU-like channel, a 10-class label drawn independently), N = 3925: every
    estimator after its bias correction (the histogram: minus its exact permutation-null
    mean; kNN, Gaussian, probe: none) is within a few of its standard errors of 0."""
    from analyzer.core.gaussian import gaussian_label_mi
    from analyzer.core.histogram import channel_label_mi
    from analyzer.core.kernels import bin_codes
    from analyzer.core.knn import knn_label_mi
    from analyzer.core.null_mean import exact_null_means
    from analyzer.core.probe import probe_label_mi

    rng = np.random.default_rng(5)
    n = 3925
    x = np.maximum(rng.normal(size=(n, 4)), 0)
    y = rng.integers(0, 10, n)
    codes, _ = bin_codes(x, 20)
    hist = channel_label_mi(x, y, 20, 10)
    null = np.array(
        [
            exact_null_means(np.bincount(c, minlength=20)[None], np.bincount(y, minlength=10))[0][0]
            for c in codes
        ]
    )
    assert hist.mean() > 0.015  # the raw plug-in bias is there
    assert abs((hist - null).mean()) < 0.004
    assert abs(knn_label_mi(x, y, 3).mean()) < 0.01
    assert abs(gaussian_label_mi(x, y).mean()) < 0.004
    assert -0.01 < probe_label_mi(x, y) < 0.004
