"""Label-permutation nulls of channel-label MI (compiled; one pass over a channel's samples
fills the tables of all permutations).

A plug-in histogram MI of a channel that carries no label information is not 0: it is about
(B - 1)(K - 1) / (2N) nats (B occupied bins, K classes, N samples). The null of channel c is
the distribution of I(T_c; pi(Y)) over label permutations pi. Its mean is computed exactly,
over all permutations (``analyzer/core/null_mean.py``: the cells are hypergeometric); P seeded
permutations, drawn once (``permuted_labels``) and reused for every channel, layer and epoch
of a run, give the p-values and the layer band, reproducible from their seed.

Outputs (per channel): the exact null mean, the corrected MI (observed - null mean) and the
permutation p-value (1 + #{null >= observed}) / (1 + P); per layer: the exact null mean of the
layer mean (mean over channels, as ``label_mi``), its 2.5% / 97.5% quantiles over the P
permutations and its p-value; per (channel, class): the exact null mean of I(T_c; 1[Y = k]).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba as nb
import numpy as np

from analyzer.core import metrics
from analyzer.core.null_mean import exact_null_means
from analyzer.core.plugin import at_least_zero, indicator_mis, mi_from_xlogx, xlogx_table

DEFAULT_PERMUTATIONS = 20
_TIE = 1e-12  # a null value within this of the observed one counts as ">="


def permuted_labels(labels: np.ndarray, n_permutations: int, seed: int) -> np.ndarray:
    """(P, N) int64: P seeded permutations of ``labels`` (row p from ``default_rng([seed, p])``)."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.empty((n_permutations, len(labels)), dtype=np.int64)
    for p in range(n_permutations):
        out[p] = np.random.default_rng([seed, p]).permutation(labels)
    return out


@nb.njit(cache=True, nogil=True)
def _table_terms(joint, bin_sizes, class_sizes, n, n_bins, n_classes, xlogx, out_cls, row):
    """MI of the (bin, class) table and, into out_cls[row], each class-indicator MI."""
    s = 0.0
    for b in range(n_bins):
        for k in range(n_classes):
            s += xlogx[joint[b * n_classes + k]]
    marg = 0.0
    for b in range(n_bins):
        marg += xlogx[bin_sizes[b]]
    cls = 0.0
    for k in range(n_classes):
        cls += xlogx[class_sizes[k]]
    log_n = np.log(n)
    tables = joint.reshape((1, n_bins, n_classes))
    indicator_mis(tables, 0, bin_sizes, class_sizes, marg, n, log_n, xlogx, out_cls, row)
    return at_least_zero(mi_from_xlogx(s - marg - cls, n, log_n))


_DENSE_CLASSES = 16  # up to this many classes, tables are filled by dense one-hot row adds


@nb.njit(cache=True, nogil=True)
def _dense_counts(row, top, onehot, lanes, n_bins, counts):
    """counts[b, p, k] (flat, b != top) by adding each sample's one-hot row of its P permuted
    labels (lanes = P K, vectorized) into its bin's int16 accumulator (flushed before overflow)."""
    acc = np.zeros(n_bins * lanes, dtype=np.int16)
    fill = np.zeros(n_bins, dtype=np.int64)
    for i in range(len(row)):
        b = np.int64(row[i])
        if b == top:
            continue
        off = b * lanes
        one = onehot[i]
        for q in range(lanes):
            acc[off + q] += one[q]
        fill[b] += 1
        if fill[b] == 32767:
            for q in range(off, off + lanes):
                counts[q] += acc[q]
                acc[q] = 0
            fill[b] = 0
    for q in range(n_bins * lanes):
        counts[q] += acc[q]


@nb.njit(cache=True, nogil=True)
def _scatter_counts(row, top, perms_t, n_perm, n_classes, counts):
    """counts[b, p, k] (flat, b != top): one pass over the samples, P increments each."""
    lanes = n_perm * n_classes
    for i in range(len(row)):
        b = np.int64(row[i])
        if b == top:
            continue
        off = b * lanes
        pr = perms_t[i]
        for p in range(n_perm):
            counts[off + p * n_classes + pr[p]] += 1


