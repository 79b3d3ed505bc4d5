"""Gaussian MI of channels and of a layer's projection against a discrete label (nats).

I(T;Y) = h(T) - sum_k p_k h(T | Y=k) with every entropy that of a Gaussian fitted by
maximum likelihood; the 2*pi*e terms cancel, leaving

    I = 0.5 * (log det S - sum_k p_k log det S_k)

S the covariance of all samples, S_k of the samples of class k (1-D: variances, ddof=0).
For a d-dimensional projection the covariances are Ledoit-Wolf shrinkage estimates (as
``sklearn.covariance.ledoit_wolf``, each class centred on its own mean). Exact when T is
Gaussian given Y and marginally Gaussian; otherwise it is the MI of the moment-matched
Gaussians: a monotone map of T (ReLU, tanh) changes it, and a class mixture with unequal
means is not Gaussian, so it is biased (for two well-separated classes it can exceed H(Y)).
"""

from __future__ import annotations

import numpy as np


def _class_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes, np.bincount(codes)


def gaussian_label_mi(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Gaussian MI (nats) of each column of values (sample, channel) with labels (sample,).

    NaN for a channel with NaN/Inf; +inf where a class has zero variance but the channel
    does not (the Gaussian entropy of a point mass is -inf).
    """
    x = np.asarray(values, dtype=np.float64)
    codes, counts = _class_codes(labels)
    x = x - x.mean(axis=0)
    onehot = np.zeros((codes.size, counts.size))
    onehot[np.arange(codes.size), codes] = 1.0
    means = (onehot.T @ x) / counts[:, None]  # (class, channel)
    var_k = (onehot.T @ (x * x)) / counts[:, None] - means**2
    var = (x * x).mean(axis=0)
    p = counts / codes.size
    with np.errstate(divide="ignore", invalid="ignore"):
        mi = 0.5 * (np.log(var) - p @ np.log(np.maximum(var_k, 0.0)))
    mi = np.where(var > 0, mi, 0.0)  # a constant channel carries no information
    return np.where(np.isfinite(x).all(axis=0), mi, np.nan)


def ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrunk covariance (d, d) of centred samples x (n, d), as scikit-learn's."""
    n, d = x.shape
    emp = x.T @ x / n
    mu = np.trace(emp) / d
    x2 = x * x
    beta_ = (x2.T @ x2).sum()
    delta_ = (emp**2).sum()
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2 * mu * np.trace(emp) + d * mu**2) / d
    shrink = 0.0 if beta == 0 else min(beta, delta) / delta
    return (1 - shrink) * emp + shrink * mu * np.eye(d)


def gaussian_layer_mi(projection: np.ndarray, labels: np.ndarray) -> float:
    """Gaussian MI (nats) of a (sample, d) projection with labels, shrinkage covariances."""
    t = np.asarray(projection, dtype=np.float64)
    if not np.isfinite(t).all():
        return float("nan")
    codes, counts = _class_codes(labels)
    total = np.linalg.slogdet(ledoit_wolf(t - t.mean(axis=0)))[1]
    within = 0.0
    for k, n_k in enumerate(counts):
        tk = t[codes == k]
        within += n_k / codes.size * np.linalg.slogdet(ledoit_wolf(tk - tk.mean(axis=0)))[1]
    return 0.5 * (total - within)
