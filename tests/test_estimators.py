import math

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import mutual_info_score

from analyzer.core import histogram as est
from analyzer.core import metrics
from analyzer.core.kernels import (
    all_pairs_mi,
    bin_codes,
    indicator_mi_from_counts,
    paired_mi,
    xlogx_table,
)


def reference_codes(x, bins):
    """Independent re-implementation of the binning rule, one column."""
    lo, hi = x.min(), x.max()
    if hi == lo:
        return np.zeros(len(x), dtype=int)
    return np.minimum(np.floor((x - lo) * (bins / (hi - lo))).astype(int), bins - 1)


def random_case(rng):
    n = int(rng.choice([1, 2, 3, 7, 50, 400]))
    c = int(rng.integers(1, 6))
    k = int(rng.integers(2, 6))
    bins = int(rng.choice([2, 3, 10, 20]))
    kind = rng.integers(0, 3)
    if kind == 0:
        x = rng.normal(size=(n, c))
    elif kind == 1:  # heavy ties
        x = rng.integers(0, 3, size=(n, c)).astype(np.float64)
    else:  # ReLU-like: many zeros
        x = np.maximum(rng.normal(size=(n, c)), 0)
    x[:, 0] = 1.5 if rng.random() < 0.3 else x[:, 0]  # constant channels
    y = rng.integers(0, k, n)
    return x.astype(np.float32), y, k, bins


def test_channel_label_mi_equals_sklearn_on_same_bins():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(150):
        x, y, k, bins = random_case(rng)
        got = est.channel_label_mi(x, y, bins, n_classes=k)
        for c in range(x.shape[1]):
            ref = mutual_info_score(y, reference_codes(x[:, c].astype(np.float64), bins))
            assert abs(got[c] - ref) < 1e-10, (x[:, c], y, bins)
            checked += 1
    assert checked > 300


def test_codes_follow_the_binning_rule():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 7)).astype(np.float32)
    x[:, 3] = 2.0
    codes, finite = bin_codes(x, 20)
    assert finite.all()
    for c in range(7):
        np.testing.assert_array_equal(codes[c], reference_codes(x[:, c].astype(np.float64), 20))
    assert codes[:, x.argmax(0)[0]].max() == 19


def test_class_and_input_mi_match_references():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    y = rng.integers(0, 4, 500)
    x[:, 1] += y
    finite, counts = est.channel_counts(x, y, 10, 4)
    codes, _ = bin_codes(x, 10)
    klass = est.indicator_mi(counts)
    h = est.entropy_from_counts(counts.sum(axis=2), 500)
    compiled = indicator_mi_from_counts(counts, xlogx_table(500))
    for c in range(6):
        for k in range(4):
            assert abs(klass[c, k] - mutual_info_score(y == k, codes[c])) < 1e-10
            assert abs(compiled[c, k] - mutual_info_score(y == k, codes[c])) < 1e-10
        assert abs(h[c] - scipy_entropy(np.bincount(codes[c]))) < 1e-10


def test_independent_variables_stay_within_plugin_bias():
    rng = np.random.default_rng(3)
    n, bins, k = 2000, 10, 5
    x = rng.normal(size=(n, 400)).astype(np.float32)
    y = rng.integers(0, k, n)
    mi = est.channel_label_mi(x, y, bins, k)
    bias = (bins - 1) * (k - 1) / (2 * n)
    assert 0.7 * bias < mi.mean() < 1.3 * bias
    assert mi.max() < 3 * bias
    mm = est.channel_label_mi(x, y, bins, k, miller_madow=True)
    assert abs(mm.mean() - mi.mean()) < 2 * bias  # the correction moves by about the bias


def test_copy_of_labels_gives_label_entropy():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 7, 1000)
    h = scipy_entropy(np.bincount(y))
    mi = est.channel_label_mi(y[:, None].astype(np.float32), y, 7, 7)
    assert abs(mi[0] - h) < 1e-12


def test_bivariate_gaussian_approaches_analytic_value():
    rng = np.random.default_rng(5)
    rho, n = 0.8, 400_000
    a = rng.normal(size=n)
    b = rho * a + math.sqrt(1 - rho**2) * rng.normal(size=n)
    codes, _ = bin_codes(np.stack([a, b], axis=1), 60)
    got = paired_mi(codes[:1].copy(), codes[1:].copy(), 60, xlogx_table(n))[0]
    assert abs(got - (-0.5 * math.log(1 - rho**2))) < 0.03


