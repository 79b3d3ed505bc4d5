"""Clustering of a representation by class (Goldfeld et al. 2019): mean cosine similarity within and between classes.

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
def _class_sums(base, c0, c1, labels, n_classes):
    """(class sums of the unit rows (K, d), class counts of the nonzero rows (K,), finite) of
    the rows base[i, c0:c1] (one pass; contiguous rows when ``base`` is C-contiguous)."""
    n = base.shape[0]
    d = c1 - c0
    sums = np.zeros((n_classes, d))
    counts = np.zeros(n_classes, dtype=np.int64)
    poison = 0.0  # NaN as soon as one value is NaN or Inf
    buf = np.empty(d)
    part = np.empty(8)
    d8 = d - d % 8
    for i in range(n):  # rows in order: the accumulation order of np.add.at
        row = base[i, c0:c1]
        for j in range(d):  # a contiguous float64 copy of the row: vectorized loops below
            buf[j] = row[j]
        part[:] = 0.0  # 8 interleaved partial sums of squares
        for j in range(0, d8, 8):
            for r in range(8):
                part[r] += buf[j + r] * buf[j + r]
        ss = 0.0
        for r in range(8):
            ss += part[r]
        for j in range(d8, d):
            ss += buf[j] * buf[j]
        poison += ss * 0.0  # NaN or Inf anywhere in the row makes ss NaN or Inf
        norm = np.sqrt(ss)
        if norm > 0:
            y = labels[i]
            counts[y] += 1
            acc = sums[y]
            for j in range(d):
                acc[j] += buf[j] / norm
    return sums, counts, poison == 0.0


def _rows(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(base, c0, c1) with base[:, c0:c1] = values and base C-contiguous when ``values`` is a
    column range of a C-contiguous array (a layer of a segment): its rows then vectorize."""
    base = values.base
    if (
        isinstance(base, np.ndarray)
        and base.ndim == 2
        and base.flags.c_contiguous
        and base.dtype == values.dtype
        and base.shape[0] == values.shape[0]
        and base.strides == values.strides
    ):
        offset = values.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        c0 = offset // values.itemsize
        if offset % values.itemsize == 0 and 0 <= c0 and c0 + values.shape[1] <= base.shape[1]:
            return base, c0, c0 + values.shape[1]
    return values, 0, values.shape[1]


def cosine_clustering(values: np.ndarray, labels: np.ndarray) -> Clustering:
    """Mean within-class and between-class cosine similarity of the rows of ``values`` (n, d).

    One compiled pass over ``values`` (any float dtype or strides; math in float64).
    """
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1
    sums, counts, finite = _class_sums(*_rows(values), labels, k)
    if not finite:
        return Clustering(math.nan, math.nan)
    n_k = counts.astype(np.float64)
    gram = sums @ sums.T
    same_pairs = (n_k * (n_k - 1)).sum()
    within = (np.trace(gram) - n_k.sum()) / same_pairs if same_pairs > 0 else math.nan
    cross_pairs = n_k.sum() ** 2 - (n_k**2).sum()
    between = (gram.sum() - np.trace(gram)) / cross_pairs if cross_pairs > 0 else math.nan
    return Clustering(float(within), float(between))
