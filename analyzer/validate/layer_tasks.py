"""Ground-truth layer tasks: a d-dimensional layer against a K-class label, MI known twice.

Class k (uniform prior) has its mean sep * a_k on an r-dimensional random subspace of R^d
(orthonormal basis B (d, r), fixed per (d, r)) and isotropic unit Gaussian noise in all d
coordinates: X = sep * B a_Y + eps. r = 1: a_k = k (along B, the 1-D "gaussian" task of
``analyzer.validate.tasks``); r = 2: a_k on the unit circle at angle 2 pi k / K. A
``transform`` (``tasks.TRANSFORMS``) is applied to every coordinate: a monotone map per
coordinate is invertible, so it keeps I(X;Y).

The true MI two ways: the d-dimensional Monte Carlo E[log f(X|Y) - log f(X)] over fresh
draws (with its standard error), and quadrature of the r-dimensional mixture: the noise
orthogonal to the subspace is independent of Y and of B^T X, so I(X;Y) = I(B^T X;Y) with
B^T X = sep a_Y + N(0, I_r) (r = 1: adaptive quadrature; r = 2: the trapezoid rule on a
grid of step 0.05, spectrally accurate for these smooth, fast-decaying integrands).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from analyzer.validate.tasks import TRANSFORMS, true_mi_quadrature


@dataclass(frozen=True)
class LayerTask:
    """A d-dimensional layer whose label signal lies on a rank-dimensional subspace."""

    d: int
    n_classes: int
    rank: int  # 1 or 2
    sep: float
    transform: str = "identity"

    def __post_init__(self):
        if self.rank not in (1, 2) or self.d < self.rank:
            raise ValueError(f"layer task needs rank 1 or 2 and d >= rank, got {self}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {self.transform!r}; known: {list(TRANSFORMS)}")

    def name(self) -> str:
        return f"d={self.d} K={self.n_classes} r={self.rank} s={self.sep} {self.transform}"

    def means(self) -> np.ndarray:
        """(K, rank) class means in subspace coordinates."""
        k = np.arange(self.n_classes, dtype=np.float64)
        if self.rank == 1:
            return self.sep * k[:, None]
        angle = 2 * np.pi * k / self.n_classes
        return self.sep * np.stack([np.cos(angle), np.sin(angle)], axis=1)

    def basis(self) -> np.ndarray:
        """(d, rank) orthonormal basis of the signal subspace (fixed per d and rank)."""
        rng = np.random.default_rng([self.d, self.rank, 17])
        return np.linalg.qr(rng.normal(size=(self.d, self.rank)))[0]

    def sample(self, n: int, rng: np.random.Generator, transform: bool = True):
        """(values (n, d) float32, labels (n,)) with uniform random labels."""
        y = rng.integers(0, self.n_classes, n)
        x = self.means()[y] @ self.basis().T + rng.normal(size=(n, self.d))
        if transform:
            x = TRANSFORMS[self.transform](x)
        return x.astype(np.float32), y

    def true_mi_monte_carlo(self, n: int, rng: np.random.Generator, chunk: int = 10_000):
        """(I, standard error) nats: mean of log f(x|y) - log f(x) over n draws, in d dims."""
        centres = self.means() @ self.basis().T  # (K, d)
        terms = []
        for start in range(0, n, chunk):
            y = rng.integers(0, self.n_classes, min(chunk, n - start))
            x = centres[y] + rng.normal(size=(y.size, self.d))
            sq = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)
            log_f = -0.5 * sq  # log N(x; centre_k, I_d) up to the same constant for every k
            mix = logsumexp(log_f, axis=1) - np.log(self.n_classes)
            terms.append(log_f[np.arange(y.size), y] - mix)
        terms = np.concatenate(terms)
        return float(terms.mean()), float(terms.std() / np.sqrt(terms.size))

    def true_mi_quadrature(self, step: float = 0.05) -> float:
        """I(X;Y) nats as the MI of the rank-dimensional projection (see the module doc)."""
        if self.rank == 1:
            return true_mi_quadrature("gaussian", self.n_classes, self.sep)
        reach = self.sep + 9.0  # the densities are < 1e-17 beyond 9 sd of every mean
        grid = np.arange(-reach, reach + step / 2, step)
        gx, gy = np.meshgrid(grid, grid, indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
        log_f = np.stack(
            [-0.5 * ((pts - m) ** 2).sum(1) - np.log(2 * np.pi) for m in self.means()]
        )  # (K, points)
        log_mix = logsumexp(log_f, axis=0) - np.log(self.n_classes)
        integrand = (np.exp(log_f) * (log_f - log_mix)).mean(axis=0)
        return float(integrand.sum() * step * step)


def layer_estimates(x: np.ndarray, y: np.ndarray, dims: int = 4, k: int = 3, seed: int = 0):
    """The analyzer's layer-level estimates of one (sample, d) layer, as in
    ``analyzer.estimators.layer_outputs``: kNN and Gaussian on the leading ``dims``
    principal components (the analyzer's PCA rule), the probe on the whole layer."""
    from analyzer.core import pca
    from analyzer.core.gaussian import gaussian_layer_mi
    from analyzer.core.knn import knn_layer_mi
    from analyzer.core.probe import probe_label_mi

    x64 = x.astype(np.float64)
    rows = pca.subsample(len(y), seed)
    proj = pca.layer_scores(x, x64.mean(0), x64.std(0), dims, rows, seed)
    return {
        f"kNN k={k}, {dims} PCs": knn_layer_mi(proj, y, k),
        f"Gaussian, {dims} PCs": gaussian_layer_mi(proj, y),
        "probe (whole layer)": probe_label_mi(x, y, seed=seed),
    }
