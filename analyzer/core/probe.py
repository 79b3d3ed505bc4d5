"""Probe MI: the variational lower bound I(T;Y) >= H(Y) - CE of a held-out classifier (nats).

For any classifier q(y|t), E[-log q(Y|T)] >= H(Y|T), so H(Y) - CE <= I(T;Y) (Barber &
Agakov 2003). q is multinomial logistic regression (L2, bias unpenalized) on the leading
whitened principal components of the features; CE is measured on held-out stratified
folds. Everything q uses is fitted on the training fold only: the components (from the
training fold's covariance) and the L2 strength, chosen by an inner 2-fold cross-validation
on log loss over a grid solved from strong to weak regularization with warm starts. So
nothing of a test sample leaks into its prediction and the bound stays a held-out bound.
H(Y) is the plug-in entropy of the label frequencies. The bound is below the truth by how
far the best linear-softmax q on the kept components is from p(y|t) (large for labels that
are not linearly decodable, or whose signal lies outside the leading components) and by
finite-N fitting error; its sampling error can put it slightly above the truth or below 0
on independent data. It never exceeds H(Y).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)  # inverse L2 strength (scikit-learn's convention)
PROB_FLOOR = 1e-12  # q of a class the training fold never saw
TOL = 1e-5  # L-BFGS projected-gradient tolerance on the mean log loss


def label_entropy(labels: np.ndarray) -> float:
    """Plug-in entropy (nats) of a label vector."""
    p = np.unique(np.asarray(labels), return_counts=True)[1] / len(labels)
    return float(-(p * np.log(p)).sum())


def stratified_folds(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """(sample,) fold index in [0, n_folds): each class dealt round-robin in random order."""
    fold = np.empty(y.size, np.int64)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (np.arange(idx.size) + rng.integers(n_folds)) % n_folds
    return fold


def _loss_grad(w, x1, onehot, penalty):
    """Mean log loss + penalty/2 |W|^2 (bias row excluded) and its gradient, W (d + 1, K)."""
    w = w.reshape(x1.shape[1], onehot.shape[1])
    logq = log_softmax(x1 @ w, axis=1)
    grad = x1.T @ (np.exp(logq) - onehot) / x1.shape[0]
    grad[:-1] += penalty * w[:-1]
    loss = -(logq * onehot).sum() / x1.shape[0] + 0.5 * penalty * (w[:-1] ** 2).sum()
    return loss, grad.ravel()


def fit_softmax(x1, onehot, c, w0, max_iter=200):
    """Multinomial logistic regression weights (d + 1, K) on x1 = [x, 1], inverse strength c."""
    penalty = 1.0 / (c * x1.shape[0])  # = scikit-learn's C * sum(loss) + |W|^2 / 2
    res = minimize(
        _loss_grad,
        w0.ravel(),
        args=(x1, onehot, penalty),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": TOL},
    )
    return res.x.reshape(w0.shape)


def _log_loss(w, x1, y):
    return -log_softmax(x1 @ w, axis=1)[np.arange(y.size), y].mean()


def _choose_c(x1, y, onehot, c_grid, rng):
    """The c of c_grid with the least inner 2-fold held-out log loss (warm-started path)."""
    inner = stratified_folds(y, 2, rng)
    losses = np.zeros(len(c_grid))
    for f in range(2):
        tr, te = inner != f, inner == f
        w = np.zeros((x1.shape[1], onehot.shape[1]))
        for i, c in enumerate(c_grid):
            w = fit_softmax(x1[tr], onehot[tr], c, w)
            losses[i] += _log_loss(w, x1[te], y[te])
    return c_grid[int(np.argmin(losses))]


def _whitened_components(x_train, dims):
    """(mean (d,), projection (d, k)) onto the leading k <= dims whitened components."""
    mean = x_train.mean(axis=0)
    z = x_train - mean
    cov = z.T @ z / max(len(z) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    keep = np.argsort(evals)[::-1][:dims]
    keep = keep[evals[keep] > evals.max() * 1e-10]
    return mean, evecs[:, keep] / np.sqrt(evals[keep])


def probe_label_mi(
    features: np.ndarray,
    labels: np.ndarray,
    folds: int = 3,
    dims: int = 64,
    c_grid: tuple[float, ...] = C_GRID,
    seed: int = 0,
) -> float:
    """H(Y) - held-out cross-entropy (nats) of a logistic-regression probe on (sample, d).

    folds: outer stratified folds; dims: whitened principal components kept (fitted on
    each training fold). NaN if a feature is NaN/Inf; 0.0 with fewer than two classes.
    """
    x = np.asarray(features, dtype=np.float64)
    _, y = np.unique(np.asarray(labels), return_inverse=True)
    if not np.isfinite(x).all():
        return float("nan")
    n_folds = int(min(folds, np.bincount(y).max()))
    if n_folds < 2 or np.bincount(y).size < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    fold = stratified_folds(y, n_folds, rng)
    onehot = np.eye(y.max() + 1)[y]
    ce = 0.0
    for f in range(n_folds):
        tr, te = fold != f, fold == f
        mean, proj = _whitened_components(x[tr], dims)
        x1 = np.hstack([(x - mean) @ proj, np.ones((y.size, 1))])
        seen = onehot[tr].any(axis=0)  # classes the training fold holds
        sub = onehot[:, seen]
        ytr = np.argmax(sub[tr], axis=1)
        c = _choose_c(x1[tr], ytr, sub[tr], c_grid, rng)
        w = fit_softmax(x1[tr], sub[tr], c, np.zeros((x1.shape[1], sub.shape[1])))
        q = np.full((te.sum(), onehot.shape[1]), PROB_FLOOR)
        q[:, seen] = np.maximum(np.exp(log_softmax(x1[te] @ w, axis=1)), PROB_FLOOR)
        ce -= np.log(q[np.arange(te.sum()), y[te]]).sum()
    return label_entropy(y) - ce / y.size
