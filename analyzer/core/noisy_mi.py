"""The noisy-network estimator of I(X;T) (Goldfeld et al. 2019, Estimating Information Flow in DNNs) and its pairwise bounds.

With a deterministic representation S(x) and additive noise T = S + N(0, beta^2 I), and X
uniform over n inputs with representations s_1..s_n (d dims):

    I(X;T) = h(T) - h(T|X),   h(T|X) = d/2 log(2 pi e beta^2),

and h(T) is the entropy of the Gaussian mixture (1/n) sum_j N(s_j, beta^2 I), estimated by
Monte Carlo over t_i = s_i + beta z_i. Simplified (E|z|^2 = d exactly is used as a control
variate: exactly log n for well-separated points and exactly 0 for equal ones):

    I = log n - E_{i,z}[ log sum_j exp(a_ij) ],
    a_ij = (|z_i|^2 - |t_i - s_j|^2 / beta^2) / 2 = -D_ij / (2 beta^2) - G_ij / beta,

with D_ij = |s_i - s_j|^2 and G_ij = z_i . (s_i - s_j) (the same z for all betas: common
random numbers). The Kolchinsky-Tracey
pairwise-distance bounds (Entropy 2017) of the mixture entropy give

    upper = log n - mean_i log sum_j exp(-D_ij / (2 beta^2))   (KL divergence)
    lower = log n - mean_i log sum_j exp(-D_ij / (8 beta^2))   (Bhattacharyya distance)

and lower <= I(X;T) <= upper. The j = i term of every sum is exp(0) = 1, so terms with
exponent < -CUTOFF change the log-sum by < n e^-CUTOFF and are skipped: centres are sorted
along the first principal direction and each row visits only the window that can reach it
(compiled kernel, rows in parallel, O(n x window x d) per beta, no n x n matrix). All values in nats, between 0 (all s_i equal) and log n.

Sample-size caveat: X is taken uniform over the n given samples, so I(X;T) <= log n; on CNN
GAP vectors of a validation set this is the MI of the empirical input distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

CUTOFF = 40.0  # exponents below -CUTOFF are dropped: relative change < n e^-40 (~4e-18 n)
CAVEAT = (
    "X uniform over the n analysed samples: I(X;T) <= ln n, the MI of the empirical input "
    "distribution; S is the deterministic representation, T = S + N(0, beta^2 I) per layer "
    "(noise of earlier layers not propagated)"
)


@numba.njit(parallel=True, cache=True)
def _window_sums(s, p, own, z, betas, out_mc, out_up, out_lo):  # pragma: no cover - compiled
    """Per query row i and beta k: log sums over centers j of exp(a_ij) (Monte Carlo),
    exp(-D_ij / (2 beta^2)) and exp(-D_ij / (8 beta^2)), D_ij = |s_own(i) - s_j|^2.

    Centers are sorted by their projection p on one direction, and |p_i - p_j| <= |s_i - s_j|,
    so only centers within a window of p can have an exponent above -CUTOFF: the window
    radius is beta * max(|z| + sqrt(|z|^2 + 2 CUTOFF), sqrt(8 CUTOFF)).
    """
    m, d = z.shape
    for i in numba.prange(m):
        o = own[i]
        zz = 0.0
        for c in range(d):
            zz += z[i, c] * z[i, c]
        zn = math.sqrt(zz)
        reach = max(zn + math.sqrt(zz + 2.0 * CUTOFF), math.sqrt(8.0 * CUTOFF))
        for k in range(betas.shape[0]):
            beta = betas[k]
            c1 = 1.0 / (2.0 * beta * beta)
            lo_j = np.searchsorted(p, p[o] - beta * reach)
            hi_j = np.searchsorted(p, p[o] + beta * reach, side="right")
            s_up = 0.0
            s_lo = 0.0
            s_mc = 0.0
            mx = 0.0  # running max of the MC exponents (the own term is exactly 0)
            for j in range(lo_j, hi_j):
                dd = 0.0
                g = 0.0
                for c in range(d):
                    diff = s[o, c] - s[j, c]
                    dd += diff * diff
                    g += z[i, c] * diff
                a = -dd * c1
                if a > -4.0 * CUTOFF:
                    e4 = math.exp(0.25 * a)
                    s_lo += e4
                    e2 = e4 * e4
                    s_up += e2 * e2
                b = a - g / beta
                if b > mx:
                    s_mc = s_mc * math.exp(mx - b) + 1.0
                    mx = b
                elif b - mx > -CUTOFF:
                    s_mc += math.exp(b - mx)
            out_mc[i, k] = mx + math.log(s_mc)
            out_up[i, k] = math.log(s_up)
            out_lo[i, k] = math.log(s_lo)


def _top_direction(s: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Approximate first principal direction of centred ``s`` (power iteration, O(n d))."""
    v = np.random.default_rng(0).standard_normal(s.shape[1])
    for _ in range(iterations):
        w = s.T @ (s @ v)
        norm = np.linalg.norm(w)
        if norm == 0:
            break
        v = w / norm
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class NoisyMI:
    """Per beta (nats): Monte Carlo estimate and Kolchinsky-Tracey bounds; (n_betas,) each."""

    estimate: np.ndarray
    upper: np.ndarray
    lower: np.ndarray


def noisy_mi(s: np.ndarray, betas, samples_per_point: int = 1, seed: int = 0) -> NoisyMI:
    """I(X; S(X) + N(0, beta^2 I)) for each beta, X uniform over the n rows of ``s`` (n, d).

    ``samples_per_point`` noise draws per row (one is usually enough: the control variate
    leaves little variance); the bounds are exact (no Monte Carlo).
    """
    betas = np.atleast_1d(np.asarray(betas, dtype=np.float64))
    if (betas <= 0).any():
        raise ValueError("beta must be > 0")
    s = np.asarray(s, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    n, d = s.shape
    if not np.isfinite(s).all():
        nan = np.full(len(betas), np.nan)
        return NoisyMI(nan, nan.copy(), nan.copy())
    s = s - s.mean(axis=0)
    rng = np.random.default_rng([seed, 20180101])  # the noise draws, independent of the data
    own = np.tile(np.arange(n), samples_per_point)
    z = rng.standard_normal((len(own), d))
    p = s @ _top_direction(s)
    order = np.argsort(p, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    s_sorted, p_sorted = np.ascontiguousarray(s[order]), np.ascontiguousarray(p[order])
    out = [np.empty((len(own), len(betas))) for _ in range(3)]
    _window_sums(s_sorted, p_sorted, rank[own], z, betas, *out)
    mc, up, lo = (o.sum(axis=0) for o in out)
    up, lo = up / samples_per_point, lo / samples_per_point
    log_n = math.log(n)
    return NoisyMI(
        np.clip(log_n - mc / len(own), 0.0, log_n),
        np.clip(log_n - up / n, 0.0, log_n),
        np.clip(log_n - lo / n, 0.0, log_n),
    )


def noisy_input_mi(s: np.ndarray, beta: float, samples_per_point: int = 4, seed: int = 0) -> float:
    """Monte Carlo estimate (nats) of I(X; S(X) + N(0, beta^2 I)) for s (n, d), one beta."""
    return float(noisy_mi(s, [beta], samples_per_point, seed).estimate[0])
