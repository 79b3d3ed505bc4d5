"""Plug-in histogram entropies and mutual informations (nats) from joint counts (numpy; the
formula of ``analyzer/core/plugin.py``).

Binning rule (default, ``BINNING``): each variable is binned over its own observed
[min, max] at each epoch into B equal-width bins (the maximum falls in the last bin);
a constant variable lands in one bin and so has zero entropy and zero MI.

Optional Miller-Madow correction adds (m - 1) / (2N) to every entropy, m being the
number of occupied cells, so I_MM = I + (m_x + m_y - m_xy - 1) / (2N).
"""

from __future__ import annotations

import numpy as np

from analyzer.core.kernels import bin_codes, binned_counts, mi_from_target_counts
from analyzer.core.plugin import entropy_from_xlogx, mi_from_xlogx, xlogx_table

BINNING = (
    "per-variable min-max range at each epoch, B equal-width bins: "
    "bin = min(floor((x - min) * (B / (max - min))), B - 1); a constant variable is one bin"
)


def entropy_from_counts(counts: np.ndarray, n: int, miller_madow: bool = False) -> np.ndarray:
    """Entropy (nats) of each distribution along the last axis of ``counts`` (totals n)."""
    t = xlogx_table(n)
    h = entropy_from_xlogx.py_func(t[counts].sum(axis=-1), n, np.log(n))
    if miller_madow:
        h = h + ((counts > 0).sum(axis=-1) - 1) / (2.0 * n)
    return h


def mi_from_joint(counts: np.ndarray, miller_madow: bool = False) -> np.ndarray:
    """MI (nats) of joint count tables ``counts[..., x, y]`` (each table sums to N)."""
    n = int(counts[(0,) * (counts.ndim - 2)].sum())
    t = xlogx_table(n)
    mx = counts.sum(axis=-1)
    my = counts.sum(axis=-2)
    signed_sum = t[counts].sum(axis=(-2, -1)) - t[mx].sum(axis=-1) - t[my].sum(axis=-1)
    mi = mi_from_xlogx.py_func(signed_sum, n, np.log(n))
    mi = np.maximum(mi, 0.0)  # clip rounding below zero
    if miller_madow:
        occupied = lambda a, axes: (a > 0).sum(axis=axes)  # noqa: E731
        mi = mi + (occupied(mx, -1) + occupied(my, -1) - occupied(counts, (-2, -1)) - 1) / (2.0 * n)
    return mi


def indicator_mi(counts: np.ndarray, miller_madow: bool = False) -> np.ndarray:
    """I(X; 1[Y = k]) for every k from joint counts (..., x, k); returns (..., k)."""
    mx = counts.sum(axis=-1, keepdims=True)  # (..., x, 1)
    inside = counts  # (..., x, k): X = x and Y = k
    outside = mx - counts  # X = x and Y != k
    tables = np.stack([inside, outside], axis=-1)  # (..., x, k, 2)
    tables = np.moveaxis(tables, -3, -2)  # (..., k, x, 2)
    return mi_from_joint(tables, miller_madow)


def discrete_mi(x: np.ndarray, y: np.ndarray, miller_madow: bool = False) -> float:
    """MI (nats) of two non-negative integer sequences; small helper for 1-d variables."""
    nx, ny = int(x.max()) + 1, int(y.max()) + 1
    counts = np.bincount(x.astype(np.int64) * ny + y, minlength=nx * ny).reshape(nx, ny)
    return float(mi_from_joint(counts, miller_madow))


def channel_counts(values: np.ndarray, target: np.ndarray, n_bins: int, n_target: int):
    """Bin each channel of ``values`` (sample, channel) and count it jointly with ``target``.

    Returns (finite (channel,) bool, counts (channel, B, K) int32).
    """
    counts, finite = binned_counts(values, target, n_bins, n_target)
    return finite, np.ascontiguousarray(counts.transpose(1, 2, 0))


def channel_label_mi(
    values: np.ndarray,
    labels: np.ndarray,
    n_bins: int,
    n_classes: int | None = None,
    miller_madow: bool = False,
) -> np.ndarray:
    """I(T_c; Y) for each channel c of ``values`` (sample, channel); NaN for non-finite channels."""
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    if miller_madow:
        finite, counts = channel_counts(values, labels, n_bins, n_classes)
        return np.where(finite, mi_from_joint(counts, miller_madow=True), np.nan)
    counts, finite = binned_counts(values, labels, n_bins, n_classes)
    mi = mi_from_target_counts(counts, xlogx_table(len(labels)))
    return np.where(finite, mi, np.nan)


def equal_width_codes(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Codes of a 1-d variable under the default binning rule."""
    codes, finite = bin_codes(np.asarray(x, dtype=np.float64)[:, None], n_bins)
    if not finite[0]:
        raise ValueError("cannot bin a variable with NaN or Inf values")
    return codes[0]


def top_principal_components(values: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Scores (sample, k) on the top-k principal components of standardized columns.

    Layers of at most 32 columns: exact thin SVD. Wider: a randomized range finder (Halko,
    Martinsson & Tropp 2011) with k + 6 probe vectors and 6 power iterations, fixed seed,
    O(N C k) instead of O(N C^2). Constant columns are dropped; missing components are zero.
    Signs are arbitrary (as for any PCA), which no binned MI depends on.
    """
    x = np.asarray(values, dtype=np.float32)
    sd = x.std(axis=0)
    keep = sd > 1e-12 * (np.abs(x).max(axis=0) + 1e-30)
    x = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    n, c = x.shape
    k_eff = min(k, c, n)
    scores = np.zeros((n, k))
    if k_eff == 0:
        return scores
    if c > 32:
        q = np.random.default_rng(seed).standard_normal((c, min(c, k_eff + 6))).astype(np.float32)
        for _ in range(6):
            q, _ = np.linalg.qr(x @ q)
            q, _ = np.linalg.qr(x.T @ q)
        x = x @ q
    u, s, _ = np.linalg.svd(x.astype(np.float64), full_matrices=False)
    scores[:, :k_eff] = u[:, :k_eff] * s[:k_eff]
    return scores


def joint_codes(scores: np.ndarray, n_bins: int) -> np.ndarray:
    """One integer code per sample for the joint bin of several variables (sample, d)."""
    codes, finite = bin_codes(scores, n_bins)
    if not finite.all():
        raise ValueError("cannot bin variables with NaN or Inf values")
    out = np.zeros(scores.shape[0], dtype=np.int64)
    for row in codes:
        out = out * n_bins + row
    return out