def test_all_pairs_and_paired_mi_match_sklearn():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 9))
    x[:, 4] = x[:, 0] ** 2
    x[:, 5] = 0.0
    codes, _ = bin_codes(x, 8)
    mat = all_pairs_mi(codes, 8, xlogx_table(300))
    for i in range(9):
        for j in range(9):
            assert abs(mat[i, j] - mutual_info_score(codes[i], codes[j])) < 1e-10
    p = paired_mi(codes[:4].copy(), codes[4:8].copy(), 8, xlogx_table(300))
    for i in range(4):
        assert abs(p[i] - mutual_info_score(codes[i], codes[4 + i])) < 1e-10


def test_nonfinite_channels_give_nan_and_constant_gives_zero():
    x = np.random.default_rng(7).normal(size=(50, 3)).astype(np.float32)
    x[3, 0] = np.nan
    x[:, 1] = 4.0
    x[5, 2] = np.inf
    y = np.arange(50) % 3
    mi = est.channel_label_mi(x, y, 10, 3)
    assert np.isnan(mi[0]) and mi[1] == 0.0 and np.isnan(mi[2])


def test_joint_pca_codes_and_discrete_mi():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 600)
    x = rng.normal(size=(600, 20)) * 0.1
    x[:, :5] += y[:, None]
    scores = est.top_principal_components(x, 2)
    u, s, _ = np.linalg.svd((x - x.mean(0)) / x.std(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(scores[:, 0]), np.abs(u[:, 0] * s[0]), rtol=1e-4, atol=1e-4)
    joint = est.joint_codes(scores, 10)
    assert joint.max() < 100
    assert est.discrete_mi(joint, y) > 0.9 * scipy_entropy(np.bincount(y))


def test_concentration_metrics_match_hand_computations():
    mi = np.array([1.0, 1.0, 1.0, 1.0])
    assert metrics.gini(mi) == pytest.approx(0.0)
    assert metrics.norm_entropy(mi) == pytest.approx(1.0)
    assert metrics.topk_share(mi, 25) == pytest.approx(0.25)
    one_hot = np.array([0.0, 0.0, 0.0, 2.0])
    # ascending p = (0, 0, 0, 1): sum (2i - C - 1) p_(i) / C = (2*4 - 5) / 4
    assert metrics.gini(one_hot) == pytest.approx(3 / 4)
    assert metrics.norm_entropy(one_hot) == pytest.approx(0.0)
    assert metrics.topk_share(one_hot, 1) == pytest.approx(1.0)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert metrics.gini(p) == pytest.approx(((-3) * 0.1 + (-1) * 0.2 + 1 * 0.3 + 3 * 0.4) / 4)
    assert metrics.topk_share(p, 50) == pytest.approx(0.7)
    assert metrics.topk_share(p, 30) == pytest.approx(0.7)  # ceil(1.2) = 2 channels
    assert metrics.norm_entropy(p) == pytest.approx(-(p * np.log(p)).sum() / np.log(4))
    assert math.isnan(metrics.gini(np.zeros(4))) and math.isnan(metrics.norm_entropy(np.ones(1)))


def test_dynamics_helpers():
    input_mi = np.array([[1.0, 2.0, 3.0], [1.5, 2.0, 2.0], [2.0, 2.5, 2.5]])
    per_layer, mean_final = metrics.delta_input_mi(input_mi, best=2)
    np.testing.assert_allclose(per_layer, [1.0, 0.5, -0.5])
    assert mean_final == pytest.approx(-0.5)  # final third of 3 layers = the last one
    epochs = np.arange(6)
    label = np.array([[0.1], [0.5], [0.96], [1.0], [0.99], [1.0]])
    imi = np.array([[3.0], [3.0], [2.0], [1.9], [1.8], [1.7]])
    plateau, slope = metrics.post_plateau_slopes(label, imi, epochs)
    assert plateau[0] == 2 and slope[0] == pytest.approx(-0.1)
