"""kNN (Kraskov / Ross) MI of every channel against a discrete label: a sort, not a tree.

Ross (2014), "Mutual Information between Discrete and Continuous Data Sets", the estimator
of scikit-learn's ``mutual_info_classif`` (``_compute_mi_cd``), in nats:

    I = psi(N) + <psi(k_i)> - <psi(N_{y_i})> - <psi(m_i)>

d_i is the distance from sample i to its k-th nearest neighbour among the other samples of
its class (k_i = min(k, N_y - 1)), m_i the number of samples of any class (itself included)
within nextafter(d_i, 0) of it. Samples whose class has one member are left out, as in
scikit-learn.

In 1-D the neighbours of a sample are adjacent in sorted order, so one channel costs one
O(N) sort (``analyzer.core.knn_sort``) with the labels carried along and a stable split of
the sorted samples by class into one padded row (each class between k values of -inf and
k of +inf, so no window needs a bound check). Then, per class, loops over the whole class
that LLVM vectorizes: the k-th distance d_i as the narrowest of the k_i + 1 windows of
k_i + 1 consecutive class values around each sample (k_i + 1 passes). For m_i, the sort's
value buckets (about 4 per value, of equal width in value or, on a skewed channel, in the
float64 bits: ``analyzer.core.knn_sort``) locate each edge of the ball (x - d_i, x + d_i) in
the whole sorted channel: each threshold's bucket start for the whole class first
(vectorized passes), then 8 values compared at once (``analyzer.core.lanes``) from the start
of the bucket before the threshold's, the edge confirmed by the value before them. Where
that fails (more than 8 values in the two buckets; a threshold rounded across a border: ~3e-5
of the samples of a Gaussian channel) the window moves 8 values at a time until it holds the
edge. Where the sort had no buckets (the radix path), the edge lies between the last class
member inside and the next one (the "gap", ~N / N_y samples): 8-lane compares over 32
values, binary search past them. The tie group at the channel's minimum (a ReLU channel's
zeros, which the sort already sets apart) is counted per class and, where it is a run of
>= k_i + 1, taken whole by the tie rule below without entering the split or the window
passes. Channels go in blocks of 16
(one thread each): the block is transposed once and its channels reuse one set of work
buffers (float64 values: differences are taken in float64, as in the definition).

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

from analyzer.core.knn_sort import BUCKETS_PER_VALUE, bucket_dtype, bucket_of, sort_column
from analyzer.core.lanes import LANES, count_left_within, count_right_within

_BLOCK = 16  # channels transposed together: one 64-byte line of float32 per sample row
_GAP = 32  # a gap up to this long is counted by 8-lane compares, a longer one binary-searched


@nb.njit(cache=True, nogil=True, inline="always")
def _right_edge(padded, x, d, inside, outside):
    """Last index j of the sorted channel with v[j] - x < d, given inside is such an index
    and outside (n: none) is not; padded = v between _GAP values of -inf and _GAP of +inf."""
    if outside - inside <= _GAP:
        count = 0
        for q in range(_GAP // LANES):
            count += count_right_within(padded, _GAP + inside + 1 + LANES * q, x, d)
        return inside + count
    while outside - inside > 1:
        mid = (inside + outside) >> 1
        within = padded[_GAP + mid] - x < d
        inside = mid if within else inside
        outside = outside if within else mid
    return inside


@nb.njit(cache=True, nogil=True, inline="always")
def _left_edge(padded, x, d, inside, outside):
    """First index j with x - v[j] < d, given inside is one and outside (-1: none) is not;
    the mirror of :func:`_right_edge`."""
    if inside - outside <= _GAP:
        count = 0
        for q in range(_GAP // LANES):
            count += count_left_within(padded, _GAP + inside - LANES * (q + 1), x, d)
        return inside - count
    while inside - outside > 1:
        mid = (inside + outside) >> 1
        within = x - padded[_GAP + mid] < d
        inside = mid if within else inside
        outside = outside if within else mid
    return inside


@nb.njit(cache=True, nogil=True, inline="always")
def _bucket_before(b, offset, ends):
    """Index in the sorted channel where the bucket before bucket b starts (where b - 2 ends)."""
    return offset + ends[max(b - 2, 0)] * (b >= 2)


@nb.njit(cache=True, nogil=True, inline="always")
def _edges_by_bucket(padded, x, dist, buckets, above, below):
    """above[t] = right - left edge of the ball (x[t] - d, x[t] + d) in the sorted channel
    and below[t] = whether found, from the sort's value buckets: 8 values compared from the
    start of the bucket before each threshold's bucket. Not found where that window does not
    hold the edge (a fuller bucket, a threshold at a bucket's border after rounding): the
    caller searches then. Bucket starts are computed for all samples first (vectorized)."""
    offset, low, scale, binary, n_buckets, ends = buckets
    top = n_buckets - 1.0
    size = x.size
    for t in range(size):  # each threshold's bucket (vectorized)
        above[t] = bucket_of(x[t] + dist[t], low, scale, binary, top)
        below[t] = bucket_of(x[t] - dist[t], low, scale, binary, top)
    for t in range(size):  # where the bucket before it starts
        above[t] = _bucket_before(above[t], offset, ends)
        below[t] = _bucket_before(below[t], offset, ends)
    first = padded[_GAP]
    for t in range(size):
        xt, d = x[t], dist[t]
        start = above[t]
        inside = count_right_within(padded, _GAP + start, xt, d)
        right = start - 1 + inside
        found = (inside < LANES) & (padded[_GAP + start - 1] - xt < d)  # pads: -inf before
        start = below[t]
        inside = count_left_within(padded, _GAP + start, xt, d)
        left = start + LANES - inside
        found_left = (inside > 0) & (not xt - padded[_GAP + start - 1] < d)
        min_inside = xt - first < d  # the channel's minimum is inside (a ReLU zero group)
        above[t] = right - (0 if min_inside else left)
        below[t] = found & (found_left | min_inside)


@nb.njit(cache=True, nogil=True)
def _edges_near(padded, x, d, buckets):
    """right - left edge of the ball (x - d, x + d) in the sorted channel where the 8 values
    from each threshold's bucket start did not hold its edge: the window moves 8 values at a
    time (left until the value before it is on the right side of the edge, then right until
    the edge is inside it; both sides are monotone in the value, and the pads stop it)."""
    offset, low, scale, binary, n_buckets, ends = buckets
    top = n_buckets - 1.0
    start = _bucket_before(bucket_of(x + d, low, scale, binary, top), offset, ends)
    while start > 0 and not padded[_GAP + start - 1] - x < d:
        start = max(start - LANES, 0)
    inside = count_right_within(padded, _GAP + start, x, d)
    while inside == LANES:
        start += LANES
        inside = count_right_within(padded, _GAP + start, x, d)
    right = start - 1 + inside
    start = _bucket_before(bucket_of(x - d, low, scale, binary, top), offset, ends)
    while start > 0 and x - padded[_GAP + start - 1] < d:
        start = max(start - LANES, 0)
    inside = count_left_within(padded, _GAP + start, x, d)
    while inside == 0:
        start += LANES
        inside = count_left_within(padded, _GAP + start, x, d)
    return right - (start + LANES - inside)


@nb.njit(cache=True, nogil=True, inline="always")
def _kth_distances(row, o, size, kk, dist):
    """dist[t] = the kk-th nearest same-class distance of row[o + t] (class values ascending
    in row[o : o + size], k pads of -inf before and +inf after): the narrowest window of
    kk + 1 consecutive class values around it. One pass per window position (vectorized)."""
    x = row[o : o + size]
    for t in range(size):
        dist[t] = np.inf
    for i in range(kk + 1):  # the window row[p - kk + i : p + i + 1]
        lower = row[o - kk + i : o - kk + i + size]
        upper = row[o + i : o + i + size]
        for t in range(size):
            left, right = x[t] - lower[t], upper[t] - x[t]  # float64, as the definition
            width = left if left > right else right
            dist[t] = width if width < dist[t] else dist[t]


@nb.njit(cache=True, nogil=True, inline="always")
def _class_within(row, o, size, kk, dist, above, below):
    """above[t] / below[t] = class members above / below row[o + t] within dist[t] (fewer
    than kk on each side by the definition of the k-th distance; pads never count)."""
    x = row[o : o + size]
    for t in range(size):
        above[t] = 0
        below[t] = 0
    for i in range(1, kk + 1):
        upper = row[o + i : o + i + size]
        lower = row[o - i : o - i + size]
        for t in range(size):
            above[t] += upper[t] - x[t] < dist[t]
            below[t] += x[t] - lower[t] < dist[t]


@nb.njit(cache=True, nogil=True)
def _class_sum(padded, n, row, position, o, size, kk, psi, dist, within, buckets):
    """Sum over one class (values row[o : o + size], their indices in the sorted channel
    position[o : o + size]; before them -inf / -1 pads or values of the class, after them
    +inf / n pads) of psi(k_i) - psi(m_i). A run of >= kk + 1 equal class values has k-th
    distance 0: the tie rule, taken whole."""
    above, below = within[0], within[1]
    _kth_distances(row, o, size, kk, dist)
    x = row[o : o + size]
    if buckets[4] > 0:  # the sort's value buckets locate both edges; a search where not
        _edges_by_bucket(padded, x, dist, buckets, above, below)
        for t in range(size):  # m_i - 1 into above; garbage where d == 0: not read
            if not below[t]:  # a bucket fuller than 8 values, a threshold rounded across
                above[t] = _edges_near(padded, x[t], dist[t], buckets)
    else:
        _class_within(row, o, size, kk, dist, above, below)
        for t in range(size):  # m_i - 1 into above (no branch but the gap's length)
            hi, lo = o + t + above[t], o + t - below[t]  # last / first class member inside
            right = _right_edge(padded, x[t], dist[t], position[hi], position[hi + 1])
            left = _left_edge(padded, x[t], dist[t], position[lo], position[lo - 1])
            above[t] = right - left
    total = 0.0
    ties = 0
    for t in range(size):
        tied = dist[t] == 0.0
        ties += tied
        total += 0.0 if tied else psi[kk] - psi[above[t] + 1]
    if ties:
        total += _tie_runs(padded[_GAP : _GAP + n], x, dist, psi)
    return total


@nb.njit(cache=True, nogil=True)
def _tie_runs(values, x, dist, psi):
    """Sum of psi(k_i) - psi(m_i) over the class samples with k-th distance 0 (x ascending):
    each is in a run of >= k_i + 1 equal class values; k_i = the run, m_i = the value's tie
    group in the whole sorted channel (values)."""
    total = 0.0
    t = 0
    while t < x.size:
        if dist[t] != 0.0:
            t += 1
            continue
        q = t + 1
        while q < x.size and x[q] == x[t]:
            q += 1
        tie = np.searchsorted(values, x[t], "right") - np.searchsorted(values, x[t], "left")
        total += (q - t) * (psi[q - t] - psi[tie])
        t = q
    return total


@nb.njit(cache=True, nogil=True)
def _class_rows(start, k, n):
    """Offsets of each class in the padded class row, and the row's pads: (offsets (K,),
    row (n + 2kK,) float64, position (n + 2kK,) int64)."""
    n_classes = start.size - 1
    offsets = np.empty(n_classes, np.int64)
    row = np.empty(n + 2 * k * n_classes)
    position = np.empty(n + 2 * k * n_classes, np.int64)
    for c in range(n_classes):
        o = start[c] + (2 * c + 1) * k
        offsets[c] = o
        end = o + start[c + 1] - start[c]
        row[o - k : o] = -np.inf
        position[o - k : o] = -1
        row[end : end + k] = np.inf
        position[end : end + k] = n
    return offsets, row, position


@nb.njit(cache=True, nogil=True)
def _sorted_channel_mi(
    padded, lab, n_low, buckets, start, k, psi, offsets, row, position, dist, within
):
    """Ross MI (nats) of the sorted channel padded[_GAP : _GAP + n] with labels lab, whose
    first n_low values are the tie group at its minimum (a ReLU channel's zeros); start:
    class offsets (K + 1,); offsets, row, position: see :func:`_class_rows`; dist (largest
    class,) float64 and within (2, largest class) int64: scratch."""
    n = lab.size
    low_count = np.zeros(start.size - 1, np.int64)
    for i in range(n_low):
        low_count[lab[i]] += 1
    fill = offsets.copy()
    for c in range(start.size - 1):  # the minimum's group: no index needed but the last
        row[offsets[c] : offsets[c] + low_count[c]] = padded[_GAP]
        position[offsets[c] : offsets[c] + low_count[c]] = n_low - 1  # any one of them
        fill[c] += low_count[c]
    with_positions = buckets[4] == 0  # only the class-gap search (no buckets) reads them
    for i in range(n_low, n):  # stable split of the rest by class
        c = lab[i]
        f = fill[c]
        if with_positions:  # loop-invariant: LLVM unswitches it
            position[f] = i
        row[f] = padded[_GAP + i]
        fill[c] = f + 1
    total = 0.0
    for c in range(start.size - 1):
        size = start[c + 1] - start[c]
        kk = min(k, size - 1)
        low = low_count[c] if low_count[c] > kk else 0  # a tie run: k-th distance 0
        if low:
            total += low * (psi[low] - psi[n_low])
        total -= size * psi[size]
        o = offsets[c] + low
        total += _class_sum(padded, n, row, position, o, size - low, kk, psi, dist, within, buckets)
    return psi[n] + total / n


@nb.njit(cache=True, nogil=True)
def _block_mi(values, c0, width, labels, start, k, psi, finite, bucket_type, out):
    """out[c0 : c0 + width] for one block of channels: transpose the block once (rows of
    the sample-major input are read whole), then sort and count channel by channel in
    buffers allocated once per block (the sort's bucket arrays of bucket_type's dtype)."""
    n = values.shape[0]
    block = np.empty((width, n), values.dtype)
    for i in range(n):
        for j in range(width):
            block[j, i] = values[i, c0 + j]
    padded = np.empty(n + 2 * _GAP)  # float64: faster here than float32 (conversions)
    padded[:_GAP] = -np.inf
    padded[_GAP + n :] = np.inf
    sorted_values = padded[_GAP : _GAP + n]
    offsets, row, position = _class_rows(start, k, n)
    dist = np.empty(np.diff(start).max())  # each sample's k-th distance in its class
    within = np.empty((2, dist.size), np.int64)  # class members within it above / below
    lab, rest, rest_lab = np.empty(n, np.int64), np.empty(n), np.empty(n, np.int64)
    count = np.empty(BUCKETS_PER_VALUE * n + 1, bucket_type.dtype)
    bucket = np.empty(n, bucket_type.dtype)
    key, out_key = np.empty(n, np.uint64), np.empty(n, np.uint64)
    for j in range(width):
        if finite[c0 + j]:
            n_low, offset, low, scale, binary, n_buckets = sort_column(
                block[j], labels, sorted_values, lab, rest, rest_lab, count, bucket, key, out_key
            )
            buckets = (offset, low, scale, binary, n_buckets, count)
            out[c0 + j] = _sorted_channel_mi(
                padded, lab, n_low, buckets, start, k, psi, offsets, row, position, dist, within
            )


@nb.njit(parallel=True, cache=True, nogil=True)
def _knn_mi_columns(values, labels, start, k, psi, finite, bucket_type):
    """Blocks of _BLOCK channels, one thread each (the block's work is a plain function:
    numba's parallel lowering of a long loop body vectorizes less); bucket_type: an empty
    array of the sort's bucket dtype (knn_sort.bucket_dtype)."""
    n_channels = values.shape[1]
    out = np.full(n_channels, np.nan)
    for b in nb.prange((n_channels + _BLOCK - 1) // _BLOCK):
        c0 = b * _BLOCK
        width = min(_BLOCK, n_channels - c0)
        _block_mi(values, c0, width, labels, start, k, psi, finite, bucket_type, out)
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
    bucket_type = np.empty(0, bucket_dtype(codes.size))
    return _knn_mi_columns(
        np.ascontiguousarray(values),
        codes.astype(np.int64),
        start,
        int(k),
        psi,
        finite,
        bucket_type,
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
