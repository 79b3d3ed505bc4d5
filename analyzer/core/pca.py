"""Layer-level principal components without a full SVD per (epoch, layer).

Rule (written into the MI Dataset's attrs as :data:`RULE`): the layer's GAP columns are
standardized with their mean and standard deviation over all N samples (from the fused
pass; constant columns dropped); the top-k principal axes are estimated on a fixed seeded
subsample of ``min(N, subsample)`` samples by a randomized range finder (Halko, Martinsson
& Tropp 2011: k + 6 Gaussian probes, ``power_iterations`` power iterations with QR
re-orthonormalization, then an exact SVD of the small projected matrix); layers of at most
``exact_up_to`` columns use the exact SVD of the subsample; every sample is then projected
on the axes. Cost O(m C (k + 6) q) instead of O(N C^2). Single-threaded BLAS: bit-identical
whatever the worker count. Signs are arbitrary (as for any PCA); binned MIs ignore them.
"""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import ThreadpoolController

SUBSAMPLE = 1024
POWER_ITERATIONS = 4
EXACT_UP_TO = 32
OVERSAMPLE = 6
RULE = (
    "columns standardized over all samples (constant columns dropped); top-k axes from the "
    f"samples of a fixed seeded subsample of min(N, {SUBSAMPLE}) by a randomized range finder "
    f"(k + {OVERSAMPLE} probes, {POWER_ITERATIONS} power iterations; exact SVD for <= {EXACT_UP_TO} "
    "columns); all samples projected on those axes"
)


@functools.cache
def _controller() -> ThreadpoolController:
    """One scan of the loaded BLAS libraries per process (a scan per call costs ~1 ms)."""
    return ThreadpoolController()


def subsample(n_samples: int, seed: int, size: int = SUBSAMPLE) -> np.ndarray:
    """The fixed sample subsample of the PCA rule (sorted indices)."""
    if n_samples <= size:
        return np.arange(n_samples)
    return np.sort(np.random.default_rng([seed, 7919]).choice(n_samples, size, replace=False))


def layer_scores(
    values: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    k: int,
    rows: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """Scores (sample, k) float64 of all samples on the layer's top-k axes (see :data:`RULE`).

    values: (sample, channel) of one layer; mean, sd: (channel,) over all samples; rows:
    the fixed subsample. Missing components (fewer non-constant columns than k) are zero.
    """
    keep = sd > 1e-12 * (np.abs(mean) + sd + 1e-30)
    n = values.shape[0]
    scores = np.zeros((n, k))
    k_eff = min(k, int(keep.sum()), len(rows))
    if k_eff == 0:
        return scores
    with _controller().limit(limits=1):  # single-threaded BLAS: bit-identical results
        inv = np.where(keep, 1.0 / np.where(keep, sd, 1.0), 0.0).astype(np.float32)
        mu = np.where(keep, mean, 0.0).astype(np.float32)
        sub = (values[rows].astype(np.float32) - mu) * inv  # (m, C) standardized, dropped = 0
        axes = _top_axes(sub[:, keep], k_eff, seed)  # (c_kept, k_eff)
        w = np.zeros((values.shape[1], k_eff), dtype=np.float32)
        w[keep] = axes * inv[keep, None]  # scores = (x - mu) * inv @ axes = x @ w - mu @ w
        s = values.astype(np.float32, copy=False) @ w
        scores[:, :k_eff] = s.astype(np.float64) - (mu @ w).astype(np.float64)
    return scores


def _top_axes(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Top-k right singular vectors (c, k) of the centred subsample x (m, c)."""
    x = x - x.mean(axis=0)
    m, c = x.shape
    if c <= EXACT_UP_TO or c <= k + OVERSAMPLE:
        _, _, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
        return vt[:k].T
    probes = min(c, m, k + OVERSAMPLE)
    q = np.random.default_rng([seed, c]).standard_normal((c, probes)).astype(np.float32)
    q, _ = np.linalg.qr(x @ q)  # (m, probes): range of x
    for _ in range(POWER_ITERATIONS):
        q, _ = np.linalg.qr(x.T @ q)
        q, _ = np.linalg.qr(x @ q)
    small = (q.T @ x).astype(np.float64)  # (probes, c)
    _, _, vt = np.linalg.svd(small, full_matrices=False)
    return vt[:k].T


def exact_scores(values: np.ndarray, k: int) -> np.ndarray:
    """Reference: scores on the top-k axes of the full standardized data by a full SVD."""
    x = np.asarray(values, dtype=np.float64)
    sd = x.std(axis=0)
    keep = sd > 1e-12 * (np.abs(x.mean(axis=0)) + sd + 1e-30)
    x = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    out = np.zeros((len(x), k))
    k_eff = min(k, x.shape[1])
    out[:, :k_eff] = u[:, :k_eff] * s[:k_eff]
    return out
