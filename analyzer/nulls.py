"""Label-permutation nulls of channel-label MI (compiled; one pass over the bin codes per permutation).

A plug-in histogram MI of a channel that carries no label information is not 0: it is about
(B - 1)(K - 1) / (2N) nats (B occupied bins, K classes, N samples). The null of channel c is
the distribution of I(T_c; pi(Y)) over P seeded label permutations pi. The permutations are
drawn once (``permuted_labels``) and reused for every channel, layer and epoch of a run, so
nulls are reproducible from their seed and comparable across layers.

Outputs (per channel): the null mean, the corrected MI (observed - null mean) and the
permutation p-value (1 + #{null >= observed}) / (1 + P); per layer: the null of the layer mean
(mean over channels, as ``label_mi``), its 2.5% / 97.5% quantiles over permutations and its
p-value; per (channel, class): the null mean of I(T_c; 1[Y = k]) (same permuted tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from . import metrics
from .kernels import xlogx_table

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
    mi = (s - marg - cls) / n + log_n
    for k in range(n_classes):
        t = 0.0
        for b in range(n_bins):
            inside = joint[b * n_classes + k]
            t += xlogx[inside] + xlogx[bin_sizes[b] - inside]
        t -= marg + xlogx[class_sizes[k]] + xlogx[n - class_sizes[k]]
        v = t / n + log_n
        out_cls[row, k] = v if v > 0.0 else 0.0
    return mi if mi > 0.0 else 0.0


@nb.njit(parallel=True, cache=True, nogil=True)
def _null_kernel(codes, labels, perms, n_bins, n_classes, xlogx):
    c_total, n = codes.shape
    n_perm = perms.shape[0]
    observed = np.empty(c_total)
    null = np.empty((n_perm, c_total))
    cls_obs = np.empty((c_total, n_classes))
    cls_null = np.zeros((c_total, n_classes))
    class_sizes = np.zeros(n_classes, dtype=np.int64)
    for i in range(n):
        class_sizes[labels[i]] += 1
    for c in nb.prange(c_total):
        row = codes[c]
        bin_sizes = np.zeros(n_bins, dtype=np.int64)
        for i in range(n):
            bin_sizes[row[i]] += 1
        joint = np.zeros(n_bins * n_classes, dtype=np.int64)
        scratch = np.empty((1, n_classes))
        for i in range(n):
            joint[row[i] * n_classes + labels[i]] += 1
        observed[c] = _table_terms(
            joint, bin_sizes, class_sizes, n, n_bins, n_classes, xlogx, scratch, 0
        )
        for k in range(n_classes):
            cls_obs[c, k] = scratch[0, k]
        for p in range(n_perm):
            joint[:] = 0
            perm = perms[p]
            for i in range(n):
                joint[row[i] * n_classes + perm[i]] += 1
            null[p, c] = _table_terms(
                joint, bin_sizes, class_sizes, n, n_bins, n_classes, xlogx, scratch, 0
            )
            for k in range(n_classes):
                cls_null[c, k] += scratch[0, k] / n_perm
    return observed, null, cls_obs, cls_null


@dataclass
class ChannelNull:
    """Permutation null of one layer's channels (C channels, P permutations, K classes)."""

    observed: np.ndarray  # (C,) I(T_c; Y), nats (the plug-in MI on the same codes)
    null: np.ndarray  # (P, C) I(T_c; pi_p(Y)), nats
    class_observed: np.ndarray  # (C, K) I(T_c; 1[Y = k]), nats
    class_null_mean: np.ndarray  # (C, K) mean over permutations, nats

    @property
    def null_mean(self) -> np.ndarray:
        return self.null.mean(axis=0)

    @property
    def corrected(self) -> np.ndarray:
        return self.observed - self.null_mean

    @property
    def pvalue(self) -> np.ndarray:
        """(1 + #{null >= observed}) / (1 + P) per channel (dimensionless)."""
        hits = (self.null >= self.observed[None, :] - _TIE).sum(axis=0)
        return (1.0 + hits) / (1.0 + self.null.shape[0])

    def layer(self) -> dict:
        """Layer-level null of the channel mean (as ``label_mi``): mean, 2.5/97.5% quantiles, p."""
        per_perm = self.null.mean(axis=1)  # (P,)
        obs = float(self.observed.mean())
        hits = int((per_perm >= obs - _TIE).sum())
        return {
            "label_mi_null": float(per_perm.mean()),
            "label_mi_null_lo": float(np.quantile(per_perm, 0.025)),
            "label_mi_null_hi": float(np.quantile(per_perm, 0.975)),
            "label_mi_corrected": obs - float(per_perm.mean()),
            "label_mi_pvalue": (1.0 + hits) / (1.0 + len(per_perm)),
        }


def channel_null(
    codes: np.ndarray, labels: np.ndarray, perms: np.ndarray, n_bins: int, n_classes: int
) -> ChannelNull:
    """Observed and permutation-null channel-label MI from bin codes.

    codes: (channel, sample) uint8 bins in [0, n_bins); labels: (sample,) ints in
    [0, n_classes); perms: (P, sample) permuted labels (``permuted_labels``).
    """
    codes = np.ascontiguousarray(codes)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    perms = np.ascontiguousarray(perms, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[1] != len(labels) or perms.shape[1:] != labels.shape:
        raise ValueError("codes (C, N), labels (N,) and perms (P, N) must share N")
    xlogx = xlogx_table(len(labels))
    obs, null, cls_obs, cls_null = _null_kernel(codes, labels, perms, n_bins, n_classes, xlogx)
    return ChannelNull(obs, null, cls_obs, cls_null)


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
    res = channel_null(codes, labels, perms, n_bins, n_classes)
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
