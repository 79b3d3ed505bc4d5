"""Clustering of a representation by class (seeds/002): mean cosine similarity within and between classes.

For unit vectors u_i = t_i / |t_i| (samples with t_i = 0 left out) and class sums U_k:

* within = sum_k (|U_k|^2 - n_k) / sum_k n_k (n_k - 1): mean over ordered pairs i != j of one class;
* between = sum_{k != l} U_k . U_l / sum_{k != l} n_k n_l: mean over pairs of different classes;
* gap = within - between (grows as same-class inputs cluster).

Exact and O(n d) (the class sums replace the n x n similarity matrix); dimensionless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clustering:
    within: float
    between: float

    @property
    def gap(self) -> float:
        return self.within - self.between


def cosine_clustering(values: np.ndarray, labels: np.ndarray) -> Clustering:
    """Mean within-class and between-class cosine similarity of the rows of ``values`` (n, d)."""
    t = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if not np.isfinite(t).all():
        return Clustering(math.nan, math.nan)
    norm = np.linalg.norm(t, axis=1)
    keep = norm > 0
    u, y = t[keep] / norm[keep, None], labels[keep]
    k = int(labels.max()) + 1
    sums = np.zeros((k, t.shape[1]))
    np.add.at(sums, y, u)
    n_k = np.bincount(y, minlength=k).astype(np.float64)
    gram = sums @ sums.T
    same_pairs = (n_k * (n_k - 1)).sum()
    within = (np.trace(gram) - n_k.sum()) / same_pairs if same_pairs > 0 else math.nan
    cross_pairs = n_k.sum() ** 2 - (n_k**2).sum()
    between = (gram.sum() - np.trace(gram)) / cross_pairs if cross_pairs > 0 else math.nan
    return Clustering(float(within), float(between))
