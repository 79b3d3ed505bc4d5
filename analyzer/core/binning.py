"""Binning rules and sample subsets for the robustness sweep (paper appendix F).

Rules (each channel binned on its own; codes are (channel, sample) uint8 in [0, B)):

* ``range`` (default): B equal-width bins over the channel's observed [min, max] at this epoch
  (``kernels.bin_codes``).
* ``quantile``: equal-frequency bins. With x_(1) <= ... <= x_(N) the channel's sorted values,
  the inner edges are e_b = x_(floor(b N / B) + 1) for b = 1 .. B-1 and the bin of x is
  #{b : e_b <= x}. Tied values share a bin, so heavily tied channels use fewer than B bins.
* ``fixed``: B equal-width bins over given bounds [lo, hi] (scalars or one pair per channel),
  values outside clipped into the first/last bin. The sweep uses each channel's min and max over
  all epochs of the run, so bin edges do not move during training.

``subsample`` draws the seeded, class-stratified fraction of validation samples of the sweep.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from analyzer.core.kernels import bin_codes as range_codes

RULES = ("range", "quantile", "fixed")


@nb.njit(parallel=True, cache=True, nogil=True)
def _quantile_codes(values, n_bins, codes):
    n, c = values.shape
    for j in nb.prange(c):
        col = values[:, j].astype(np.float64)
        srt = np.sort(col)
        edges = np.empty(n_bins - 1)
        for b in range(1, n_bins):
            edges[b - 1] = srt[min(n - 1, (b * n) // n_bins)]
        codes[j, :] = np.searchsorted(edges, col, side="right").astype(np.uint8)


def quantile_codes(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-frequency codes (channel, sample) uint8 of (sample, channel) finite values."""
    values = np.ascontiguousarray(values)
    codes = np.empty((values.shape[1], values.shape[0]), dtype=np.uint8)
    if values.shape[0]:
        _quantile_codes(values, n_bins, codes)
    return codes


def fixed_codes(values: np.ndarray, n_bins: int, lo, hi) -> np.ndarray:
    """Equal-width codes over [lo, hi] (broadcast per channel), out-of-range values clipped."""
    x = np.asarray(values, dtype=np.float64)
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), x.shape[1:])
    width = np.broadcast_to(np.asarray(hi, dtype=np.float64), x.shape[1:]) - lo
    scale = np.divide(n_bins, width, out=np.zeros_like(width), where=width > 0)
    b = np.floor((x - lo) * scale)
    return np.clip(b, 0, n_bins - 1).astype(np.uint8).T.copy()


def codes_for(values: np.ndarray, n_bins: int, rule: str = "range", bounds=None):
    """(codes (channel, sample) uint8, finite (channel,) bool) under ``rule``."""
    if not 2 <= n_bins <= 255:
        raise ValueError(f"bins must be in [2, 255], got {n_bins}")
    if rule == "range":
        return range_codes(values, n_bins)
    finite = np.isfinite(values).all(axis=0)
    clean = np.where(finite[None, :], values, 0.0)
    if rule == "quantile":
        return quantile_codes(clean, n_bins), finite
    if rule == "fixed":
        if bounds is None:
            raise ValueError("binning rule 'fixed' needs bounds (lo, hi)")
        return fixed_codes(clean, n_bins, *bounds), finite
    raise ValueError(f"binning rule {rule!r}: use one of {', '.join(RULES)}")


def subsample(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded class-stratified subset: round(fraction * n_k) of class k."""
    if not 0 < fraction <= 1:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    if fraction == 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        keep.append(rng.choice(idx, max(1, round(fraction * len(idx))), replace=False))
    return np.sort(np.concatenate(keep))
