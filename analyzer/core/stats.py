"""Uncertainty across seeds and over validation samples (used by figures and findings)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass
class Interval:
    """Mean of n finite values with its 95% interval (NaN bounds when n < 2)."""

    mean: float
    lo: float
    hi: float
    n: int


def t_interval(values, level: float = 0.95) -> Interval:
    """Mean and Student-t ``level`` interval of the finite ``values`` (e.g. one per seed)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Interval(np.nan, np.nan, np.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, np.nan, np.nan, 1)
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def t_band(values: np.ndarray, axis: int = 0, level: float = 0.95):
    """(mean, lo, hi) arrays of a t-interval along ``axis`` (NaN-aware; NaN bounds where n < 2)."""
    x = np.asarray(values, dtype=np.float64)
    n = np.isfinite(x).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN or single-seed columns
        mean = np.nanmean(x, axis=axis) if x.size else np.full(n.shape, np.nan)
        sd = np.nanstd(x, axis=axis, ddof=1) if x.size else np.full(n.shape, np.nan)
        q = sps.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
        half = np.where(n >= 2, q * sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, mean - half, mean + half


def bootstrap_interval(
    statistic, n_samples: int, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap over validation samples: ``statistic(indices)`` on resampled rows."""
    rng = np.random.default_rng(seed)
    draws = [statistic(rng.integers(0, n_samples, n_samples)) for _ in range(n_boot)]
    lo, hi = np.nanpercentile(
        np.asarray(draws, dtype=np.float64), [50 * (1 - level), 50 * (1 + level)], axis=0
    )
    return lo, hi
