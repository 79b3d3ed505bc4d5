"""Permutation nulls of channel-label MI against analytic values and references."""

import numpy as np
from sklearn.metrics import mutual_info_score

from analyzer.core.nulls import channel_null, expected_bias, permuted_labels


def _uniform_codes(rng, c, n, b):
    return rng.integers(0, b, size=(c, n)).astype(np.uint8)


def test_independent_channel_null_matches_bias_and_corrected_is_zero():
    rng = np.random.default_rng(0)
    n, b, k, c = 1000, 10, 5, 64
    labels = rng.integers(0, k, n)
    codes = _uniform_codes(rng, c, n, b)
    res = channel_null(codes, labels, permuted_labels(labels, 20, seed=3), b, k)
    bias = expected_bias(b, k, n)
    assert abs(res.null_mean.mean() - bias) < 0.25 * bias
    assert abs(res.observed.mean() - bias) < 0.25 * bias
    assert abs(res.corrected.mean()) < 0.25 * bias
    # p-values of independent channels are roughly uniform: few are small
    assert (res.pvalue <= 0.05).mean() < 0.2
    layer = res.layer()
    assert layer["label_mi_null_lo"] <= layer["label_mi_null"] <= layer["label_mi_null_hi"]
    assert abs(layer["label_mi_corrected"]) < 0.25 * bias


def test_label_copy_null_small_and_corrected_is_label_entropy():
    rng = np.random.default_rng(1)
    n, k = 500, 10
    labels = rng.integers(0, k, n)
    codes = np.stack([labels, labels]).astype(np.uint8)
    res = channel_null(codes, labels, permuted_labels(labels, 20, seed=0), k, k)
    p = np.bincount(labels) / n
    h = -(p * np.log(p)).sum()
    assert np.allclose(res.observed, h)
    assert res.null_mean.max() < 0.1 * h
    assert np.allclose(res.corrected, h - res.null_mean)
    assert abs(res.corrected.mean() - h) < 0.1 * h
    assert np.allclose(res.pvalue, 1 / 21)
    assert res.layer()["label_mi_pvalue"] == 1 / 21


def test_null_matches_sklearn_on_the_permuted_labels():
    rng = np.random.default_rng(2)
    n, b, k = 200, 7, 4
    labels = rng.integers(0, k, n)
    codes = _uniform_codes(rng, 3, n, b)
    perms = permuted_labels(labels, 5, seed=9)
    res = channel_null(codes, labels, perms, b, k)
    for c in range(3):
        assert np.isclose(res.observed[c], mutual_info_score(codes[c], labels))
        for p in range(5):
            assert np.isclose(res.null[p, c], mutual_info_score(codes[c], perms[p]))
        for kk in range(k):
            ind = (labels == kk).astype(int)
            assert np.isclose(res.class_observed[c, kk], mutual_info_score(codes[c], ind))
    # the null means are exact (tests/test_null_mean.py); 5 permutations scatter around them
    assert np.allclose(res.null.mean(axis=0), res.null_mean, rtol=0.5)


def test_nulls_reproducible_from_seed():
    labels = np.random.default_rng(4).integers(0, 3, 100)
    a, b = permuted_labels(labels, 4, seed=7), permuted_labels(labels, 4, seed=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, permuted_labels(labels, 4, seed=8))
    assert all(np.array_equal(np.sort(row), np.sort(labels)) for row in a)
    codes = np.random.default_rng(5).integers(0, 6, (5, 100)).astype(np.uint8)
    r1 = channel_null(codes, labels, a, 6, 3)
    r2 = channel_null(codes, labels, b, 6, 3)
    assert np.array_equal(r1.null, r2.null)
