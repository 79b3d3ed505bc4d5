"""kNN (Kraskov / Ross) MI of every channel against a discrete label: a sort, not a tree.

Ross (2014), "Mutual Information between Discrete and Continuous Data Sets", the estimator
of scikit-learn's ``mutual_info_classif`` (``_compute_mi_cd``), in nats:

    I = psi(N) + <psi(k_i)> - <psi(N_{y_i})> - <psi(m_i)>

d_i is the distance from sample i to its k-th nearest neighbour among the other samples of
its class (k_i = min(k, N_y - 1)), m_i the number of samples of any class (itself included)
within nextafter(d_i, 0) of it. Samples whose class has one member are left out, as in
scikit-learn.

In 1-D the neighbours of a sample are adjacent in sorted order, so one channel costs one
O(N) sort (``analyzer.core.knn_sort``) with the labels carried along, a stable split of
the sorted samples by class, O(k) steps per sample to its k-th neighbour within its class,
and for m_i, on each side, a walk between the last same-class value within the k-th
distance and the first beyond it (consecutive class members, ~N / N_y samples apart; a
binary search when they are far apart): the k-th neighbour's own side takes no step.
Channels go in blocks of 16 (one thread each): the block is transposed once and its
channels reuse one set of work buffers (float64 values: differences are taken in float64,
as in the definition).

Ties (a ReLU channel's zeros: a point mass) follow the rule of Gao et al. (2017) for
discrete-continuous mixtures: a sample whose k-th same-class neighbour is at distance 0
uses k_i = its same-class tie group and m_i = its tie group over all classes (both with
itself, as the open ball of the continuous case counts itself: this choice has no
O(1/count) bias). On a point mass this is the plug-in MI with digammas for logs, ~0 when
the label is independent; scikit-learn's ``_compute_mi_cd`` keeps k_i = k
there and is biased by up to -log(tie group / k) (about -2 nats for a ReLU channel at
N = 3925). Without ties the two are equal. Differences from ``mutual_info_classif``: no
noise is added (scikit-learn adds 1e-10 * max(1, mean|x|) Gaussian noise to break ties)
and the value is not clipped at 0 (a raw estimate averages without bias near 0).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from scipy.special import digamma

from analyzer.core.knn_sort import sort_column

_BLOCK = 16  # channels transposed together: one 64-byte line of float32 per sample row
_LONG = 64  # a bracket longer than this is binary-searched, a shorter one walked


@nb.njit(cache=True, nogil=True, inline="always")
def _last_inside(v, x, d, a, b):
    """Last index j in [a, b) of sorted v with v[j] - x < d, given a is one, b (v.size:
    none) is not: walked from b (no step on the k-th neighbour's side, ~N / (2 N_y) on the
    other), binary-searched when the bracket is long."""
    if b - a > _LONG:
        while b - a > 1:
            mid = (a + b) >> 1
            inside = v[mid] - x < d
            a = mid if inside else a
            b = b if inside else mid
        return a
    j = b - 1
    while v[j] - x >= d:
        j -= 1
    return j


@nb.njit(cache=True, nogil=True, inline="always")
def _first_inside(v, x, d, a, b):
    """First index j in (b, a] of sorted v with x - v[j] < d, given a is one, b (-1: none)
    is not; the mirror of :func:`_last_inside`."""
    if a - b > _LONG:
        while a - b > 1:
            mid = (a + b) >> 1
            inside = x - v[mid] < d
            a = mid if inside else a
            b = b if inside else mid
        return a
    j = b + 1
    while x - v[j] >= d:
        j += 1
    return j


@nb.njit(cache=True, nogil=True, inline="always")
def _kth_distance(cv, p, s0, s1, kk):
    """(distance, first index) of the narrowest window of kk + 1 consecutive values of
    sorted cv[s0:s1] around p, measured from cv[p]: its kk-th nearest neighbour distance."""
    x = np.float64(cv[p])  # differences in float64, as the definition
    d, best = np.inf, p
    for w in range(max(s0, p - kk), min(p, s1 - 1 - kk) + 1):
        dw = max(x - cv[w], cv[w + kk] - x)
        better = dw < d  # selects, not branches: which window wins is unpredictable
        best = w if better else best
        d = dw if better else d
    return d, best


@nb.njit(cache=True, nogil=True, inline="always")
def _count_within(v, cv, members, p, w, kk, s0, s1, d):
    """m = samples j with |v[j] - cv[p]| < d (p included), d > 0 the k-th distance of class
    position p and cv[w : w + kk + 1] its window. On each side the last class value within
    d and the first beyond it bracket the edge: consecutive class members, ~N / N_y apart."""
    x = np.float64(cv[p])  # differences in float64, as the definition
    hi = w + kk - (cv[w + kk] - x >= d)  # the last class position with cv - x < d
    lo = w + (x - cv[w] >= d)  # the first with x - cv < d
    if (
        cv[hi] - x >= d
        or x - cv[lo] >= d
        or (hi + 1 < s1 and cv[hi + 1] - x < d)
        or (lo > s0 and x - cv[lo - 1] < d)
    ):  # ties at distance d: the window's ends need not be the last / first inside
        while cv[hi] - x >= d:
            hi -= 1
        while hi + 1 < s1 and cv[hi + 1] - x < d:
            hi += 1
        while x - cv[lo] >= d:
            lo += 1
        while lo > s0 and x - cv[lo - 1] < d:
            lo -= 1
    right = _last_inside(v, x, d, members[hi], members[hi + 1] if hi + 1 < s1 else v.size)
    left = _first_inside(v, x, d, members[lo], members[lo - 1] if lo > s0 else -1)
    return right - left + 1


@nb.njit(cache=True, nogil=True)
def _class_sum(v, cv, members, s0, s1, k, psi):
    """Sum over class positions [s0, s1) of psi(k_i) - psi(m_i) (the tie rule where the
    k-th distance is 0: a run of >= k_i + 1 equal class values, taken whole at its start)."""
    kk = min(k, s1 - s0 - 1)
    total = 0.0
    p = s0
    while p < s1:
        x = cv[p]
        if p + kk < s1 and cv[p + kk] == x:  # p starts a run of >= kk + 1 equal values
            q = p + kk + 1
            while q < s1 and cv[q] == x:
                q += 1
            tie = np.searchsorted(v, x, "right") - np.searchsorted(v, x, "left")
            total += (q - p) * (psi[q - p] - psi[tie])
            p = q
            continue
        d, w = _kth_distance(cv, p, s0, s1, kk)
        total += psi[kk] - psi[_count_within(v, cv, members, p, w, kk, s0, s1, d)]
        p += 1
    return total


@nb.njit(cache=True, nogil=True)
def _sorted_channel_mi(v, lab, start, k, psi, cv, members):
    """Ross MI (nats) of sorted values v with labels lab; start: class offsets (K + 1,).

    cv, members: scratch (N,) arrays (each class's values ascending, their indices in v).
    """
    n = lab.size
    fill = start[:-1].copy()
    for i in range(n):  # stable split by class
        c = lab[i]
        f = fill[c]
        members[f] = i
        cv[f] = v[i]
        fill[c] = f + 1
    total = 0.0
    for c in range(start.size - 1):
        s0, s1 = start[c], start[c + 1]
        total += _class_sum(v, cv, members, s0, s1, k, psi) - (s1 - s0) * psi[s1 - s0]
    return psi[n] + total / n


@nb.njit(parallel=True, cache=True, nogil=True)
def _knn_mi_columns(values, labels, start, k, psi, finite):
    """Per block of _BLOCK channels (one thread): transpose the block once (rows of the
    sample-major input are read whole), then sort and count channel by channel in
    buffers allocated once per block."""
    n, n_channels = values.shape
    n_bytes = values.itemsize
    out = np.full(n_channels, np.nan)
    for b in nb.prange((n_channels + _BLOCK - 1) // _BLOCK):
        c0 = b * _BLOCK
        width = min(_BLOCK, n_channels - c0)
        block = np.empty((width, n), values.dtype)
        for i in range(n):
            for j in range(width):
                block[j, i] = values[i, c0 + j]
        v, cv = np.empty(n), np.empty(n)  # float64: faster here than float32 (conversions)
        members = np.empty(n, np.int64)
        lab, key_lab = np.empty(n, np.int64), np.empty(n, np.int64)
        key, out_key = np.empty(n, np.uint64), np.empty(n, np.uint64)
        for j in range(width):
            if finite[c0 + j]:
                sort_column(block[j], labels, n_bytes, v, lab, key, key_lab, out_key)
                out[c0 + j] = _sorted_channel_mi(v, lab, start, k, psi, cv, members)
    return out


def knn_label_mi(values: np.ndarray, labels: np.ndarray, k: int = 3) -> np.ndarray:
    """Ross kNN MI (nats) of each column of values (sample, channel) with labels (sample,).

    Returns (channel,) float64; NaN for a channel with a NaN/Inf value, and all NaN when
    fewer than two samples belong to classes with at least two members.
    """
    if k < 1:
        raise ValueError(f"knn k must be >= 1, got {k}")
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    keep = np.bincount(codes)[codes] > 1  # samples of singleton classes are left out
    if not keep.all():
        values, codes = values[keep], codes[keep]
    _, codes = np.unique(codes, return_inverse=True)
    if codes.size < 2:
        return np.full(values.shape[1], np.nan)
    start = np.concatenate([[0], np.cumsum(np.bincount(codes))]).astype(np.int64)
    psi = digamma(np.arange(codes.size + 1, dtype=np.float64))
    finite = np.isfinite(values).all(axis=0)
    return _knn_mi_columns(
        np.ascontiguousarray(values), codes.astype(np.int64), start, int(k), psi, finite
    )


def knn_layer_mi(projection: np.ndarray, labels: np.ndarray, k: int = 3) -> float:
    """Ross kNN MI (nats) of a (sample, d) projection with labels, max-norm distances.

    The same estimator in d dimensions (KD-trees: scipy's cKDTree, Chebyshev metric as in
    Kraskov et al.; the same tie rule): in 1-D it equals :func:`knn_label_mi`. NaN for
    NaN/Inf values.
    """
    from scipy.spatial import cKDTree

    if k < 1:
        raise ValueError(f"knn k must be >= 1, got {k}")
    t = np.asarray(projection, dtype=np.float64)
    if not np.isfinite(t).all():
        return float("nan")
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    counts = np.bincount(codes)
    keep = counts[codes] > 1
    t, codes = t[keep], codes[keep]
    if codes.size < 2:
        return float("nan")
    radius = np.empty(codes.size)
    k_all = np.empty(codes.size)
    for c in np.unique(codes):
        idx = np.flatnonzero(codes == c)
        kk = min(k, idx.size - 1)
        tree = cKDTree(t[idx])
        d = tree.query(t[idx], k=kk + 1, p=np.inf)[0][:, -1]  # [:, 0] is the sample itself
        radius[idx] = np.nextafter(d, 0)
        k_all[idx] = kk
        tied = d == 0  # the tie rule of knn_label_mi: k_i = same-class tie group
        if tied.any():
            k_all[idx[tied]] = tree.query_ball_point(
                t[idx[tied]], 0.0, p=np.inf, return_length=True
            )
    m = cKDTree(t).query_ball_point(t, radius, p=np.inf, return_length=True)
    n_y = np.bincount(codes)[codes]
    return float(digamma(codes.size) + np.mean(digamma(k_all) - digamma(n_y) - digamma(m)))
