"""Compiled counting kernels (numba): the only loops over samples, channels and pairs.

All kernels work on *bin codes*: ``codes[c, n]`` (uint8, channel-major) is the bin of
sample n for variable c. Counting is exact integer arithmetic; entropies and MIs are
then computed in float64 from the counts with an ``n log n`` lookup table, so every
estimate equals the plug-in formula on the same bins to rounding.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_CHANNEL_BLOCK = 16  # channels binned together: one cache line of float32 inputs


@nb.njit(parallel=True, cache=True, nogil=True)
def _bin_codes(values, lo, scale, n_bins, codes):
    n, c = values.shape
    n_blocks = (c + _CHANNEL_BLOCK - 1) // _CHANNEL_BLOCK
    for blk in nb.prange(n_blocks):
        c0 = blk * _CHANNEL_BLOCK
        c1 = min(c, c0 + _CHANNEL_BLOCK)
        for i in range(n):
            for j in range(c0, c1):
                b = int((np.float64(values[i, j]) - lo[j]) * scale[j])
                if b >= n_bins:
                    b = n_bins - 1
                elif b < 0:  # non-finite values; their channel is flagged and reported NaN
                    b = 0
                codes[j, i] = b


def bin_codes(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-width binning of each column over its own observed [min, max].

    values: (sample, channel) float array. Returns ``codes`` (channel, sample) uint8 in
    [0, n_bins) and ``finite`` (channel,) bool. A constant column gets bin 0 everywhere;
    a column with any NaN/Inf is marked not finite (its codes are meaningless).
    """
    if not 2 <= n_bins <= 255:
        raise ValueError(f"bins must be in [2, 255], got {n_bins}")
    values = np.ascontiguousarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float32)
    with np.errstate(invalid="ignore"):
        lo = values.min(axis=0).astype(np.float64)
        hi = values.max(axis=0).astype(np.float64)
    finite = np.isfinite(lo) & np.isfinite(hi)
    width = np.where(finite, hi - lo, 0.0)
    scale = np.divide(n_bins, width, out=np.zeros_like(width), where=width > 0)
    lo = np.where(finite, lo, 0.0)
    codes = np.empty((values.shape[1], values.shape[0]), dtype=np.uint8)
    _bin_codes(values, lo, scale, n_bins, codes)
    return codes, finite


@nb.njit(parallel=True, cache=True, nogil=True)
def joint_counts(codes, target, n_bins, n_target):
    """counts[c, b, k] = #samples with codes[c] == b and target == k. (C, B, K) int32."""
    c_total, n = codes.shape
    counts = np.zeros((c_total, n_bins, n_target), dtype=np.int32)
    for c in nb.prange(c_total):
        row = codes[c]
        out = counts[c]
        for i in range(n):
            out[row[i], target[i]] += 1
    return counts


def xlogx_table(n: int) -> np.ndarray:
    """t[k] = k log k for k = 0..n (t[0] = 0)."""
    k = np.arange(n + 1, dtype=np.float64)
    return k * np.log(np.maximum(k, 1.0))


@nb.njit(parallel=True, cache=True, nogil=True)
def paired_mi(codes_a, codes_b, n_bins, xlogx):
    """MI (nats) of each aligned row pair: out[p] = I(codes_a[p]; codes_b[p]). (P,) float64."""
    p_total, n = codes_a.shape
    out = np.empty(p_total, dtype=np.float64)
    for p in nb.prange(p_total):
        out[p] = _pair_mi(codes_a[p], codes_b[p], n_bins, n, xlogx)
    return out


@nb.njit(cache=True, nogil=True)
def _pair_mi(a, b, n_bins, n, xlogx):
    joint = np.zeros(n_bins * n_bins, dtype=np.int32)
    ma = np.zeros(n_bins, dtype=np.int32)
    mb = np.zeros(n_bins, dtype=np.int32)
    for i in range(n):
        joint[a[i] * n_bins + b[i]] += 1
        ma[a[i]] += 1
        mb[b[i]] += 1
    s = 0.0
    for k in range(n_bins * n_bins):
        s += xlogx[joint[k]]
    for k in range(n_bins):
        s -= xlogx[ma[k]] + xlogx[mb[k]]
    return s / n + np.log(n)


@nb.njit(parallel=True, cache=True, nogil=True)
def all_pairs_mi(codes, n_bins, xlogx):
    """Symmetric (C, C) MI matrix of all channel pairs; the diagonal holds H(channel)."""
    c_total, n = codes.shape
    out = np.empty((c_total, c_total), dtype=np.float64)
    for i in nb.prange(c_total):
        joint = np.zeros(n_bins * n_bins, dtype=np.int32)
        hi = np.zeros(n_bins, dtype=np.int32)
        row_i = codes[i]
        for t in range(n):
            hi[row_i[t]] += 1
        si = 0.0
        for k in range(n_bins):
            si += xlogx[hi[k]]
        for j in range(i, c_total):
            joint[:] = 0
            hj = np.zeros(n_bins, dtype=np.int32)
            row_j = codes[j]
            for t in range(n):
                joint[row_i[t] * n_bins + row_j[t]] += 1
                hj[row_j[t]] += 1
            s = 0.0
            for k in range(n_bins * n_bins):
                s += xlogx[joint[k]]
            for k in range(n_bins):
                s -= xlogx[hj[k]]
            v = (s - si) / n + np.log(n)
            out[i, j] = v
            out[j, i] = v
    return out
