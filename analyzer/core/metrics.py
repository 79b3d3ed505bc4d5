"""Concentration of channel-label MI within a layer, and training dynamics of layer MI.

Concentration (the paper's §3.6, Experimental Design and Analysis Framework), for the C channels of a layer with ``p_c = MI_c / sum MI``:

* ``gini``: ``sum_i (2i - C - 1) p_(i) / C`` with p sorted ascending, i = 1..C;
* ``topk_share``: sum of the largest ``ceil(k% * C)`` of p;
* ``norm_entropy``: ``-sum p log p / log C`` (dimensionless).

All are NaN where the layer's total MI is 0 or not finite (p undefined); norm_entropy
is NaN for a single-channel layer.
"""

from __future__ import annotations

import math

import numpy as np

from latent_mi import contract as C


def _shares(mi: np.ndarray) -> np.ndarray | None:
    mi = np.asarray(mi, dtype=np.float64)
    total = mi.sum()
    if not np.isfinite(total) or total <= 0:
        return None
    return mi / total


def gini(mi: np.ndarray) -> float:
    p = _shares(mi)
    if p is None:
        return math.nan
    c = len(p)
    i = np.arange(1, c + 1)
    return float(((2 * i - c - 1) * np.sort(p)).sum() / c)


def topk_share(mi: np.ndarray, k_percent: float) -> float:
    p = _shares(mi)
    if p is None:
        return math.nan
    m = max(1, math.ceil(k_percent / 100.0 * len(p) - 1e-9))
    return float(np.sort(p)[::-1][:m].sum())


def norm_entropy(mi: np.ndarray) -> float:
    p = _shares(mi)
    if p is None or len(p) < 2:
        return math.nan
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / np.log(len(p)))


def best_epoch(val_acc: np.ndarray) -> int:
    """Index of the best validation accuracy: :func:`latent_mi.contract.best_epoch`."""
    return C.best_epoch(val_acc)


def delta_input_mi(input_mi: np.ndarray, best: int) -> tuple[np.ndarray, float]:
    """Per-layer ``I(X;T)[best] - I(X;T)[0]`` and its mean over the final third of layers.

    input_mi: (epoch, layer). The final third is the last ceil(L / 3) layers.
    """
    per_layer = input_mi[best] - input_mi[0]
    n_final = C.n_final_third(input_mi.shape[1])
    return per_layer, float(np.mean(per_layer[-n_final:]))


def post_plateau_slopes(
    label_mi: np.ndarray,
    input_mi: np.ndarray,
    epochs: np.ndarray,
    fraction: float = 0.95,
    min_points: int = 3,
):
    """Per layer: plateau epoch of I(T;Y) and least-squares slope of I(X;T) after it.

    The plateau is the first epoch where I(T;Y) reaches ``fraction`` of its maximum over
    training (a data-driven rule). The slope (nats/epoch) is fitted on epochs >= plateau;
    NaN with fewer than ``min_points`` epochs. Arrays are (epoch, layer).
    """
    n_layers = label_mi.shape[1]
    plateau = np.full(n_layers, -1, dtype=np.int64)
    slope = np.full(n_layers, np.nan)
    for layer in range(n_layers):
        y = label_mi[:, layer]
        if not np.isfinite(y).all():
            continue
        idx = int(np.argmax(y >= fraction * y.max()))
        plateau[layer] = epochs[idx]
        x, v = epochs[idx:].astype(np.float64), input_mi[idx:, layer]
        if len(x) >= min_points and np.isfinite(v).all():
            slope[layer] = np.polyfit(x, v, 1)[0]
    return plateau, slope
