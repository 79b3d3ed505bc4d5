"""kNN (Kraskov / Ross) MI of every channel against a discrete label: a sort, not a tree.

Ross (2014), "Mutual Information between Discrete and Continuous Data Sets", the estimator
of scikit-learn's ``mutual_info_classif`` (``_compute_mi_cd``), in nats:

    I = psi(N) + <psi(k_i)> - <psi(N_{y_i})> - <psi(m_i)>

d_i is the distance from sample i to its k-th nearest neighbour among the other samples of
its class (k_i = min(k, N_y - 1)), m_i the number of samples of any class (itself included)
within nextafter(d_i, 0) of it. Samples whose class has one member are left out, as in
scikit-learn. In 1-D the neighbours of a sample are adjacent in sorted order, so one
channel costs one sort plus O(N k) and two binary searches per sample.

Differences from ``mutual_info_classif``: no noise is added (scikit-learn adds
1e-10 * max(1, mean|x|) Gaussian noise to break ties) and the value is not clipped at 0
(a raw estimate averages without bias near 0). Ties (e.g. a ReLU channel's zeros) count as
in ``_compute_mi_cd`` on the same data: a sample whose k-th distance is 0 counts only its
tie group.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from scipy.special import digamma


@nb.njit(cache=True, nogil=True)
def _kth_distance(v, members, p, kk):
    """Distance from v[members[p]] to its kk-th nearest neighbour among members (sorted)."""
    x = v[members[p]]
    left, right = p - 1, p + 1
    d = 0.0
    for _ in range(kk):
        dl = x - v[members[left]] if left >= 0 else np.inf
        dr = v[members[right]] - x if right < members.size else np.inf
        if dl <= dr:
            d = dl
            left -= 1
        else:
            d = dr
            right += 1
    return d


@nb.njit(cache=True, nogil=True)
def _count_within(v, i, r):
    """Number of j with |v[j] - v[i]| <= r in sorted v (i included)."""
    lo, hi = 0, i  # first j in [0, i] with v[i] - v[j] <= r
    while lo < hi:
        mid = (lo + hi) // 2
        if v[i] - v[mid] <= r:
            hi = mid
        else:
            lo = mid + 1
    first = lo
    lo, hi = i, v.size - 1  # last j in [i, n) with v[j] - v[i] <= r
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if v[mid] - v[i] <= r:
            lo = mid
        else:
            hi = mid - 1
    return lo - first + 1


@nb.njit(cache=True, nogil=True)
def _one_channel(v, lab, counts, k, psi):
    """Ross MI (nats) of sorted values v (float64) with labels lab (sorted alongside)."""
    n = v.size
    n_classes = counts.size
    start = np.zeros(n_classes + 1, np.int64)
    for c in range(n_classes):
        start[c + 1] = start[c] + counts[c]
    fill = start[:-1].copy()
    members = np.empty(n, np.int64)
    for i in range(n):
        members[fill[lab[i]]] = i
        fill[lab[i]] += 1
    total = 0.0
    for c in range(n_classes):
        cls = members[start[c] : start[c + 1]]
        kk = min(k, cls.size - 1)
        for p in range(cls.size):
            i = cls[p]
            r = np.nextafter(_kth_distance(v, cls, p, kk), 0.0)
            total += psi[kk] - psi[cls.size] - psi[_count_within(v, i, r)]
    return psi[n] + total / n


@nb.njit(parallel=True, cache=True, nogil=True)
def _knn_mi_columns(values, labels, counts, k, psi):
    n, n_channels = values.shape
    out = np.empty(n_channels)
    for j in nb.prange(n_channels):
        col = np.empty(n)
        for i in range(n):
            col[i] = np.float64(values[i, j])
        order = np.argsort(col)  # quicksort: tie order changes no distance or count
        out[j] = _one_channel(col[order], labels[order], counts, k, psi)
    return out


def knn_label_mi(values: np.ndarray, labels: np.ndarray, k: int = 3) -> np.ndarray:
    """Ross kNN MI (nats) of each column of values (sample, channel) with labels (sample,).

    Returns (channel,) float64; NaN for a channel with a NaN/Inf value, and all NaN when
    fewer than two samples belong to classes with at least two members.
    """
    if k < 1:
        raise ValueError(f"knn k must be >= 1, got {k}")
    values = np.asarray(values)
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    keep = np.bincount(codes)[codes] > 1  # samples of singleton classes are left out
    values, codes = values[keep], codes[keep]
    _, codes = np.unique(codes, return_inverse=True)
    if codes.size < 2:
        return np.full(values.shape[1], np.nan)
    counts = np.bincount(codes).astype(np.int64)
    psi = digamma(np.arange(codes.size + 1, dtype=np.float64))
    finite = np.isfinite(values).all(axis=0)
    mi = _knn_mi_columns(np.ascontiguousarray(values), codes.astype(np.int64), counts, int(k), psi)
    return np.where(finite, mi, np.nan)
