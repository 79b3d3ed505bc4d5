"""Compiled counting kernels (numba): the only loops over samples, channels and pairs.

All kernels work on *bin codes*: ``codes[c, n]`` (uint8, channel-major) is the bin of
sample n for variable c. Counting is exact integer arithmetic; entropies and MIs are
then computed in float64 from the counts with an ``n log n`` lookup table and the plug-in
formula of ``analyzer/core/plugin.py``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from analyzer.core.all_pairs import all_pairs_mi  # noqa: F401  (re-exported: the all-pairs channel MI)
from analyzer.core.plugin import (
    at_least_zero,
    indicator_mis,
    mi_from_xlogx,
    xlogx_table,  # noqa: F401  (re-exported: kernels' callers build it)
)

_CHANNEL_BLOCK = 16  # channels binned together: one cache line of float32 inputs
_ROW_CHUNKS = 2  # row chunks of the single-pass kernels (each gets private counts)


@nb.njit(parallel=True, cache=True, nogil=True)
def _channel_range(values, n_chunks):
    n, c = values.shape
    lo = np.full((n_chunks, c), np.inf)
    hi = np.full((n_chunks, c), -np.inf)
    poison = np.zeros((n_chunks, c))  # becomes NaN where a value is NaN or Inf
    step = (n + n_chunks - 1) // n_chunks
    for t in nb.prange(n_chunks):
        for i in range(t * step, min(n, (t + 1) * step)):
            row = values[i]
            for j in range(c):
                v = np.float64(row[j])
                lo[t, j] = min(lo[t, j], v)
                hi[t, j] = max(hi[t, j], v)
                poison[t, j] += v * 0.0
    return lo, hi, poison


def channel_range(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column (min, max, finite) of a (sample, channel) array in one parallel pass."""
    lo, hi, poison = _channel_range(values, _ROW_CHUNKS)
    finite = np.isfinite(poison.sum(axis=0))
    return lo.min(axis=0), hi.max(axis=0), finite


def bin_scale(values: np.ndarray, n_bins: int):
    """(lo, scale, finite) of the binning rule ``bin = min(floor((x - lo) * scale), B - 1)``.

    ``scale = B / (max - min)``; 0 for a constant column (all in bin 0) and for a column
    with NaN/Inf (flagged not finite; its bins are meaningless).
    """
    if not 2 <= n_bins <= 255:
        raise ValueError(f"bins must be in [2, 255], got {n_bins}")
    lo, hi, finite = channel_range(values)
    width = np.where(finite, hi - lo, 0.0)
    scale = np.divide(n_bins, width, out=np.zeros_like(width), where=width > 0)
    return np.where(finite, lo, 0.0), scale, finite


def _as_float_array(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float32)
    return values


@nb.njit(inline="always")
def _code(v, lo, scale, n_bins):
    b = int((np.float64(v) - lo) * scale)
    if b >= n_bins:
        return n_bins - 1
    if b < 0:  # only for non-finite values
        return 0
    return b


@nb.njit(parallel=True, cache=True, nogil=True)
def _bin_codes(values, lo, scale, n_bins, codes):
    n, c = values.shape
    n_blocks = (c + _CHANNEL_BLOCK - 1) // _CHANNEL_BLOCK
    for blk in nb.prange(n_blocks):
        c0 = blk * _CHANNEL_BLOCK
        c1 = min(c, c0 + _CHANNEL_BLOCK)
        for i in range(n):
            for j in range(c0, c1):
                codes[j, i] = _code(values[i, j], lo[j], scale[j], n_bins)


