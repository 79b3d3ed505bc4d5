"""The paper's findings measured on a set of runs: one verdict per finding, from the data.

Each finding is a per-run (or per-pair) statistic; across runs its mean and 95% Student-t
interval (``stats.t_interval``) give the verdict (:func:`verdict`):

* ``reproduced``: the 95% interval lies above 0;
* ``contradicted``: the 95% interval lies below 0 (a significant reversal);
* ``inconclusive``: the interval contains 0, or there is a single value (no interval);
* ``not measured``: no run (or pair) carries the data.

The verdict reads the interval only, never the sign of the mean.

``null`` is the value the statistic would take without the effect: 0 for differences, and
for the label-MI findings the part of the raw difference that the label-permutation null
(the plug-in bias) produces by itself; the statistic itself is bias-corrected (raw - null).
Nothing here assumes the paper's answer: a significant sign flip gives ``contradicted``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from analyzer.core import metrics
from analyzer.core.stats import t_interval
from latent_mi import contract as C

VERDICTS = C.VERDICTS
KEYS = C.FINDINGS_KEYS


@dataclass
class Finding:
    id: str
    claim: str
    verdict: str
    statistic: float | None  # mean over runs (pairs), in ``unit``
    interval: list[float] | None  # 95% t-interval [lo, hi]; None with fewer than 2 runs
    null: float | None
    runs: int
    unit: str = ""
    how: str = ""  # what the statistic is (for the Markdown report)

    def as_json(self) -> dict:
        return {k: getattr(self, k) for k in KEYS}


@dataclass
class RunSummary:
    """The small per-run arrays the findings read; (epoch, layer) arrays in depth order."""

    run: str
    arch: str
    activation: str
    regularizer: str
    seed: int
    epochs: np.ndarray
    val_acc: np.ndarray
    label_mi: np.ndarray
    label_mi_null: np.ndarray  # zeros when the run has no null (then flagged has_null=False)
    gini: np.ndarray
    input_mi: np.ndarray
    has_null: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def best(self) -> int:
        return metrics.best_epoch(self.val_acc)


def final_third(n_layers: int) -> slice:
    """The final third of the layers (``latent_mi.contract.n_final_third``)."""
    return slice(n_layers - C.n_final_third(n_layers), n_layers)


def first_third(n_layers: int) -> slice:
    """The first ceil(L / 3) layers (mirror of the final third)."""
    return slice(0, C.n_final_third(n_layers))


def summary_of(ds: xr.Dataset) -> RunSummary:
    """RunSummary of one MI Dataset (``python -m analyzer`` output)."""
    has_null = "label_mi_null" in ds and bool(np.isfinite(ds.label_mi_null.values).any())
    label = ds.label_mi.values.astype(np.float64)
    null = ds.label_mi_null.values.astype(np.float64) if has_null else np.zeros_like(label)
    return RunSummary(
        run=str(ds.run.values),
        arch=str(ds.arch.values),
        activation=str(ds.activation.values),
        regularizer=str(ds.regularizer.values),
        seed=int(ds.seed.values),
        epochs=ds.epoch.values,
        val_acc=ds.val_acc.values.astype(np.float64),
        label_mi=label,
        label_mi_null=null,
        gini=ds.gini.values.astype(np.float64),
        input_mi=ds.input_mi.values.astype(np.float64),
        has_null=has_null,
    )


def verdict(values) -> tuple[str, float | None, list[float] | None, int]:
    """(verdict, mean, [lo, hi] or None, n) of per-run statistics (positive = the paper's way)."""
    iv = t_interval(values)
    if iv.n == 0:
        return "not measured", None, None, 0
    interval = None if iv.n < 2 else [iv.lo, iv.hi]
    if interval is not None and iv.lo > 0:
        word = "reproduced"
    elif interval is not None and iv.hi < 0:
        word = "contradicted"
    else:
        word = "inconclusive"
    return word, iv.mean, interval, iv.n


def _finding(fid, claim, values, null, unit, how, runs=None) -> Finding:
    word, mean, interval, n = verdict(values)
    return Finding(fid, claim, word, mean, interval, null if n else None, runs or n, unit, how)


def _nanmean(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.nanmean(a)) if np.isfinite(a).any() else math.nan


# ---------------------------------------------------------------- label-MI findings
def depth_rise(s: RunSummary, values: np.ndarray) -> float:
    """Final third minus first third of the layers of ``values[best]``."""
    row = values[s.best]
    n = row.shape[0]
    return _nanmean(row[final_third(n)]) - _nanmean(row[first_third(n)])


def trained_gain(s: RunSummary, values: np.ndarray) -> float:
    """Final-third mean of ``values`` at the best epoch minus at initialization (epoch 0)."""
    part = final_third(values.shape[1])
    return _nanmean(values[s.best, part]) - _nanmean(values[0, part])


def plain(runs: list):
    """The cross-entropy runs (regularizer 'none') when there are any, else all runs: the
    paper's findings 1-4 and its interventions are on CE-trained networks."""
    ce = [r for r in runs if _regularizer(r) == "none"]
    return ce or list(runs)


def _regularizer(r) -> str:
    if isinstance(r, RunSummary):
        return r.regularizer
    return str(r.regularizer.values) if "regularizer" in r.coords else "none"


def mi_findings(runs: list[RunSummary]) -> list[Finding]:
    """Label MI vs depth, trained vs random, input MI vs activation, concentration (CE runs)."""
    runs = plain(runs)
    out = []
    with_null = [s for s in runs if s.has_null]
    for fid, claim, fn, how in (
        (
            "label_mi_rises_with_depth",
            "Label MI I(T;Y) rises with depth in trained networks",
            depth_rise,
            "bias-corrected layer label MI at the best epoch, final third minus first third "
            "of the layers",
        ),
        (
            "trained_above_random",
            "Trained networks carry more label MI than at random initialization",
            trained_gain,
            "bias-corrected label MI, final third of the layers, best epoch minus epoch 0",
        ),
    ):
        corrected = [fn(s, s.label_mi - s.label_mi_null) for s in with_null]
        null = _nanmean([fn(s, s.label_mi_null) for s in with_null]) if with_null else None
        out.append(_finding(fid, claim, corrected, null, "nat", how))
    out.append(activation_finding(runs))
    out.append(
        _finding(
            "concentration_rises_late",
            "Concentration of channel-label MI (Gini) rises with training in late layers",
            [trained_gain(s, s.gini) for s in runs],
            0.0,
            "Gini",
            "Gini of p_c = I(T_lc;Y)/sum I, final third of the layers, best epoch minus epoch 0",
        )
    )
    return out


def activation_finding(runs: list[RunSummary]) -> Finding:
    """dI(X;T) (best - init, final third) of ReLU minus tanh, paired by arch/regularizer/seed."""
    delta = {
        (s.arch, s.regularizer, s.seed, s.activation): metrics.delta_input_mi(s.input_mi, s.best)[1]
        for s in runs
    }
    diffs = [
        v - delta[(a, r, seed, "tanh")]
        for (a, r, seed, act), v in delta.items()
        if act == "relu" and (a, r, seed, "tanh") in delta
    ]
    return _finding(
        "input_mi_depends_on_activation",
        "Input MI dynamics depend on the activation: ReLU expands I(X;T) more than tanh",
        diffs,
        0.0,
        "nat",
        "dI(X;T) = I(X;T)[best] - I(X;T)[0], final third of the layers, ReLU minus tanh, "
        "paired by arch, regularizer and seed",
        runs=2 * len(diffs),
    )


# ---------------------------------------------------------------- HSIC
def epochs_to_fraction(epochs: np.ndarray, val_acc: np.ndarray, fraction: float = 0.95) -> float:
    """First epoch whose validation accuracy reaches ``fraction`` of the final one."""
    acc = np.asarray(val_acc, dtype=np.float64)
    if not np.isfinite(acc[-1]):
        return math.nan
    return float(epochs[int(np.argmax(acc >= fraction * acc[-1]))])


def hsic_finding(runs: list[RunSummary]) -> Finding:
    speed = {
        (s.arch, s.activation, s.seed, s.regularizer): epochs_to_fraction(s.epochs, s.val_acc)
        for s in runs
    }
    diffs = [
        speed[(a, act, seed, "none")] - v
        for (a, act, seed, reg), v in speed.items()
        if reg == "hsic" and (a, act, seed, "none") in speed
    ]
    return _finding(
        "hsic_speeds_convergence",
        "The HSIC regularizer speeds convergence",
        diffs,
        0.0,
        "epoch",
        "epochs to reach 95% of the final validation accuracy, CE minus CE+HSIC, paired by "
        "arch, activation and seed",
        runs=2 * len(diffs),
    )
