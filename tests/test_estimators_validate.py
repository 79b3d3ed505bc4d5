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