def bin_codes(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-width binning of each column over its own observed [min, max].

    values: (sample, channel) float array. Returns ``codes`` (channel, sample) uint8 in
    [0, n_bins) and ``finite`` (channel,) bool (see :func:`bin_scale`).
    """
    values = _as_float_array(values)
    lo, scale, finite = bin_scale(values, n_bins)
    codes = np.empty((values.shape[1], values.shape[0]), dtype=np.uint8)
    _bin_codes(values, lo, scale, n_bins, codes)
    return codes, finite


@nb.njit(parallel=True, cache=True, nogil=True)
def _binned_counts(values, lo, scale, n_bins, target, n_target, n_chunks):
    n, c = values.shape
    partial = np.zeros(n_chunks * n_target * c * n_bins, dtype=np.int32)
    step = (n + n_chunks - 1) // n_chunks
    offsets = np.arange(c) * n_bins
    top = n_bins - 1.0
    for t in nb.prange(n_chunks):
        index = np.empty(c, dtype=np.int64)
        for i in range(t * step, min(n, (t + 1) * step)):
            base = (t * n_target + target[i]) * c * n_bins
            for j in range(c):  # vectorizable: bin positions of the whole row
                v = (np.float64(values[i, j]) - lo[j]) * scale[j]
                v = v if v >= 0.0 else 0.0  # NaN (non-finite channel) -> 0
                v = v if v < top else top
                index[j] = np.int64(v) + offsets[j]
            for j in range(c):  # scatter into this chunk's (target, channel, bin) table
                partial[base + index[j]] += 1
    return partial.reshape(n_chunks, n_target, c, n_bins)


def binned_counts(values: np.ndarray, target: np.ndarray, n_bins: int, n_target: int):
    """Bin every channel and count it jointly with ``target`` in one pass over the rows.

    values: (sample, channel); target: (sample,) ints in [0, n_target). Returns
    (counts (target, channel, bin) int32, finite (channel,) bool). Rows are read in
    order (no transpose); each row chunk counts into its own table, whose slice for one
    target value is contiguous and stays in cache.
    """
    values = _as_float_array(values)
    lo, scale, finite = bin_scale(values, n_bins)
    target = np.ascontiguousarray(target, dtype=np.int64)
    if len(target) != len(values) or (
        len(target) and (target.min() < 0 or target.max() >= n_target)
    ):
        raise ValueError("target must hold one value in [0, n_target) per sample")
    partial = _binned_counts(values, lo, scale, n_bins, target, n_target, _ROW_CHUNKS)
    return partial.sum(axis=0, dtype=np.int32), finite


@nb.njit(parallel=True, cache=True, nogil=True)
def mi_from_target_counts(counts, xlogx):
    """MI (nats) of each channel with the target from counts (target, channel, bin)."""
    n_target, c, n_bins = counts.shape
    n = 0
    for k in range(n_target):
        for b in range(n_bins):
            n += counts[k, 0, b]
    target_term = 0.0
    for k in range(n_target):
        nk = 0
        for b in range(n_bins):
            nk += counts[k, 0, b]
        target_term += xlogx[nk]
    log_n = np.log(n)
    out = np.empty(c)
    for j in nb.prange(c):
        s = 0.0
        for b in range(n_bins):
            nb_ = 0
            for k in range(n_target):
                v = counts[k, j, b]
                nb_ += v
                s += xlogx[v]
            s -= xlogx[nb_]
        out[j] = at_least_zero(mi_from_xlogx(s - target_term, n, log_n))
    return out


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
    return mi_from_xlogx(s, n, np.log(n))


@nb.njit(cache=True, nogil=True)
def indicator_mi_from_counts(counts, xlogx):
    """I(X_c; 1[Y = k]) for every channel c and class k from counts (channel, bin, class).

    The joint of (bin, indicator) is (counts[c, b, k], n_b - counts[c, b, k]). (C, K) float64.
    """
    c_total, n_bins, n_target = counts.shape
    n = 0
    for b in range(n_bins):
        for k in range(n_target):
            n += counts[0, b, k]
    class_sizes = np.zeros(n_target, dtype=np.int64)
    for b in range(n_bins):
        for k in range(n_target):
            class_sizes[k] += counts[0, b, k]
    out = np.empty((c_total, n_target))
    log_n = np.log(n)
    for c in range(c_total):
        bin_sizes = np.zeros(n_bins, dtype=np.int64)
        marginal = 0.0
        for b in range(n_bins):
            for k in range(n_target):
                bin_sizes[b] += counts[c, b, k]
            marginal += xlogx[bin_sizes[b]]
        indicator_mis(counts, c, bin_sizes, class_sizes, marginal, n, log_n, xlogx, out, c)
    return out
