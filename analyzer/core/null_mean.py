"""Exact mean of the label-permutation null of channel-label MI (no permutations needed).

Under a uniformly random permutation pi of the labels, a channel's bin sizes a_b and the class
sizes n_k stay fixed and each cell n_bk of its (bin, class) table is hypergeometric: a_b draws
without replacement from N samples of which n_k are in class k. The plug-in MI

    I = (sum_bk n_bk log n_bk - sum_b a_b log a_b - sum_k n_k log n_k) / N + log N

is a sum of cell terms, so its mean over all N! permutations is exact from the tables
``E_m[a] = E[x log x], x ~ Hypergeometric(N, m, a)`` (m = n_k): B K lookups per channel. The
class-indicator MI I(T; 1[pi(Y) = k]) has cells n_bk and a_b - n_bk, the latter
Hypergeometric(N, N - n_k, a_b), so its exact null mean comes from the tables of n_k and N - n_k.

The same holds for the plug-in MI of two binned variables under a random permutation of one
against the other (:func:`pair_null_means`: the bias level of layer-layer MI, whose cells
are Hypergeometric(N, c_d, a_b) with the other variable's bin sizes c_d as the classes).

Tables: for each distinct class size, every a in 0..N, the pmf from its mode outwards by the
ratio recurrence until a term falls below 1e-30 of the mode's (the pmf is log-concave, so the
rest is negligible), normalized by the sum; cost ~O(N sqrt(N)) per size, once per process.
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np

from analyzer.core.plugin import at_least_zero, mi_from_xlogx, xlogx_table

_TAIL = 1e-30  # pmf terms below this fraction of the mode's are dropped (see the module doc)
_PAIR_TAIL = 1e-18  # the pair null: dropped terms change a cell by < 1e-14 of its value


@nb.njit(cache=True, nogil=True)
def _cell(n, m, a, xlogx, tail):
    """E[x log x] for x ~ Hypergeometric(population n, m successes, a draws); pmf terms below
    ``tail`` of the mode's are dropped."""
    rest = n - m
    lo = max(0, a - rest)
    hi = min(a, m)
    mode = ((a + 1) * (m + 1)) // (n + 2)
    mode = min(max(mode, lo), hi)
    total = 1.0
    acc = xlogx[mode]
    w = 1.0
    x = mode
    while x < hi and w > tail:  # p(x + 1) / p(x) = (m - x)(a - x) / ((x + 1)(rest - a + x + 1))
        w *= (m - x) * (a - x) / ((x + 1.0) * (rest - a + x + 1.0))
        x += 1
        total += w
        acc += w * xlogx[x]
    w = 1.0
    x = mode
    while x > lo and w > tail:  # p(x - 1) / p(x) = x (rest - a + x) / ((m - x + 1)(a - x + 1))
        w *= x * (rest - a + x) / ((m - x + 1.0) * (a - x + 1.0))
        x -= 1
        total += w
        acc += w * xlogx[x]
    return acc / total


@nb.njit(cache=True, nogil=True)
def _expected_xlogx(n, m, xlogx):
    """(n + 1,) float64: E[x log x] for x ~ Hypergeometric(population n, m successes, a draws)."""
    out = np.empty(n + 1)
    for a in range(n + 1):
        out[a] = _cell(n, m, a, xlogx, _TAIL)
    return out


