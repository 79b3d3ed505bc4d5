"""Whole-layer binning of narrow layers (Shwartz-Ziv & Tishby 2017): the joint pattern of all of a layer's units.

For a layer of d units with values T (n, d), each unit is binned by one rule and the d bin
indices of a sample form its joint pattern. With X uniform over n distinct inputs and a
deterministic network:

* ``layer_input_mi = I(X; Bin(T)) = H(Bin(T))`` (a clustering measure, Goldfeld et al. 2019);
* ``layer_label_mi = I(Bin(T); Y)``, plug-in, nats.

Rules (``LayerBinning``): ``size``: fixed bin size b, bin = floor(t / b) (Shwartz-Ziv & Tishby: b = 2/30,
30 bins across tanh's [-1, 1]); ``range``: B equal-width bins over the layer's observed
[min, max] at that epoch (all units share the range; for ReLU). From ~16 units on, the
joint pattern of n ~ 4,000 samples saturates (every sample its own pattern: H = ln n,
I(T;Y) = H(Y)), so wider layers are refused unless forced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analyzer.core.plugin import entropy_from_xlogx

MAX_UNITS = 16


@dataclass(frozen=True)
class LayerBinning:
    rule: str  # "size" (fixed bin size) or "range" (B bins over the observed range)
    param: float  # bin size b, or bin count B

    def __post_init__(self):
        if self.rule not in ("size", "range"):
            raise ValueError(f"layer binning rule {self.rule!r}: use 'size' or 'range'")
        if not self.param > 0 or (self.rule == "range" and int(self.param) < 1):
            raise ValueError(
                f"layer binning {self.rule} needs a positive parameter, got {self.param}"
            )

    def describe(self) -> str:
        if self.rule == "size":
            return f"fixed bin size b = {self.param:.6g}: bin = floor(t / b) per unit, joint pattern of the layer"
        return (
            f"{int(self.param)} equal-width bins over the layer's observed [min, max] at each epoch "
            "(shared by its units), joint pattern of the layer"
        )


class SaturationError(ValueError):
    """Whole-layer binning asked of a layer too wide for a non-saturated joint pattern."""


def check_width(n_units: int, n_samples: int, force: bool, max_units: int = MAX_UNITS) -> None:
    if n_units > max_units and not force:
        raise SaturationError(
            f"whole-layer binning of {n_units} units is refused (> {max_units}): the joint pattern "
            f"saturates, every one of the {n_samples} samples gets its own pattern, so "
            f"H(Bin T) -> ln {n_samples} = {math.log(max(n_samples, 1)):.3f} and I(T;Y) -> H(Y) at "
            "every epoch; use the per-channel estimates, or force it"
        )


def layer_codes(values: np.ndarray, binning: LayerBinning) -> np.ndarray:
    """Per-unit bin indices (n, d) int64 of finite ``values`` (n, d)."""
    v = np.asarray(values, dtype=np.float64)
    if binning.rule == "size":
        return np.floor(v / binning.param).astype(np.int64)
    bins = int(binning.param)
    lo, hi = v.min(), v.max()
    if hi <= lo:
        return np.zeros(v.shape, dtype=np.int64)
    return np.minimum(np.floor((v - lo) * (bins / (hi - lo))), bins - 1).astype(np.int64)


def pattern_ids(codes: np.ndarray) -> np.ndarray:
    """Dense id (n,) of each row's joint pattern (equal rows, equal ids)."""
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    if codes.shape[1] == 0:
        return np.zeros(len(codes), dtype=np.int64)
    rows = codes.view(np.dtype((np.void, codes.dtype.itemsize * codes.shape[1]))).ravel()
    return np.unique(rows, return_inverse=True)[1].reshape(-1)


def _entropy(counts: np.ndarray) -> float:
    counts = counts[counts > 0].astype(np.float64)
    n = counts.sum()
    return float(entropy_from_xlogx.py_func((counts * np.log(counts)).sum(), n, math.log(n)))


def whole_layer_mi(
    values: np.ndarray, labels: np.ndarray, binning: LayerBinning, force: bool = False
) -> tuple[float, float]:
    """(H(Bin T), I(Bin T; Y)) in nats of one layer (n, d); NaN if any value is non-finite."""
    values = np.asarray(values)
    check_width(values.shape[1], values.shape[0], force)
    if not np.isfinite(values).all():
        return math.nan, math.nan
    ids = pattern_ids(layer_codes(values, binning))
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1
    h_t = _entropy(np.bincount(ids))
    h_y = _entropy(np.bincount(labels))
    h_ty = _entropy(np.bincount(ids * k + labels))
    return h_t, max(0.0, h_t + h_y - h_ty)


def binned_input_mi(values: np.ndarray, bin_sizes, force: bool = False) -> np.ndarray:
    """I(X; Bin_b(T)) = H(floor(T / b)) for each bin size b (Goldfeld et al. Fig. 1); (len(bin_sizes),)."""
    values = np.asarray(values)
    check_width(values.shape[1], values.shape[0], force)
    if not np.isfinite(values).all():
        return np.full(len(bin_sizes), np.nan)
    return np.array(
        [
            _entropy(np.bincount(pattern_ids(layer_codes(values, LayerBinning("size", b)))))
            for b in bin_sizes
        ]
    )