@nb.njit(parallel=True, cache=True, nogil=True)
def _null_kernel(codes, labels, given, perms_t, onehot, n_bins, n_classes, xlogx):
    """Observed MIs, bin sizes and the P permuted-label MIs of every channel.

    perms_t: (N, P) permuted labels, sample-major; onehot: (N, P K) uint8 their one-hot rows,
    or (0, 0) for the scatter path; given: (C, B, K) observed (bin, class) counts of the same
    codes (e.g. the fused pass's), or (0, B, K) to count them here. One pass over a channel's samples fills all P (bin, class)
    tables at once. Samples in the channel's largest bin are skipped: that bin's row is n_k
    minus the other rows.
    """
    c_total, n = codes.shape
    n_perm = perms_t.shape[1]
    bk = n_bins * n_classes
    observed = np.empty(c_total)
    null = np.empty((n_perm, c_total))
    cls_obs = np.empty((c_total, n_classes))
    sizes = np.zeros((c_total, n_bins), dtype=np.int64)
    class_sizes = np.zeros(n_classes, dtype=np.int64)
    for i in range(n):
        class_sizes[labels[i]] += 1
    cls = 0.0
    for k in range(n_classes):
        cls += xlogx[class_sizes[k]]
    log_n = np.log(n)
    for c in nb.prange(c_total):
        row = codes[c]
        bin_sizes = sizes[c]
        joint = np.zeros(bk, dtype=np.int64)
        scratch = np.empty((1, n_classes))
        if given.shape[0] == c_total:
            for b in range(n_bins):
                for k in range(n_classes):
                    joint[b * n_classes + k] = given[c, b, k]
                    bin_sizes[b] += given[c, b, k]
        else:
            for i in range(n):
                bin_sizes[row[i]] += 1
                joint[row[i] * n_classes + labels[i]] += 1
        observed[c] = _table_terms(
            joint, bin_sizes, class_sizes, n, n_bins, n_classes, xlogx, scratch, 0
        )
        for k in range(n_classes):
            cls_obs[c, k] = scratch[0, k]
        if n_perm == 0:
            continue
        top = 0
        for b in range(n_bins):
            if bin_sizes[b] > bin_sizes[top]:
                top = b
        lanes = n_perm * n_classes
        counts = np.zeros(n_bins * lanes, dtype=np.int32)  # (bin, permutation, class)
        if onehot.shape[0] == n:
            _dense_counts(row, top, onehot, lanes, n_bins, counts)
        else:
            _scatter_counts(row, top, perms_t, n_perm, n_classes, counts)
        marg = 0.0
        for b in range(n_bins):
            marg += xlogx[bin_sizes[b]]
        for p in range(n_perm):
            off = p * n_classes
            for k in range(n_classes):
                rest = class_sizes[k]
                for b in range(n_bins):
                    if b != top:
                        rest -= counts[b * lanes + off + k]
                counts[top * lanes + off + k] = rest
            s = 0.0
            for b in range(n_bins):  # same order and formula as _table_terms: bit-identical
                for k in range(n_classes):
                    s += xlogx[counts[b * lanes + off + k]]
            null[p, c] = at_least_zero(mi_from_xlogx(s - marg - cls, n, log_n))
    return observed, null, cls_obs, sizes


@dataclass
class ChannelNull:
    """Null of one layer's channels (C channels, P permutations, K classes), nats.

    ``null_mean`` and ``class_null_mean`` are exact means over all label permutations
    (``analyzer/core/null_mean.py``); ``null`` holds the P seeded permutations behind the p-values
    and the layer band.
    """

    observed: np.ndarray  # (C,) I(T_c; Y) (the plug-in MI on the same codes)
    null: np.ndarray  # (P, C) I(T_c; pi_p(Y))
    class_observed: np.ndarray  # (C, K) I(T_c; 1[Y = k])
    null_mean: np.ndarray  # (C,) E over all permutations pi of I(T_c; pi(Y))
    class_null_mean: np.ndarray  # (C, K) E over all permutations of I(T_c; 1[pi(Y) = k])

    @property
    def corrected(self) -> np.ndarray:
        return self.observed - self.null_mean

    @property
    def pvalue(self) -> np.ndarray:
        """(1 + #{null >= observed}) / (1 + P) per channel (dimensionless)."""
        hits = (self.null >= self.observed[None, :] - _TIE).sum(axis=0)
        return (1.0 + hits) / (1.0 + self.null.shape[0])

    def layer(self) -> dict:
        """Layer-level null of the channel mean (as ``label_mi``): exact mean; 2.5/97.5%
        quantiles and p-value over the P permutations."""
        per_perm = self.null.mean(axis=1)  # (P,)
        obs = float(self.observed.mean())
        mean = float(self.null_mean.mean())
        hits = int((per_perm >= obs - _TIE).sum())
        return {
            "label_mi_null": mean,
            "label_mi_null_lo": float(np.quantile(per_perm, 0.025)),
            "label_mi_null_hi": float(np.quantile(per_perm, 0.975)),
            "label_mi_corrected": obs - mean,
            "label_mi_pvalue": (1.0 + hits) / (1.0 + len(per_perm)),
        }


