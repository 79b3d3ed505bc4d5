"""Exact permutation-null means and the fast permutation kernel against brute force."""

import itertools

import numpy as np
import pytest
from scipy.stats import hypergeom

from analyzer.core.kernels import xlogx_table
from analyzer.core.null_mean import _expected_xlogx, exact_null_means
from analyzer.core.nulls import channel_null, permuted_labels


def test_expected_xlogx_matches_scipy_hypergeometric():
    n = 60
    xlogx = xlogx_table(n)
    for m in (0, 1, 7, 30, 59, 60):
        table = _expected_xlogx(n, m, xlogx)
        for a in range(n + 1):
            x = np.arange(max(0, a + m - n), min(a, m) + 1)
            ref = (hypergeom.pmf(x, n, m, a) * xlogx[x]).sum()
            assert np.isclose(table[a], ref, rtol=1e-10, atol=1e-12), (m, a)


def _all_permutations(labels):
    return np.array(list(itertools.permutations(labels)), dtype=np.int64)


def test_exact_means_equal_the_average_over_every_permutation():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1, 2, 2])  # N = 7: all 5,040 permutations
    codes = rng.integers(0, 3, (4, 7)).astype(np.uint8)
    codes[3] = 1  # a constant channel
    perms = _all_permutations(labels)
    res = channel_null(codes, labels, perms, 3, 3)
    assert np.allclose(res.null_mean, res.null.mean(axis=0), rtol=1e-12, atol=1e-14)
    assert res.null_mean[3] == 0.0
    for k in range(3):  # class indicator: the same kernel on the binary labels
        ind = channel_null(codes, (labels == k).astype(int), (perms == k).astype(int), 3, 2)
        assert np.allclose(res.class_null_mean[:, k], ind.null.mean(axis=0), atol=1e-14)


def test_exact_mean_agrees_with_many_random_permutations():
    rng = np.random.default_rng(1)
    n, b, k = 300, 8, 5
    labels = rng.integers(0, k, n)
    codes = np.minimum(rng.exponential(1.0, (6, n)) * 2, b - 1).astype(np.uint8)  # skewed bins
    res = channel_null(codes, labels, permuted_labels(labels, 2000, seed=2), b, k)
    se = res.null.std(axis=0) / np.sqrt(2000)
    assert (np.abs(res.null.mean(axis=0) - res.null_mean) < 4 * se).all()


def test_exact_means_refuse_inconsistent_sizes():
    with pytest.raises(ValueError, match="sum to N"):
        exact_null_means(np.array([[3, 4]]), np.array([2, 2]))


def _reference_null(codes, labels, perms, n_bins, n_classes):
    """The previous kernel's formula, one permutation at a time (pure Python sums, same order)."""
    n = len(labels)
    xlogx = xlogx_table(n)
    cls = 0.0
    for v in np.bincount(labels, minlength=n_classes):
        cls += xlogx[v]
    out = np.empty((len(perms), len(codes)))
    for c, row in enumerate(codes):
        marg = 0.0
        for v in np.bincount(row, minlength=n_bins):
            marg += xlogx[v]
        for p, perm in enumerate(perms):
            joint = np.bincount(
                row.astype(np.int64) * n_classes + perm, minlength=n_bins * n_classes
            )
            s = 0.0
            for v in joint:
                s += xlogx[v]
            mi = (s - marg - cls) / n + np.log(n)
            out[p, c] = mi if mi > 0.0 else 0.0
    return out


def test_permutation_nulls_are_bit_identical_to_the_previous_kernel():
    rng = np.random.default_rng(3)
    n, b, k = 400, 10, 6
    labels = rng.integers(0, k, n)
    codes = rng.integers(0, b, (12, n)).astype(np.uint8)
    codes[0] = np.where(rng.random(n) < 0.8, 0, codes[0])  # one dominant bin (the skipped one)
    codes[1] = 4  # constant
    codes[2] = np.where(rng.random(n) < 0.5, 2, 7)  # two equal-ish largest bins
    codes[3, : n // 2], codes[3, n // 2 :] = 1, 3  # an exact tie for the largest bin
    perms = permuted_labels(labels, 20, seed=5)
    ref = _reference_null(codes, labels, perms, b, k)
    for dtype in (np.int64, np.uint8):
        res = channel_null(codes, labels, perms.astype(dtype), b, k)
        assert np.array_equal(res.null, ref)
    # many classes: the scatter path instead of the dense one-hot rows
    many = rng.integers(0, 40, n)
    perms40 = permuted_labels(many, 7, seed=6)
    ref40 = _reference_null(codes, many, perms40, b, 40)
    assert np.array_equal(channel_null(codes, many, perms40, b, 40).null, ref40)
    # the observed counts given (as the fused pass's) instead of counted: the same results
    given = np.zeros((len(codes), b, k), dtype=np.int32)
    for c in range(len(codes)):
        np.add.at(given[c], (codes[c], labels), 1)
    again = channel_null(codes, labels, perms, b, k, label_counts=given)
    for name in ("observed", "null", "class_observed", "null_mean", "class_null_mean"):
        assert np.array_equal(getattr(again, name), getattr(res, name)), name
    # no permutations: exact means only
    none = channel_null(codes, labels, perms[:0], b, k)
    assert none.null.shape == (0, 12) and np.array_equal(none.null_mean, res.null_mean)
