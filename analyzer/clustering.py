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

import numba as nb
import numpy as np


@dataclass(frozen=True)
class Clustering:
    within: float
    between: float

    @property
    def gap(self) -> float:
        return self.within - self.between


@nb.njit(cache=True, nogil=True)
def _class_sums(values, labels, n_classes):
    """(class sums of the unit rows (K, d), class counts of the nonzero rows (K,), finite)."""
    n, d = values.shape
    sums = np.zeros((n_classes, d))
    counts = np.zeros(n_classes, dtype=np.int64)
    poison = 0.0  # NaN as soon as one value is NaN or Inf
    for i in range(n):
        for j in range(d):
            poison += np.float64(values[i, j]) * 0.0
    if poison != 0.0:
        return sums, counts, False
    buf = np.empty(d)
    for i in range(n):  # rows in order: the accumulation order of np.add.at
        for j in range(d):  # a contiguous float64 copy of the row: vectorized loops below
            buf[j] = values[i, j]
        part = np.zeros(8)  # 8 interleaved partial sums of squares
        d8 = d - d % 8
        for j in range(0, d8, 8):
            for r in range(8):
                part[r] += buf[j + r] * buf[j + r]
        ss = 0.0
        for r in range(8):
            ss += part[r]
        for j in range(d8, d):
            ss += buf[j] * buf[j]
        norm = np.sqrt(ss)
        if norm > 0:
            y = labels[i]
            counts[y] += 1
            acc = sums[y]
            for j in range(d):
                acc[j] += buf[j] / norm
    return sums, counts, True


def cosine_clustering(values: np.ndarray, labels: np.ndarray) -> Clustering:
    """Mean within-class and between-class cosine similarity of the rows of ``values`` (n, d).

    One compiled pass over ``values`` (any float dtype or strides; math in float64).
    """
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1
    sums, counts, finite = _class_sums(values, labels, k)
    if not finite:
        return Clustering(math.nan, math.nan)
    n_k = counts.astype(np.float64)
    gram = sums @ sums.T
    same_pairs = (n_k * (n_k - 1)).sum()
    within = (np.trace(gram) - n_k.sum()) / same_pairs if same_pairs > 0 else math.nan
    cross_pairs = n_k.sum() ** 2 - (n_k**2).sum()
    between = (gram.sum() - np.trace(gram)) / cross_pairs if cross_pairs > 0 else math.nan
    return Clustering(float(within), float(between))