@functools.lru_cache(maxsize=4)
def _layouts(perms_bytes: bytes, shape: tuple, dtype: str, n_classes: int):
    """(perms_t (N, P) contiguous, uint8 when the classes fit; one-hot rows (N, P K) uint8 for
    the dense path, or (0, 0)). Cached: the same permutations serve every layer and epoch."""
    perms = np.frombuffer(perms_bytes, dtype=dtype).reshape(shape)
    perms_t = np.ascontiguousarray(perms.T, dtype=np.uint8 if n_classes <= 256 else np.int64)
    n, n_perm = perms_t.shape
    onehot = np.zeros((0, 0), dtype=np.uint8)
    if n_perm and n_classes <= _DENSE_CLASSES:
        onehot = np.zeros((n, n_perm * n_classes), dtype=np.uint8)
        onehot[np.arange(n)[:, None], np.arange(n_perm) * n_classes + perms_t] = 1
    perms_t.flags.writeable = onehot.flags.writeable = False  # shared by every caller
    return perms_t, onehot


def channel_null(
    codes: np.ndarray,
    labels: np.ndarray,
    perms: np.ndarray,
    n_bins: int,
    n_classes: int,
    label_counts: np.ndarray | None = None,
) -> ChannelNull:
    """Observed MI, its exact null mean and the permutation nulls from bin codes.

    codes: (channel, sample) uint8 bins in [0, n_bins); labels: (sample,) ints in
    [0, n_classes); perms: (P, sample) permuted labels (``permuted_labels``; P may be 0);
    label_counts: optional (channel, bin, class) counts of these codes and labels (the fused
    pass's), which saves counting them again.
    """
    codes = np.ascontiguousarray(codes)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    perms = np.ascontiguousarray(perms)
    if codes.ndim != 2 or codes.shape[1] != len(labels) or np.shape(perms)[1:] != labels.shape:
        raise ValueError("codes (C, N), labels (N,) and perms (P, N) must share N")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    xlogx = xlogx_table(len(labels))
    perms_t, onehot = _layouts(perms.tobytes(), perms.shape, perms.dtype.str, n_classes)
    if label_counts is None:
        given = np.zeros((0, n_bins, n_classes), dtype=np.int32)
    else:
        given = np.ascontiguousarray(label_counts, dtype=np.int32)
        if given.shape != (codes.shape[0], n_bins, n_classes):
            raise ValueError("label_counts must be (C, n_bins, n_classes)")
    obs, null, cls_obs, sizes = _null_kernel(
        codes, labels, given, perms_t, onehot, n_bins, n_classes, xlogx
    )
    mean, cls_mean = exact_null_means(sizes, np.bincount(labels, minlength=n_classes))
    return ChannelNull(obs, null, cls_obs, mean, cls_mean)


def expected_bias(n_bins: int, n_classes: int, n_samples: int) -> float:
    """First-order bias (B - 1)(K - 1) / (2N) of the plug-in MI of independent variables, nats."""
    return (n_bins - 1) * (n_classes - 1) / (2.0 * n_samples)


def null_outputs(
    codes: np.ndarray,
    labels: np.ndarray,
    perms: np.ndarray,
    n_bins: int,
    n_classes: int,
    finite: np.ndarray,
    label_counts: np.ndarray | None = None,
) -> dict:
    """The null variables of one (epoch, layer), channel axis unpadded (NaN where not finite).

    With no permutations (P = 0) every null variable is NaN.
    """
    c = codes.shape[0]
    nan_c = np.full(c, np.nan)
    out = {
        "channel_label_mi_null": nan_c,
        "channel_label_mi_corrected": nan_c,
        "channel_label_mi_pvalue": nan_c,
        "class_channel_mi_null": np.full((c, n_classes), np.nan),
        "label_mi_null": np.nan,
        "label_mi_null_lo": np.nan,
        "label_mi_null_hi": np.nan,
        "label_mi_corrected": np.nan,
        "label_mi_pvalue": np.nan,
        "gini_corrected": np.nan,
    }
    if len(perms) == 0 or c == 0:
        return out
    res = channel_null(codes, labels, perms, n_bins, n_classes, label_counts)
    mask = np.where(finite, 1.0, np.nan)
    out.update(
        channel_label_mi_null=res.null_mean * mask,
        channel_label_mi_corrected=res.corrected * mask,
        channel_label_mi_pvalue=res.pvalue * mask,
        class_channel_mi_null=res.class_null_mean * mask[:, None],
    )
    if finite.all():
        out.update(res.layer())
        out["gini_corrected"] = metrics.gini(np.clip(res.corrected, 0.0, None))
    return out