@functools.lru_cache(maxsize=8)
def tables(n: int, class_sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(inside (K, n + 1), outside (K, n + 1)): E[x log x] of a class-k cell and of its complement.

    inside[k, a] = E[x log x], x ~ Hypergeometric(n, n_k, a); outside[k, a] the same with n - n_k.
    """
    xlogx = xlogx_table(n)
    cache: dict[int, np.ndarray] = {}

    def row(m: int) -> np.ndarray:
        if m not in cache:
            cache[m] = _expected_xlogx(n, m, xlogx)
        return cache[m]

    inside = np.stack([row(m) for m in class_sizes])
    outside = np.stack([row(n - m) for m in class_sizes])
    return inside, outside


@nb.njit(parallel=True, cache=True, nogil=True)
def _means(bin_sizes, class_sizes, inside, outside, xlogx):
    c_total, n_bins = bin_sizes.shape
    n_classes = len(class_sizes)
    n = 0
    cls = 0.0
    for k in range(n_classes):
        n += class_sizes[k]
        cls += xlogx[class_sizes[k]]
    log_n = np.log(n)
    mean = np.empty(c_total)
    cls_mean = np.empty((c_total, n_classes))
    for c in nb.prange(c_total):
        marg = 0.0
        for b in range(n_bins):
            marg += xlogx[bin_sizes[c, b]]
        s = 0.0
        for b in range(n_bins):
            a = bin_sizes[c, b]
            for k in range(n_classes):
                s += inside[k, a]
        mean[c] = at_least_zero(mi_from_xlogx(s - marg - cls, n, log_n))
        for k in range(n_classes):
            t = 0.0
            for b in range(n_bins):
                a = bin_sizes[c, b]
                t += inside[k, a] + outside[k, a]
            t -= marg + xlogx[class_sizes[k]] + xlogx[n - class_sizes[k]]
            cls_mean[c, k] = at_least_zero(mi_from_xlogx(t, n, log_n))
    return mean, cls_mean


def exact_null_means(
    bin_sizes: np.ndarray, class_sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact permutation-null means, nats: (E[I(T_c; pi(Y))] (C,), E[I(T_c; 1[pi(Y) = k])] (C, K)).

    bin_sizes: (C, B) samples per bin of each channel; class_sizes: (K,) samples per class
    (both sum to N). The mean is over all permutations pi of the labels (not a sample of them).
    """
    bin_sizes = np.ascontiguousarray(bin_sizes, dtype=np.int64)
    class_sizes = np.ascontiguousarray(class_sizes, dtype=np.int64)
    n = int(class_sizes.sum())
    if bin_sizes.ndim != 2 or (len(bin_sizes) and (bin_sizes.sum(axis=1) != n).any()):
        raise ValueError("bin_sizes (C, B) must sum to N = class_sizes.sum() in every channel")
    inside, outside = tables(n, tuple(int(m) for m in class_sizes))
    return _means(bin_sizes, class_sizes, inside, outside, xlogx_table(n))


@nb.njit(cache=True, nogil=True)
def _pair_means(sizes_x, sizes_y, xlogx):
    n_pairs, n_bins = sizes_x.shape
    out = np.empty(n_pairs)
    for p in range(n_pairs):
        n = 0
        marg = 0.0
        for b in range(n_bins):
            n += sizes_x[p, b]
            marg += xlogx[sizes_x[p, b]] + xlogx[sizes_y[p, b]]
        s = 0.0
        for b in range(n_bins):
            a = sizes_x[p, b]
            if a == 0:
                continue
            for d in range(sizes_y.shape[1]):
                m = sizes_y[p, d]
                if m > 0:
                    s += _cell(n, m, a, xlogx, _PAIR_TAIL)
        out[p] = at_least_zero(mi_from_xlogx(s - marg, n, np.log(n)))
    return out


def pair_null_means(sizes_x: np.ndarray, sizes_y: np.ndarray) -> np.ndarray:
    """Exact permutation-null means of the plug-in I(X_p; Y_p) of P variable pairs, nats (P,).

    sizes_x, sizes_y: (P, B) samples per bin of each pair's two variables (each row sums to
    N). The mean is over all permutations of Y's samples against X's (independence with both
    marginals kept): every cell of the (B, B) table is Hypergeometric(N, c_d, a_b), as for the
    label null above with Y's bins in place of the classes.
    """
    sizes_x = np.ascontiguousarray(sizes_x, dtype=np.int64)
    sizes_y = np.ascontiguousarray(sizes_y, dtype=np.int64)
    if sizes_x.shape[0] != sizes_y.shape[0] or (sizes_x.sum(1) != sizes_y.sum(1)).any():
        raise ValueError("sizes_x and sizes_y: (P, B) bin sizes with equal row sums (N)")
    if not len(sizes_x):
        return np.zeros(0)
    return _pair_means(sizes_x, sizes_y, xlogx_table(int(sizes_x[0].sum())))
