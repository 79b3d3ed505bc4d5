"""The plug-in (maximum-likelihood) entropy and mutual information from counts, written once.

For integer counts c with total n (natural log, nats), with every sum of ``c log c`` read from
the lookup table :func:`xlogx_table`:

    H(X)    = log n - (sum_x c_x log c_x) / n                                  entropy_from_xlogx
    I(X; Y) = (sum_xy c_xy log c_xy - sum_x c_x log c_x - sum_y c_y log c_y) / n + log n
                                                                               mi_from_xlogx

Every kernel of ``analyzer/core`` (and the numpy helpers of ``histogram.py`` and
``whole_layer.py``, through ``.py_func``) computes its entropies and MIs with these functions;
each kernel only sums the ``c log c`` terms of its own table layout, in its own order (the
order fixes the rounding, so results are bit-identical to earlier versions), and passes the
signed sum here. :func:`indicator_mis` is the class-indicator MI I(T; 1[Y = k]) of a
(bin, class) table, shared by the fused, the label-count and the null kernels.

The compiled helpers are inlined into their callers (``inline="always"``). numba's on-disk
cache checks only the caller's own source file; :mod:`analyzer.kernel_cache` therefore
recompiles every kernel of ``analyzer/core`` when any of its files changes.
"""

from __future__ import annotations

import numba as nb
import numpy as np


def xlogx_table(n: int) -> np.ndarray:
    """t[k] = k log k for k = 0..n (t[0] = 0), float64 (n + 1,)."""
    k = np.arange(n + 1, dtype=np.float64)
    return k * np.log(np.maximum(k, 1.0))


@nb.njit(inline="always")
def mi_from_xlogx(signed_sum, n, log_n):
    """Plug-in MI (nats) from S = sum_xy c log c - sum_x c log c - sum_y c log c (the joint
    table's terms minus both marginals' terms, summed in the caller's order): S / n + log n.
    Not clipped: rounding can leave it a hair below 0 (see :func:`at_least_zero`)."""
    return signed_sum / n + log_n


@nb.njit(inline="always")
def entropy_from_xlogx(xlogx_sum, n, log_n):
    """Plug-in entropy (nats) from sum_x c_x log c_x of counts with total n: log n - sum / n."""
    return log_n - xlogx_sum / n


@nb.njit(inline="always")
def at_least_zero(mi):
    """An MI with its rounding below zero clipped: ``mi`` if mi > 0, else 0.0."""
    return mi if mi > 0.0 else 0.0


@nb.njit(inline="always")
def indicator_mis(tables, t, bin_sizes, class_sizes, marginal, n, log_n, xlogx, out, row):
    """out[row, k] = I(T; 1[Y = k]) (nats, clipped at 0) for every class k of the (bin, class)
    table ``tables[t]``.

    tables: (T, B, K) counts; bin_sizes: (B,) the table's row sums; class_sizes: (K,) its
    column sums (total n); marginal: sum_b bin_sizes[b] log bin_sizes[b]. The (bin, indicator)
    table of class k is (tables[t, b, k], bin_sizes[b] - tables[t, b, k]); the indicator's
    marginal is (n_k, n - n_k). (Indexing the 3-d arrays, not row views: no view per call.)
    """
    n_bins, n_classes = tables.shape[1], tables.shape[2]
    for k in range(n_classes):
        s = 0.0
        for b in range(n_bins):
            inside = tables[t, b, k]
            s += xlogx[inside] + xlogx[bin_sizes[b] - inside]
        s -= marginal + xlogx[class_sizes[k]] + xlogx[n - class_sizes[k]]
        out[row, k] = at_least_zero(mi_from_xlogx(s, n, log_n))
