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
    main(["--sizes", "60", "--seeds", "1", "--layer-dims"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| task | N | true MI | histogram")
    assert len(lines) == 2 + 24


def test_suite_prints_the_layer_table(capsys):
    from analyzer.validate.__main__ import LAYER_TASKS, layer_table

    layer_table([6], [80], 1)
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "| layer task | N | true MI | kNN k=3, 4 PCs | Gaussian, 4 PCs | probe (whole layer) |"
    )
    assert len(lines) == 2 + len(LAYER_TASKS)
    assert lines[2].startswith("| d=6 K=10 r=1 s=0.5 identity | 80 | 0.548 |")


@pytest.mark.parametrize("rank,sep", [(1, 0.5), (2, 2.0), (2, 0.7)])
def test_layer_task_quadrature_equals_the_d_dim_monte_carlo(rank, sep):
    """d = 512: the Monte Carlo over the whole layer (all 512 coordinates) equals the
    quadrature of the rank-dim projection within 4 of its standard errors (~0.003)."""
    from analyzer.validate.layer_tasks import LayerTask

    task = LayerTask(512, 10, rank, sep)
    mc, se = task.true_mi_monte_carlo(60_000, np.random.default_rng(rank))
    truth = task.true_mi_quadrature()
    assert abs(truth - mc) < 4 * se, (truth, mc, se)
    assert 0.1 < truth < np.log(10)  # neither trivial end


def test_layer_task_geometry():
    """Class means on the subspace, noise isotropic: the sample's class means projected off
    the subspace are ~0, on it ~sep * a_k; the transform is per coordinate and monotone."""
    from analyzer.validate.layer_tasks import LayerTask

    task = LayerTask(64, 4, 2, 3.0)
    x, y = task.sample(40_000, np.random.default_rng(0), transform=False)
    basis = task.basis()
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-12)
    for k in range(4):
        mean = x[y == k].astype(np.float64).mean(0)
        np.testing.assert_allclose(basis.T @ mean, task.means()[k], atol=0.05)
        assert np.abs(mean - basis @ (basis.T @ mean)).max() < 0.08
    np.testing.assert_allclose(np.cov(x[y == 0].T.astype(np.float64)), np.eye(64), atol=0.08)
    xt, yt = LayerTask(64, 4, 2, 3.0, "tanh").sample(100, np.random.default_rng(0))
    x0, _ = task.sample(100, np.random.default_rng(0), transform=False)
    np.testing.assert_array_equal(yt, task.sample(100, np.random.default_rng(0))[1])
    np.testing.assert_allclose(xt, np.tanh(x0.astype(np.float64) / 2), atol=1e-6)


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


@pytest.mark.slow
def test_probe_never_above_h_y_and_below_the_truth_on_every_known_task():
    """Every ground-truth task of the suite (24 one-channel tasks; two layer tasks, d = 128),
    N = 3925: the probe bound <= H(Y) always, and <= the truth + 0.03 nats (its stated
    sampling error: the held-out mean log loss has a standard error of ~0.01 nats here)."""
    from analyzer.core.probe import label_entropy, probe_label_mi
    from analyzer.validate.__main__ import LAYER_TASKS, TASKS
    from analyzer.validate.layer_tasks import LayerTask
    from analyzer.validate.tasks import sample

    cases = []
    for family, k, sep, transform in TASKS:
        x, y = sample(family, k, sep, 3925, np.random.default_rng(1), transform)
        cases.append((x, y, true_mi_quadrature(family, k, sep)))
    for k, rank, sep, transform in LAYER_TASKS:
        task = LayerTask(128, k, rank, sep, transform)
        x, y = task.sample(3925, np.random.default_rng(1))
        cases.append((x, y, task.true_mi_quadrature()))
    for x, y, truth in cases:
        bound = probe_label_mi(x, y)
        assert bound <= label_entropy(y) + 1e-12
        assert bound < truth + 0.03, (bound, truth)
