"""The fused compiled pass: bin every channel of a (sample, unit) block once and count.

One call of :func:`fused_pass` on a block of GAP values (one epoch, a range of units)
reads the values once from memory (per block of 16 channels: the range pass and the
binning pass share the block, which stays in cache) and fills everything that needs the
bin codes:

* ``codes[c, n]`` (uint8, channel-major): the bin of sample n in channel c, for layer
  pairs, channel pairs and the label-permutation nulls (``analyzer/core/nulls.py`` takes
  exactly this array);
* ``label_counts[c, b, k]``: joint counts of (bin, class) (class-indicator counts are
  derived from them exactly: (counts, n_b - counts));
* ``summary_counts[c, b, s]``: joint counts of (bin, input-summary code);
* ``finite[c]``: no NaN/Inf in the channel; ``mean[c]``, ``sd[c]`` (float64) for the
  layer PCA's standardization.

Binning rules (:class:`Binning`, the rules of ``analyzer/core/binning.py``, same codes): ``range``
(default: each channel over its own observed [min, max],
``bin = min(floor((x - min) * B / (max - min)), B - 1)``, a constant channel is one bin),
``fixed`` (the same formula over given per-channel [lo, hi], values outside clipped to the end
bins), ``quantile`` (equal-frequency: inner edges e_b = x_(floor(b N / B) + 1) of the sorted
values, bin = #{b : e_b <= x}; ties share a bin). A new rule is a new branch in
``_block_codes``: the counting after it does not change.

Parallel over channel blocks (numba prange, nogil): each output element is written by one
thread in a fixed order, so results are bit-identical for any thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from analyzer.core.plugin import at_least_zero, entropy_from_xlogx, indicator_mis, mi_from_xlogx

_BLOCK = 16  # channels per block: one 64-byte line of float32 per sample row
KINDS = {"range": 0, "fixed": 1, "quantile": 2}


@dataclass(frozen=True)
class Binning:
    """A binning rule: ``rule`` in KINDS; ``lo``/``hi`` (scalars or one per unit of the store)
    only for ``fixed``."""

    rule: str = "range"
    lo: float | np.ndarray | None = None
    hi: float | np.ndarray | None = None

    def __post_init__(self):
        if self.rule not in KINDS:
            raise ValueError(f"binning rule {self.rule!r}: use one of {', '.join(KINDS)}")
        if self.rule == "fixed" and (self.lo is None or self.hi is None):
            raise ValueError("binning rule 'fixed' needs bounds (lo, hi)")

    def bounds(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (lo, hi) float64 of units [start, stop) (zeros unless ``fixed``)."""
        if self.rule != "fixed":
            return np.zeros(stop - start), np.zeros(stop - start)

        def part(v):
            v = np.asarray(v, dtype=np.float64)
            return np.broadcast_to(v if v.ndim == 0 else v[start:stop], (stop - start,)).copy()

        return part(self.lo), part(self.hi)

    def describe(self, n_bins: int) -> str:
        if self.rule == "range":
            return (
                f"per-variable min-max range at each epoch, {n_bins} equal-width bins: "
                "bin = min(floor((x - min) * (B / (max - min))), B - 1); a constant variable is one bin"
            )
        if self.rule == "fixed":
            return f"fixed per-channel ranges [lo, hi], {n_bins} equal-width bins, outside values clipped"
        return (
            f"equal-frequency (quantile) bins per variable and epoch, B = {n_bins}: inner edges "
            "e_b = x_(floor(b N / B) + 1), bin = #{b: e_b <= x}; ties share a bin"
        )


@dataclass
class Fused:
    """Output of :func:`fused_pass` for C channels, N samples, B bins, K classes, S summary codes."""

    codes: np.ndarray  # (C, N) uint8
    finite: np.ndarray  # (C,) bool
    label_counts: np.ndarray  # (C, B, K) int32
    summary_counts: np.ndarray  # (C, B, S) int32
    mean: np.ndarray  # (C,) float64
    sd: np.ndarray  # (C,) float64 (population)


@nb.njit(nogil=True, cache=True)
def _column_stats(col, n):
    """(min, max, finite, mean, sd) of one contiguous column in one pass (local scalars)."""
    lo, hi, poison, total, squares = np.inf, -np.inf, 0.0, 0.0, 0.0
    shift = col[0] if n else 0.0  # sums of (x - shift): the variance stays accurate
    for i in range(n):
        v = col[i]
        lo = min(lo, v)
        hi = max(hi, v)
        poison += v * 0.0
        d = v - shift
        total += d
        squares += d * d
    m = total / n
    var = squares / n - m * m
    sd = np.sqrt(var) if hi > lo and var > 0.0 else 0.0  # exactly 0 for a constant column
    return lo, hi, np.isfinite(poison), shift + m, sd


