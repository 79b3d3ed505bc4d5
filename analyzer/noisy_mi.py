"""The noisy-network estimator of I(X;T) (seeds/002, Saxe et al.).

With a deterministic representation S(x) and additive noise T = S + N(0, beta^2 I), and X
uniform over n distinct inputs with representations s_1..s_n (d dims):

    I(X;T) = h(T) - h(T|X),   h(T|X) = d/2 log(2 pi e beta^2),

and h(T) is the entropy of the Gaussian mixture (1/n) sum_i N(s_i, beta^2 I), estimated by
Monte Carlo. Simplified, with t = s_i + beta z:

    I = log n - d/2 - E_{i,z}[ logsumexp_j( -|t - s_j|^2 / (2 beta^2) ) ]
      = log n - E_{i,z}[ log sum_j exp( (|z|^2 - |t - s_j|^2 / beta^2) / 2 ) ]

(the second form uses E|z|^2 = d exactly, a control variate that removes most of the Monte
Carlo noise: it is exactly log n for well-separated points and exactly 0 for equal ones).

It is finite and between 0 (all s_i equal) and log n (well-separated s_i), unlike the
binned H(Bin T), which depends on the bin width instead of a noise scale.
"""

from __future__ import annotations

import numpy as np


def noisy_input_mi(
    s: np.ndarray, beta: float, samples_per_point: int = 4, seed: int = 0, block: int = 512
) -> float:
    """Monte Carlo estimate (nats) of I(X; S(X) + N(0, beta^2 I)) for s (n, d)."""
    if beta <= 0:
        raise ValueError("beta must be > 0")
    s = np.asarray(s, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    n, d = s.shape
    rng = np.random.default_rng(seed)
    sq = (s * s).sum(axis=1)
    total, count = 0.0, 0
    for _ in range(samples_per_point):
        z = rng.standard_normal(s.shape)
        t_all = s + beta * z
        own = -(z * z).sum(axis=1) / 2.0  # the log-kernel of each sample's own component
        for start in range(0, n, block):
            t = t_all[start : start + block]
            d2 = (t * t).sum(axis=1)[:, None] + sq[None, :] - 2.0 * t @ s.T
            a = -np.maximum(d2, 0.0) / (2.0 * beta**2) - own[start : start + block, None]
            m = a.max(axis=1, keepdims=True)
            lse = (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]
            total += lse.sum()
            count += len(t)
    return float(np.log(n) - total / count)
