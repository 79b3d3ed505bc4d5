"""One channel's values sorted ascending, labels carried along: the sort of analyzer.core.knn.

An O(N) sort: the tie group at the column minimum (a ReLU channel's zeros), when it holds
more than _BUCKET_LIMIT values, is split off first; the rest goes through a bucket pass by
value (4 buckets per value, then an insertion sort from each descent the scatter left, the
descents found by a branch-free pass), or, when a bucket holds more than _BUCKET_LIMIT
values (a heavy-tailed channel), an LSD radix sort of the order-preserving unsigned image of
the float64 bits (8 bits per pass, constant bytes skipped). Works for float32 and float64
columns.

The value buckets (kept for the kNN edge lookups) are of equal width in value (the linear
map) or, for a channel of values > 0 whose linear buckets crowd (a bucket fuller than
_CROWDED: a skewed channel, e.g. lognormal), of equal width in the float64 bits (the binary
map: as many buckets for each power of two, equal width within it, so about equal width in
log(value)), whichever puts fewer values together (the sum of squared bucket counts). A
channel with a quarter of its values in the lowest 1/64 of its range counts the binary map
first (a shortcut: the result is the same).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_BUCKET_LIMIT = 48  # a fuller bucket sends the channel to the radix sort
_CROWDED = 8  # a fuller bucket (values > 0) tries the other map
BUCKETS_PER_VALUE = 4  # buckets of the value pass per value sorted (work size of `count`)


def bucket_dtype(n: int) -> type:
    """The integer type of the work arrays `count` and `bucket` for columns of n values:
    uint16 where every bucket index and count fits (BUCKETS_PER_VALUE * n < 2**16, n <=
    16,383; half the cache footprint of int32: the kNN kernel ~8% faster at n = 3,925),
    int32 above."""
    return np.uint16 if BUCKETS_PER_VALUE * n < 2**16 else np.int32


@nb.njit(cache=True, nogil=True, inline="always")
def bucket_of(value, low, scale, binary, top):
    """The value bucket of value (float64), clamped to [0, top] (selects: vectorizes; no
    NaN): int((value - low) * scale) on the linear map, int((bits(value) - bits(low)) *
    scale) on the binary map (0 < low: the bits of values >= low ascend)."""
    if binary:
        at_least_low = np.float64(value if value > low else low)  # one definition for .view
        offset = at_least_low.view(np.int64) - np.float64(low).view(np.int64)
        b = np.float64(offset) * scale
    else:
        b = (value - low) * scale
    b = b if b > 0.0 else 0.0
    return np.int64(b if b < top else top)


@nb.njit(cache=True, nogil=True, inline="always")
def _count_buckets(values, m, low, scale, binary, count, bucket):
    """bucket[:m] = each value's bucket among BUCKETS_PER_VALUE * m, count[b + 1] = values
    in bucket b. Returns (fullest bucket, sum of squared counts where the fullest is past
    _CROWDED: about how many values a lookup meets in its bucket, else 0)."""
    size = BUCKETS_PER_VALUE * m + 1
    top = size - 2.0
    for i in range(m):  # vectorized: each value's bucket, computed once
        bucket[i] = bucket_of(np.float64(values[i]), low, scale, binary, top)
    count[:size] = 0
    for i in range(m):
        count[bucket[i] + 1] += 1
    fullest = np.int32(0)
    for b in range(1, size):  # vectorized
        fullest = count[b] if count[b] > fullest else fullest
    crowding = np.int64(0)
    if fullest > _CROWDED:
        for b in range(1, size):  # vectorized
            crowding += np.int64(count[b]) * count[b]
    return fullest, crowding


@nb.njit(cache=True, nogil=True, inline="always")
def _binary_scale(low, high, n_buckets):
    """The scale of the binary map of [low, high] (0 < low < high) into n_buckets buckets."""
    span = np.float64(high).view(np.int64) - np.float64(low).view(np.int64)
    return (n_buckets - 1) / np.float64(span)


@nb.njit(cache=True, nogil=True, inline="always")
def _bottom_heavy(values, m, low, span):
    """Whether more than a quarter of values[:m] lie in the lowest 1/64 of the range (a
    skewed channel: its linear buckets there would hold > 4 values each)."""
    bottom = low + span / 64.0
    n_bottom = 0
    for i in range(m):  # vectorized
        n_bottom += np.float64(values[i]) < bottom
    return n_bottom > m // 4


@nb.njit(cache=True, nogil=True)
def _less_crowded(values, m, low, linear_scale, binary_scale, binary, crowding, count, bucket):
    """The map tried first (binary or linear; its counts in count / bucket) crowds: count
    the other one (0 < low), keep whichever crowds less (counting the first again if it
    wins). Returns (fullest, scale, binary) of the map kept."""
    first = binary_scale if binary else linear_scale
    other = linear_scale if binary else binary_scale
    fullest, other_crowding = _count_buckets(values, m, low, other, not binary, count, bucket)
    if other_crowding < crowding:
        return fullest, other, not binary
    fullest = _count_buckets(values, m, low, first, binary, count, bucket)[0]
    return fullest, first, binary


@nb.njit(cache=True, nogil=True, inline="always")
def _min_max(values, m):
    """(smallest, largest) of values[:m] (finite, m >= 1), as float64: one vectorized pass."""
    low = high = values[0]
    for i in range(m):
        x = values[i]
        low = x if x < low else low
        high = x if x > high else high
    return np.float64(low), np.float64(high)


@nb.njit(cache=True, nogil=True, inline="always")
def _prefix_sum(count, size):
    """count[:size] replaced by its running sum, four at a time (one add on the carried sum
    per four buckets instead of one per bucket: the scan is latency-bound)."""
    running = np.int32(0)
    quads = size // 4 * 4
    for b in range(0, quads, 4):
        first = running + count[b]
        second = count[b + 1] + count[b]
        third = second + count[b + 2]
        fourth = third + count[b + 3]
        count[b] = first
        count[b + 1] = running + second
        count[b + 2] = running + third
        count[b + 3] = running + fourth
        running += fourth
    for b in range(quads, size):
        running += count[b]
        count[b] = running


@nb.njit(cache=True, nogil=True)
def _split_low(col, lab, low, v_out, lab_out, rest, rest_lab):
    """Put the tie group at the column minimum low (a ReLU channel's zeros) first in v_out
    / lab_out, every other value (float64) in rest, its label in rest_lab. Returns the size
    of the minimum's group."""
    z = m = 0
    for i in range(col.size):  # branch-free: both slots written, one index advances
        x = col[i]
        is_low = x == low
        lab_out[z] = lab[i]
        rest[m] = x
        rest_lab[m] = lab[i]
        z += is_low
        m += 1 - is_low
    v_out[:z] = low
    return z


@nb.njit(cache=True, nogil=True)
def _bucket_sort(values, labels, m, low, high, out_v, out_lab, count, bucket):
    """Sort values[:m] (float32/64, in [low, high]; labels alongside) into out_*: scatter
    into BUCKETS_PER_VALUE * m value buckets (a monotone map, linear or binary: buckets come
    out in order), then one insertion sort. Returns (sorted, scale, binary, n_buckets):
    bucket b = bucket_of(x, low, scale, binary, n_buckets - 1) ends at count[b] (n_buckets
    0: none).
    Nothing is sorted if a bucket holds more than _BUCKET_LIMIT values or the linear map's
    range overflows float64 (and the binary map does not apply: low <= 0)."""
    if m == 0:
        return True, 0.0, False, 0
    values = values[:m]
    if low == high:
        out_v[:m] = values
        out_lab[:m] = labels[:m]
        return True, 0.0, False, 0
    n_buckets = BUCKETS_PER_VALUE * m
    span = high - low
    linear_scale = (n_buckets - 1) / span  # 0 <= (x - low) * scale <= n_buckets - 1
    if not (np.isfinite(span) and np.isfinite(linear_scale)):
        linear_scale = 0.0  # the range overflows float64: no linear map
    binary = low > 0.0 and (linear_scale == 0.0 or _bottom_heavy(values, m, low, span))
    scale = _binary_scale(low, high, n_buckets) if binary else linear_scale  # skewed: binary
    fullest, crowding = np.int32(_BUCKET_LIMIT + 1), np.int64(0)  # no map: the radix sort
    if scale > 0.0:
        fullest, crowding = _count_buckets(values, m, low, scale, binary, count, bucket)
    if low > 0.0 and linear_scale > 0.0 and fullest > _CROWDED:  # the other may crowd less
        binary_scale = scale if binary else _binary_scale(low, high, n_buckets)
        fullest, scale, binary = _less_crowded(
            values, m, low, linear_scale, binary_scale, binary, crowding, count, bucket
        )
    if fullest > _BUCKET_LIMIT:
        return False, 0.0, False, 0
    _prefix_sum(count, n_buckets + 1)
    for i in range(m):
        b = bucket[i]
        p = count[b]
        count[b] = p + 1
        out_v[p] = values[i]
        out_lab[p] = labels[i]
    descents = 0  # only values of one bucket are out of order: where (branch-free)
    for i in range(1, m):
        bucket[descents] = i
        descents += out_v[i - 1] > out_v[i]
    sorted_to = 0  # out_v[: sorted_to + 1] is sorted
    for q in range(descents):  # an insertion sort from each descent to the next ascent
        i = bucket[q]
        if i <= sorted_to:
            continue
        while i < m and out_v[i - 1] > out_v[i]:
            x, label = out_v[i], out_lab[i]
            j = i - 1
            while j >= 0 and out_v[j] > x:
                out_v[j + 1] = out_v[j]
                out_lab[j + 1] = out_lab[j]
                j -= 1
            out_v[j + 1] = x
            out_lab[j + 1] = label
            i += 1
        sorted_to = i
    return True, scale, binary, n_buckets


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
def sort_column(col, lab, v_out, lab_out, rest, rest_lab, count, bucket, key, out_key):
    """Sort finite col (float32/64, (N,)) ascending into v_out (float64), lab carried to
    lab_out. Returns (n_low, offset, low, scale, binary, n_buckets): the size of the tie
    group at the minimum (first in v_out), and the value buckets of v_out[offset:] (bucket
    b = bucket_of(x, low, scale, binary, n_buckets - 1) ends at offset + count[b];
    n_buckets 0: none).
    Work arrays: rest (N,) float64, rest_lab (N,) int64, count (BUCKETS_PER_VALUE * N + 1,)
    and bucket (N,) of bucket_dtype(N) (or int32), key / out_key (N,) uint64."""
    n = col.size
    low64, high = _min_max(col, n)
    low = col.dtype.type(low64)
    n_low = 0
    for i in range(n):  # vectorized
        n_low += col[i] == low
    if n_low <= _BUCKET_LIMIT:  # a few minima: sorted with the rest, no split
        done, scale, binary, n_buckets = _bucket_sort(
            col, lab, n, low64, high, v_out, lab_out, count, bucket
        )
        if done:
            return n_low, 0, low64, scale, binary, n_buckets
        z, m = 0, n
        rest[:n] = col
        rest_lab[:n] = lab
    else:
        z = _split_low(col, lab, low, v_out, lab_out, rest, rest_lab)
        m = n - z
        rest_low = _min_max(rest, m)[0] if m else 0.0
        done, scale, binary, n_buckets = _bucket_sort(
            rest, rest_lab, m, rest_low, high, v_out[z:], lab_out[z:], count, bucket
        )
        if done:
            return n_low, z, rest_low, scale, binary, n_buckets
    sign = np.uint64(1) << np.uint64(63)
    ones = (sign - np.uint64(1)) | sign
    bits = rest.view(np.uint64)
    for i in range(m):  # the order-preserving unsigned image of the float64 bits
        b = bits[i]
        key[i] = b ^ ones if b & sign else b | sign
    _radix_sort(key, rest_lab, m, 8, out_key, lab_out[z:])
    for i in range(m):
        kk = out_key[i]
        bits[i] = kk ^ sign if kk & sign else kk ^ ones
        v_out[z + i] = rest[i]
    return n_low, z, 0.0, 0.0, False, 0
