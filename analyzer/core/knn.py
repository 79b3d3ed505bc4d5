"""kNN (Kraskov / Ross) MI of every channel against a discrete label: a sort, not a tree.

Ross (2014), "Mutual Information between Discrete and Continuous Data Sets", the estimator
of scikit-learn's ``mutual_info_classif`` (``_compute_mi_cd``), in nats:

    I = psi(N) + <psi(k_i)> - <psi(N_{y_i})> - <psi(m_i)>

d_i is the distance from sample i to its k-th nearest neighbour among the other samples of
its class (k_i = min(k, N_y - 1)), m_i the number of samples of any class (itself included)
within nextafter(d_i, 0) of it. Samples whose class has one member are left out, as in
scikit-learn.

In 1-D the neighbours of a sample are adjacent in sorted order, so one channel costs one
O(N) sort (bucket + insertion sort, radix sort when a bucket overflows) of the order-
preserving integer image of its float bits with the labels carried along, a stable
split of the sorted samples by class, O(k) steps per sample to its k-th neighbour within
its class, and for m_i a branch-free binary search between the nearest same-class values
outside the k-th distance (the k-th neighbour's own side is O(1)).

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
from numba.extending import overload
from scipy.special import digamma


def _float_bits(col):
    """The bits of a float array as unsigned integers of the same width (numba overload)."""
    raise NotImplementedError


@overload(_float_bits)
def _float_bits_impl(col):
    if col.dtype == nb.types.float32:
        return lambda col: col.view(np.uint32)
    return lambda col: col.view(np.uint64)


_BRACKET = 48  # a neighbour-count bracket this short is counted, not searched
_BUCKET_LIMIT = 48  # a fuller bucket sends the channel to the radix sort


@nb.njit(cache=True, nogil=True)
def _split_keys(col, lab, n_bytes, v_out, lab_out, key, key_lab):
    """Put the tie group at the column minimum (a ReLU channel's zeros) first in v_out /
    lab_out; write the order-preserving unsigned image of every other value's float bits
    to key (labels alongside in key_lab). Returns (size of the min group, min key, max key).
    """
    sign = np.uint64(1) << np.uint64(8 * n_bytes - 1)
    ones = (sign - np.uint64(1)) | sign
    low = col.min()
    bits = _float_bits(col)
    z = m = 0
    kmin, kmax = ones, np.uint64(0)
    for i in range(col.size):  # branch-free: both slots written, one index advances
        b = np.uint64(bits[i])
        kk = b ^ ones if b & sign else b | sign
        is_low = col[i] == low
        v_out[z] = low
        lab_out[z] = lab[i]
        key[m] = kk
        key_lab[m] = lab[i]
        z += is_low
        m += 1 - is_low
        kmin = min(kmin, ones if is_low else kk)
        kmax = max(kmax, kk)
    return z, kmin, kmax


@nb.njit(cache=True, nogil=True)
def _bucket_sort(key, key_lab, m, kmin, kmax, out_key, out_lab):
    """Sort key[:m] (labels alongside) into out_*: scatter into ~m/2 buckets by the top
    bits of key - kmin, then one insertion sort. False (nothing sorted) if a bucket holds
    more than _BUCKET_LIMIT keys."""
    span = kmax - kmin
    width = 0
    while width < 64 and (span >> np.uint64(width)) > np.uint64(0):
        width += 1
    n_buckets = 1
    while n_buckets * 2 <= max(m // 2, 1):
        n_buckets *= 2
    log_b = 0
    while (1 << log_b) < n_buckets:
        log_b += 1
    shift = np.uint64(max(width - log_b, 0))
    count = np.zeros(n_buckets + 1, np.int64)
    for i in range(m):
        count[((key[i] - kmin) >> shift) + np.uint64(1)] += 1
    if count.max() > _BUCKET_LIMIT:
        return False
    for b in range(1, n_buckets + 1):
        count[b] += count[b - 1]
    for i in range(m):
        b = (key[i] - kmin) >> shift
        p = count[b]
        count[b] = p + 1
        out_key[p] = key[i]
        out_lab[p] = key_lab[i]
    for i in range(1, m):  # only keys of one bucket are out of order
        kk, ll = out_key[i], out_lab[i]
        j = i - 1
        while j >= 0 and out_key[j] > kk:
            out_key[j + 1] = out_key[j]
            out_lab[j + 1] = out_lab[j]
            j -= 1
        out_key[j + 1] = kk
        out_lab[j + 1] = ll
    return True


@nb.njit(cache=True, nogil=True)
def _radix_sort(key, key_lab, m, n_bytes, out_key, out_lab):
    """LSD radix sort of key[:m] (labels alongside) into out_*, 8 bits per pass, passes
    whose byte is the same for every key skipped. key / key_lab are clobbered."""
    hist = np.zeros((n_bytes, 257), np.int64)
    for i in range(m):
        for d in range(n_bytes):
            hist[d, ((key[i] >> np.uint64(8 * d)) & np.uint64(255)) + 1] += 1
    src_k, dst_k, src_l, dst_l = key, out_key, key_lab, out_lab
    passes = 0
    for d in range(n_bytes):
        h = hist[d]
        if h.max() == m:
            continue
        for b in range(1, 257):
            h[b] += h[b - 1]
        shift = np.uint64(8 * d)
        for i in range(m):
            b = (src_k[i] >> shift) & np.uint64(255)
            p = h[b]
            h[b] = p + 1
            dst_k[p] = src_k[i]
            dst_l[p] = src_l[i]
        src_k, dst_k, src_l, dst_l = dst_k, src_k, dst_l, src_l
        passes += 1
    if passes % 2 == 0:
        out_key[:m] = key[:m]
        out_lab[:m] = key_lab[:m]


@nb.njit(cache=True, nogil=True)
def _sort_column(col, lab, n_bytes, v_out, lab_out, key, key_lab, out_key):
    """Sort finite col (float32/64) ascending into v_out (float64), lab carried to lab_out
    (the key arrays are scratch of length col.size)."""
    z, kmin, kmax = _split_keys(col, lab, n_bytes, v_out, lab_out, key, key_lab)
    m = col.size - z
    tail_lab = lab_out[z:]
    if not _bucket_sort(key, key_lab, m, kmin, kmax, out_key, tail_lab):
        _radix_sort(key, key_lab, m, n_bytes, out_key, tail_lab)
    sign = np.uint64(1) << np.uint64(8 * n_bytes - 1)
    ones = (sign - np.uint64(1)) | sign
    bits = _float_bits(col)  # col is free now: decode the sorted keys into it
    for i in range(m):
        kk = out_key[i]
        bits[i] = kk ^ sign if kk & sign else kk ^ ones
        v_out[z + i] = np.float64(col[i])


@nb.njit(cache=True, nogil=True, inline="always")
def _left_edge(v, x, r, a, bound):
    """First index j in (bound, a] of sorted v with x - v[j] <= r, given that a is one and
    bound (-1: none) is not: a vectorized count over a short bracket, else a branch-free
    binary search (no mispredicted branches)."""
    if a - bound <= _BRACKET:
        inside = 0
        for j in range(bound + 1, a):
            inside += x - v[j] <= r
        return a - inside
    base, length = bound, a - bound  # v[base] outside r, v[base + length] inside
    while length > 1:
        half = length >> 1
        mid = base + half
        base = base if x - v[mid] <= r else mid
        length -= half
    return base + 1


@nb.njit(cache=True, nogil=True, inline="always")
def _right_edge(v, x, r, b, bound):
    """Last index j in [b, bound) of sorted v with v[j] - x <= r, given that b is one and
    bound (v.size: none) is not: a vectorized count over a short bracket, else a
    branch-free binary search."""
    if bound - b <= _BRACKET:
        inside = 0
        for j in range(b + 1, bound):
            inside += v[j] - x <= r
        return b + inside
    base, length = bound, bound - b  # v[base] outside r, v[base - length] inside
    while length > 1:
        half = length >> 1
        mid = base - half
        base = base if v[mid] - x <= r else mid
        length -= half
    return base - 1


@nb.njit(cache=True, nogil=True, inline="always")
def _kth_window(cv, p, s0, s1, kk):
    """(distance, first index) of the narrowest window of kk + 1 consecutive values of
    sorted cv[s0:s1] around p, measured from cv[p]: its kk-th nearest neighbour distance.
    The class values just outside the window are at least that distance away."""
    x = cv[p]
    d, best = np.inf, p
    for w in range(max(s0, p - kk), min(p, s1 - 1 - kk) + 1):
        dw = max(x - cv[w], cv[w + kk] - x)
        better = dw < d  # selects, not branches: which window wins is unpredictable
        best = w if better else best
        d = dw if better else d
    return d, best


@nb.njit(cache=True, nogil=True, inline="always")
def _count_within(v, g, d, w, kk, s0, s1, cv, members, run_lo, run_hi):
    """m = samples j with |v[j] - v[g]| <= nextafter(d, 0) (g included), d > 0 the
    distance to the end of g's class window cv[w : w + kk + 1]. The window end at d
    bounds the count on its side in O(1); on the other side the class value beyond
    the window (checked to be outside r) bounds a short binary search."""
    x, r = v[g], np.nextafter(d, 0.0)
    lo, hi = run_lo[g], run_hi[g]
    lo_bound = members[w - 1] if w > s0 and x - cv[w - 1] > r else -1
    hi_bound = members[w + kk + 1] if w + kk + 1 < s1 and cv[w + kk + 1] - x > r else v.size
    if cv[w + kk] - x == d:  # the neighbour is on the right
        hi_bound = run_lo[members[w + kk]]
        hi = max(hi, hi_bound - 1)
    else:
        lo_bound = run_hi[members[w]]
        lo = min(lo, lo_bound + 1)
    if v[hi] - x > r or x - v[lo] > r:  # float rounding: search from g's tie group
        lo, hi, lo_bound, hi_bound = run_lo[g], run_hi[g], -1, v.size
    return _right_edge(v, x, r, hi, hi_bound) - _left_edge(v, x, r, lo, lo_bound) + 1


@nb.njit(cache=True, nogil=True)
def _sorted_channel_mi(v, lab, start, k, psi, cv, members, run_lo, run_hi):
    """Ross MI (nats) of sorted values v with labels lab; start: class offsets (K + 1,).

    cv, members, run_lo, run_hi: scratch (N,) arrays."""
    n = v.size
    r0 = 0
    for i in range(1, n + 1):  # the tie group [run_lo, run_hi] of every sorted position
        if i == n or v[i] != v[r0]:
            run_lo[r0:i] = r0
            run_hi[r0:i] = i - 1
            r0 = i
    fill = start[:-1].copy()
    for i in range(n):  # stable split by class: each class's values ascending
        c = lab[i]
        members[fill[c]] = i
        cv[fill[c]] = v[i]
        fill[c] += 1
    total = 0.0
    for c in range(start.size - 1):
        s0, s1 = start[c], start[c + 1]
        kk = min(k, s1 - s0 - 1)
        total -= (s1 - s0) * psi[s1 - s0]
        p = s0
        while p < s1:  # runs of equal values within the class
            q = p + 1
            while q < s1 and cv[q] == cv[p]:
                q += 1
            if q - p - 1 >= kk:  # k-th neighbour at distance 0: the tie rule, O(1) per run
                total += (q - p) * (psi[q - p] - psi[run_hi[members[p]] - run_lo[members[p]] + 1])
                p = q
                continue
            for i in range(p, q):  # fewer than k ties: the k-th distance is > 0
                d, w = _kth_window(cv, i, s0, s1, kk)
                m = _count_within(v, members[i], d, w, kk, s0, s1, cv, members, run_lo, run_hi)
                total += psi[kk] - psi[m]
            p = q
    return psi[n] + total / n


@nb.njit(parallel=True, cache=True, nogil=True)
def _knn_mi_columns(values, labels, start, k, psi, finite):
    n, n_channels = values.shape
    n_bytes = values.itemsize
    out = np.full(n_channels, np.nan)
    for j in nb.prange(n_channels):
        if not finite[j]:
            continue
        col = np.empty(n, values.dtype)
        for i in range(n):
            col[i] = values[i, j]
        v, cv = np.empty(n), np.empty(n)
        lab = np.empty(n, np.int64)
        key, out_key = np.empty(n, np.uint64), np.empty(n, np.uint64)
        key_lab = np.empty(n, np.int64)
        _sort_column(col, labels, n_bytes, v, lab, key, key_lab, out_key)
        members = np.empty(n, np.int64)
        run_lo, run_hi = np.empty(n, np.int64), np.empty(n, np.int64)
        out[j] = _sorted_channel_mi(v, lab, start, k, psi, cv, members, run_lo, run_hi)
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
