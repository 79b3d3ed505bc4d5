"""Whole-layer quantities of Shwartz-Ziv & Tishby (2017) and Goldfeld et al. (2019) for one (epoch, layer), and their options and attrs.

Computed beside the per-channel estimates by ``mi_tensors._layer_epoch_stats``:

* ``layer_input_mi`` = H(Bin T), ``layer_label_mi`` = I(Bin T; Y): the joint bin pattern of
  the whole layer (:mod:`analyzer.core.whole_layer`); NaN for layers wider than
  ``whole_layer.MAX_UNITS`` unless forced (the pattern saturates; attrs name the layers);
* ``binned_input_mi(bin_size)`` = H(floor(T / b)) over bin sizes (Goldfeld et al. 2019, Fig. 1);
* ``noisy_input_mi(beta)`` and its Kolchinsky-Tracey ``_upper`` / ``_lower`` bounds
  (:mod:`analyzer.core.noisy_mi`), only for the listed betas;
* ``cos_within``, ``cos_between``, ``cos_gap`` (:mod:`analyzer.core.clustering`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analyzer.core import clustering, noisy_mi, whole_layer
from latent_mi.settings import default

DEFAULT_BIN_SIZES = default("mi.bin_sizes")  # latent_mi/settings/declarations.py
VARIABLES = (
    "layer_input_mi",
    "layer_label_mi",
    "binned_input_mi",
    "noisy_input_mi",
    "noisy_input_mi_upper",
    "noisy_input_mi_lower",
    "cos_within",
    "cos_between",
    "cos_gap",
)


@dataclass(frozen=True)
class LayerInfoOptions:
    rule: str = default("mi.layer_binning")  # size, range or auto (tanh: size 2/B; else range)
    bin_size: float | None = default("mi.layer_bin_size")  # rule size; None: 2 / B on [-1, 1]
    force: bool = default("mi.force_whole_layer")  # also layers wider than MAX_UNITS
    bin_sizes: tuple[float, ...] = DEFAULT_BIN_SIZES
    betas: tuple[float, ...] = default("mi.noise_betas")  # noisy estimator's sd; (): none
    noise_samples: int = default("mi.noise_samples")  # Monte Carlo noise draws per sample


def layer_binning(opts: LayerInfoOptions, bins: int, activation: str) -> whole_layer.LayerBinning:
    """The whole-layer binning rule for a store of ``activation`` at ``bins`` bins."""
    rule = opts.rule
    if rule == "auto":
        rule = "size" if activation == "tanh" else "range"
    if rule == "size":
        return whole_layer.LayerBinning("size", opts.bin_size or 2.0 / bins)
    return whole_layer.LayerBinning("range", bins)


def outputs(values, labels, opts: LayerInfoOptions, binning, seed: int = 0) -> dict:
    """The whole-layer variables of one (epoch, layer): ``values`` (n, d), ``labels`` (n,)."""
    n, d = values.shape
    wide = d > whole_layer.MAX_UNITS and not opts.force
    h = i_ty = math.nan
    sens = np.full(len(opts.bin_sizes), np.nan)
    if not wide:
        h, i_ty = whole_layer.whole_layer_mi(values, labels, binning, force=True)
        sens = whole_layer.binned_input_mi(values, opts.bin_sizes, force=True)
    if opts.betas:
        noisy = noisy_mi.noisy_mi(values, opts.betas, opts.noise_samples, seed)
        est, up, lo = noisy.estimate, noisy.upper, noisy.lower
    else:
        est = up = lo = np.zeros(0)
    cos = clustering.cosine_clustering(values, labels)
    return {
        "layer_input_mi": h,
        "layer_label_mi": i_ty,
        "binned_input_mi": sens,
        "noisy_input_mi": est,
        "noisy_input_mi_upper": up,
        "noisy_input_mi_lower": lo,
        "cos_within": cos.within,
        "cos_between": cos.between,
        "cos_gap": cos.gap,
    }


def coords(opts: LayerInfoOptions) -> dict:
    return {
        "bin_size": np.array(opts.bin_sizes, dtype=np.float64),
        "beta": np.array(opts.betas, dtype=np.float64),
    }


def attrs(opts: LayerInfoOptions, binning, layer_widths: dict[str, int], labels) -> dict:
    """Dataset attrs: the whole-layer rule, refused layers, the noisy estimator's definition."""
    n = len(labels)
    p = np.bincount(np.asarray(labels, dtype=np.int64)) / n
    p = p[p > 0]
    refused = [f"{k} ({w} units)" for k, w in layer_widths.items() if w > whole_layer.MAX_UNITS]
    out = {
        "layer_binning": binning.describe(),
        "layer_binning_rule": binning.rule,
        "layer_binning_param": float(binning.param),
        "binned_input_mi_rule": "fixed bin size b per coordinate bin_size: floor(t / b), joint pattern",
        "whole_layer_refused": (
            ""
            if opts.force or not refused
            else f"{', '.join(refused)}: whole-layer binning saturates beyond {whole_layer.MAX_UNITS} "
            f"units (each of the {n} samples its own pattern, H -> ln {n}, I(T;Y) -> H(Y)): NaN"
        ),
        "clustering": clustering.__doc__.strip().splitlines()[0],
        "label_entropy": float(-(p * np.log(p)).sum()),  # H(Y), nat: the ceiling of I(T;Y)
    }
    if opts.betas:
        out.update(
            noisy_estimator=(
                "I(X; S + N(0, beta^2 I)) = h(T) - h(T|X), h(T) of the Gaussian mixture by Monte "
                f"Carlo ({opts.noise_samples} noise draw(s) per sample, control variate); bounds: "
                "Kolchinsky-Tracey pairwise distances (KL: upper, Bhattacharyya: lower)"
            ),
            noisy_caveat=noisy_mi.CAVEAT,
            noise_samples=opts.noise_samples,
        )
    return out