@nb.njit(nogil=True, cache=True)
def _block_codes(values, c0, c1, n_bins, kind, fixed_lo, fixed_hi, codes, finite, mean, sd):
    """Codes, finiteness and moments of channels [c0, c1): the only rule-dependent step.

    The block is first copied channel-major (each 64-byte row piece read once from memory);
    every later loop runs over one contiguous column.
    """
    n = values.shape[0]
    w = c1 - c0
    buf = np.empty((w, n))
    for i in range(n):
        for j in range(w):
            buf[j, i] = values[i, c0 + j]
    edges = np.empty(max(n_bins - 1, 0))
    for j in range(w):
        c = c0 + j
        col = buf[j]
        lo, hi, ok, mean[c], sd[c] = _column_stats(col, n)
        finite[c] = ok
        out = codes[c]
        if not ok:
            out[:] = 0
        elif kind == 2:  # quantile (analyzer/core/binning.py's rule)
            srt = np.sort(col)
            for b in range(1, n_bins):
                edges[b - 1] = srt[min(n - 1, (b * n) // n_bins)]
            for i in range(n):
                out[i] = np.searchsorted(edges, col[i], side="right")
        else:
            base, width = (fixed_lo[c], fixed_hi[c] - fixed_lo[c]) if kind == 1 else (lo, hi - lo)
            scale = n_bins / width if width > 0 else 0.0
            top = n_bins - 1
            for i in range(n):
                x = (col[i] - base) * scale
                b = int(x) if x >= 0.0 else 0  # below a fixed range: first bin
                out[i] = b if b < top else top


@nb.njit(parallel=True, nogil=True, cache=True)
def _fused(values, labels, summary, n_bins, n_classes, n_summary, kind, lo, hi):
    n, c = values.shape
    codes = np.empty((c, n), dtype=np.uint8)
    finite = np.empty(c, dtype=np.bool_)
    mean = np.empty(c)
    sd = np.empty(c)
    label_counts = np.zeros((c, n_bins, n_classes), dtype=np.int32)
    summary_counts = np.zeros((c, n_bins, n_summary), dtype=np.int32)
    n_blocks = (c + _BLOCK - 1) // _BLOCK
    for blk in nb.prange(n_blocks):
        c0 = blk * _BLOCK
        c1 = min(c, c0 + _BLOCK)
        _block_codes(values, c0, c1, n_bins, kind, lo, hi, codes, finite, mean, sd)
        for j in range(c0, c1):
            row = codes[j]
            lc = label_counts[j]
            sc = summary_counts[j]
            for i in range(n):
                b = row[i]
                lc[b, labels[i]] += 1
                sc[b, summary[i]] += 1
    return codes, finite, label_counts, summary_counts, mean, sd


def fused_pass(
    values: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    summary_codes: np.ndarray,
    n_summary: int,
    n_bins: int,
    binning: Binning = Binning(),
    start: int = 0,
) -> Fused:
    """Bin every column of ``values`` (sample, channel) once and count; see the module doc.

    labels, summary_codes: (sample,) ints in [0, n_classes) and [0, n_summary); start: the
    store unit of column 0 (selects the ``fixed`` rule's per-unit bounds).
    """
    if not 2 <= n_bins <= 255:
        raise ValueError(f"bins must be in [2, 255], got {n_bins}")
    values = np.ascontiguousarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float32)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    summary = np.ascontiguousarray(summary_codes, dtype=np.int64)
    for name, v, k in (("labels", labels, n_classes), ("summary codes", summary, n_summary)):
        if len(v) != len(values) or (len(v) and (v.min() < 0 or v.max() >= k)):
            raise ValueError(f"{name} must hold one value in [0, {k}) per sample")
    out = _fused(
        values,
        labels,
        summary,
        n_bins,
        n_classes,
        n_summary,
        KINDS[binning.rule],
        *binning.bounds(start, start + values.shape[1]),
    )
    return Fused(*out)


@nb.njit(parallel=True, nogil=True, cache=True)
def channel_mi(label_counts, summary_counts, xlogx):
    """Per channel, from the fused counts (nats, ``analyzer/core/plugin.py``): I(T;Y), H(T),
    I(T;1[Y=k]), I(T;S).

    Returns (label (C,), entropy (C,), indicator (C, K), summary (C,)) float64; MIs clipped at 0.
    """
    c_total, n_bins, n_classes = label_counts.shape
    n_summary = summary_counts.shape[2]
    n = 0
    class_sizes = np.zeros(n_classes, dtype=np.int64)
    summary_sizes = np.zeros(n_summary, dtype=np.int64)
    if c_total:
        for b in range(n_bins):
            for k in range(n_classes):
                class_sizes[k] += label_counts[0, b, k]
            for s in range(n_summary):
                summary_sizes[s] += summary_counts[0, b, s]
        for k in range(n_classes):
            n += class_sizes[k]
    log_n = np.log(max(n, 1))
    cls_term = 0.0
    for k in range(n_classes):
        cls_term += xlogx[class_sizes[k]]
    sum_term = 0.0
    for s in range(n_summary):
        sum_term += xlogx[summary_sizes[s]]
    label = np.empty(c_total)
    entropy = np.empty(c_total)
    summary = np.empty(c_total)
    indicator = np.empty((c_total, n_classes))
    for c in nb.prange(c_total):
        bin_sizes = np.zeros(n_bins, dtype=np.int64)
        joint = 0.0
        joint_s = 0.0
        for b in range(n_bins):
            for k in range(n_classes):
                v = label_counts[c, b, k]
                bin_sizes[b] += v
                joint += xlogx[v]
            for s in range(n_summary):
                joint_s += xlogx[summary_counts[c, b, s]]
        marginal = 0.0
        for b in range(n_bins):
            marginal += xlogx[bin_sizes[b]]
        label[c] = at_least_zero(mi_from_xlogx(joint - marginal - cls_term, n, log_n))
        entropy[c] = entropy_from_xlogx(marginal, n, log_n)
        summary[c] = at_least_zero(mi_from_xlogx(joint_s - marginal - sum_term, n, log_n))
        indicator_mis(
            label_counts, c, bin_sizes, class_sizes, marginal, n, log_n, xlogx, indicator, c
        )
    return label, entropy, indicator, summary
