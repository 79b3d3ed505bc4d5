"""The MI estimators beyond the histogram, per (epoch, layer): the analyzer's estimator pass.

``mi.estimators`` (CLI ``--estimators``) lists the estimators to compute; "histogram" (the
default) is the analyzer's fused pass and always runs, since every other variable is built
on it. Each further estimator adds its own variables to the MI Dataset (one variable per
estimator and quantity, so the histogram variables keep their names and old notebooks keep
working):

=========  =====================================================================
knn        channel_label_mi_knn, label_mi_knn, label_mi_knn_pca
gaussian   channel_label_mi_gaussian, label_mi_gaussian, label_mi_gaussian_pca
probe      label_mi_probe
=========  =====================================================================

``label_mi_<est>`` is the mean over the layer's channels (the same layer summary as the
histogram's ``label_mi``); ``*_pca`` is the estimator on the layer's leading
``estimator_dims`` principal components (:func:`analyzer.core.pca.layer_scores`), a
layer-level quantity; the probe is a layer-level lower bound on the whole GAP vector.
Definitions, assumptions and known bias: each variable's registry entry in
``analyzer/variables.py`` (written into its attrs) and the README section "Estimators
beyond the histogram".
"""

from __future__ import annotations

import math

import numpy as np

ESTIMATORS = ("histogram", "knn", "gaussian", "probe")

# estimator -> (the variables it adds, the layer-level label-MI variable the findings use)
VARIABLES = {
    "histogram": ((), "label_mi"),
    "knn": (("channel_label_mi_knn", "label_mi_knn", "label_mi_knn_pca"), "label_mi_knn"),
    "gaussian": (
        ("channel_label_mi_gaussian", "label_mi_gaussian", "label_mi_gaussian_pca"),
        "label_mi_gaussian",
    ),
    "probe": (("label_mi_probe",), "label_mi_probe"),
}


def check(estimators) -> str | None:
    """One line naming an unknown estimator, or None."""
    bad = [e for e in estimators if e not in ESTIMATORS]
    if bad:
        return f"unknown MI estimator {bad[0]!r}; choose from {', '.join(ESTIMATORS)}"
    return None


def layer_outputs(
    values: np.ndarray,
    labels: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    plan,
) -> dict:
    """The variables of ``plan.options.estimators`` (beyond the histogram) for one (epoch, layer).

    values: (sample, channel) of the layer; mean, sd: its (channel,) moments from the fused
    pass. plan: the epoch plan (its pca_rows; its options' estimators, knn_k,
    estimator_dims, seed).
    """
    wanted = [e for e in plan.options.estimators if e != "histogram"]
    if not wanted:
        return {}
    from analyzer.core import pca  # here: the option check above stays light for the CLI
    from analyzer.core.gaussian import gaussian_label_mi, gaussian_layer_mi
    from analyzer.core.knn import knn_label_mi, knn_layer_mi
    from analyzer.core.probe import probe_label_mi

    out = {}
    finite = bool(np.isfinite(mean).all() and np.isfinite(sd).all())
    projection = None
    if finite and ("knn" in wanted or "gaussian" in wanted):
        projection = pca.layer_scores(
            values, mean, sd, plan.options.estimator_dims, plan.pca_rows, plan.options.seed
        )
    if "knn" in wanted:
        channel = knn_label_mi(values, labels, plan.options.knn_k)
        out["channel_label_mi_knn"] = channel
        out["label_mi_knn"] = float(channel.mean())
        out["label_mi_knn_pca"] = (
            knn_layer_mi(projection, labels, plan.options.knn_k) if finite else math.nan
        )
    if "gaussian" in wanted:
        channel = gaussian_label_mi(values, labels)
        out["channel_label_mi_gaussian"] = channel
        out["label_mi_gaussian"] = float(channel.mean())
        out["label_mi_gaussian_pca"] = gaussian_layer_mi(projection, labels) if finite else math.nan
    if "probe" in wanted:
        out["label_mi_probe"] = probe_label_mi(values, labels, seed=plan.options.seed)
    return out
