"""One channel's values sorted ascending, labels carried along: the sort of analyzer.core.knn.

An O(N) sort of the order-preserving unsigned image of the float bits: the tie group at the
column minimum (a ReLU channel's zeros) is split off first, the rest goes through a bucket
pass (~N/2 buckets by the top bits of the key, then one insertion sort), or an LSD radix
sort (8 bits per pass, constant bytes skipped) when a bucket holds more than
_BUCKET_LIMIT keys (a heavy-tailed channel). Works for float32 and float64 columns.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.extending import overload


def _float_bits(col):
    """The bits of a float array as unsigned integers of the same width (numba overload)."""
    raise NotImplementedError


@overload(_float_bits)
def _float_bits_impl(col):
    if col.dtype == nb.types.float32:
        return lambda col: col.view(np.uint32)
    return lambda col: col.view(np.uint64)


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
def sort_column(col, lab, n_bytes, v_out, lab_out, key, key_lab, out_key):
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
