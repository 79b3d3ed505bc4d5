"""Figures of Shwartz-Ziv & Tishby and Goldfeld et al. on the 12-bit task (twelve_bit_mlp runs): information plane, binning
sensitivity, noisy I(X;T) with its bounds, clustering. Groups: (activation, training noise
beta); the seed mean is drawn (seeds listed in the titles)."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.colors import LogNorm

from analyzer.figures.drawing import Drawn, bins_of, finish, new_figure
from analyzer.figures.grouping import _per_run

FORMATS = ("png", "pdf")
LAYER_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")  # one per layer of the info plane


def twelve_bit_groups(ds: xr.Dataset) -> dict[tuple[str, float], xr.Dataset]:
    """Runs grouped by (activation, noise_beta), in sorted order."""
    if "run" not in ds.dims:
        ds = ds.expand_dims("run")
    act = _per_run(ds, "activation").astype(str)
    beta = _per_run(ds, "noise_beta").astype(float)
    out = {}
    for key in sorted(set(zip(act, beta, strict=True))):
        idx = np.flatnonzero((act == key[0]) & (beta == key[1]))
        out[key] = ds.isel(run=idx)
    return out


def _title(key, g) -> str:
    seeds = sorted(int(s) for s in _per_run(g, "seed"))
    noise = "deterministic" if key[1] == 0 else f"noisy, beta={key[1]:g}"
    return f"{key[0]}, {noise} (seeds {seeds})"


def _epochs(g: xr.Dataset) -> np.ndarray:
    return np.maximum(g.epoch.values, 0.5)  # epoch 0 drawn at 0.5 on a log axis


def info_plane(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """I(X;T) = H(Bin T) against I(T;Y) of whole layers, mean over seeds; one line and one
    marker shape per layer (legend), points coloured by epoch (log scale), seed-003 style."""
    gs = twelve_bit_groups(ds)
    fig, axes = new_figure(1, len(gs), 5.0, 4.2)
    norm = LogNorm(vmin=0.5, vmax=max(1.0, float(ds.epoch.max())))
    cmap = colormaps["gnuplot"]
    for col, (key, g) in enumerate(gs.items()):
        ax = axes[0, col]
        x = g.layer_input_mi.mean("run")
        y = g.layer_label_mi.mean("run")
        ep = _epochs(g)
        for i, layer in enumerate(g.layer.values):
            xl, yl = x.sel(layer=layer).values, y.sel(layer=layer).values
            marker = LAYER_MARKERS[i % len(LAYER_MARKERS)]
            ax.plot(xl, yl, color="0.6", lw=0.6, zorder=1)
            sc = ax.scatter(xl, yl, c=ep, cmap=cmap, norm=norm, s=14, marker=marker, zorder=2)
            ax.plot([], [], marker, color="0.3", ms=4, label=str(layer))  # legend entry only
        # the layer is the marker (legend), never a text label: deep layers end at the same
        # point (I(T;Y) = H(Y)), where labels would overlap
        ax.legend(fontsize=6, title="layer", title_fontsize=6, loc="best")
        ax.axhline(_h_y(g), color="k", ls=":", lw=0.8)
        ax.axvline(math.log(int(g.attrs.get("n_samples", 4096))), color="k", ls=":", lw=0.8)
        ax.set_xlabel("I(X;T) = H(Bin T) [nat]")
        ax.set_ylabel("I(T;Y) [nat]")
        ax.set_title(_title(key, g), fontsize=8)
        fig.colorbar(sc, ax=ax, label="epoch")
    return finish(
        fig,
        f"Information plane, 12-bit task, whole layers ({_binning(ds)}); dotted: H(Y), ln N",
        out,
        formats,
    )


def _binning(ds: xr.Dataset) -> str:
    """The whole-layer binning of the runs (attrs ``layer_binning``), or, where runs differ
    (combining runs drops differing attrs: tanh 'size', ReLU 'range'), where to find it."""
    if "layer_binning" in ds.attrs:
        return str(ds.attrs["layer_binning"])
    return f"{bins_of(ds)}; each run's rule in its attrs layer_binning"


def _h_y(g: xr.Dataset) -> float:
    """H(Y) of the analysed samples (attrs ``label_entropy``): the ceiling of I(T;Y)."""
    return float(g.attrs.get("label_entropy", np.nan))


def binning_sensitivity(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """I(X; Bin_b(T)) over epochs for each bin size b, per layer (Goldfeld et al. 2019, Fig. 1)."""
    gs = twelve_bit_groups(ds)
    layers = list(ds.layer.values)
    fig, axes = new_figure(len(gs), len(layers), 3.0, 2.6)
    cmap = colormaps["viridis"]
    for row, (key, g) in enumerate(gs.items()):
        sizes = g.bin_size.values
        for col, layer in enumerate(layers):
            ax = axes[row, col]
            v = g.binned_input_mi.sel(layer=layer).mean("run")
            for i, b in enumerate(sizes):
                ax.plot(
                    _epochs(g),
                    v.sel(bin_size=b).values,
                    color=cmap(i / max(1, len(sizes) - 1)),
                    label=f"b={b:g}",
                )
            ax.axhline(math.log(int(g.attrs.get("n_samples", 4096))), color="k", ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set_title(f"{layer} | {_title(key, g)}", fontsize=6)
            ax.set_xlabel("epoch")
            if col == 0:
                ax.set_ylabel("I(X; Bin_b T) [nat]")
        axes[row, 0].legend(fontsize=5)
    return finish(
        fig,
        "Binning sensitivity: H(floor(T/b)) of whole layers over epochs, mean over seeds; "
        "dotted: ln N (every input its own bin)",
        out,
        formats,
    )


def noisy_input_mi(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """Noisy-network I(X; S + N(0, beta^2 I)) over epochs per layer and beta, with the
    Kolchinsky-Tracey bounds as a band, mean over seeds."""
    gs = twelve_bit_groups(ds)
    layers = list(ds.layer.values)
    fig, axes = new_figure(len(gs), len(layers), 3.0, 2.6)
    cmap = colormaps["plasma"]
    betas = ds.beta.values if "noisy_input_mi" in ds else []
    for row, (key, g) in enumerate(gs.items()):
        for col, layer in enumerate(layers):
            ax = axes[row, col]
            for i, beta in enumerate(betas):
                sel = {"layer": layer, "beta": beta}
                color = cmap(i / max(1, len(betas)))
                ep = _epochs(g)
                ax.plot(
                    ep, g.noisy_input_mi.sel(sel).mean("run"), color=color, label=f"beta={beta:g}"
                )
                ax.fill_between(
                    ep,
                    g.noisy_input_mi_lower.sel(sel).mean("run"),
                    g.noisy_input_mi_upper.sel(sel).mean("run"),
                    color=color,
                    alpha=0.2,
                    lw=0,
                )
            ax.set_xscale("log")
            ax.set_title(f"{layer} | {_title(key, g)}", fontsize=6)
            ax.set_xlabel("epoch")
            if col == 0:
                ax.set_ylabel("I(X;T) noisy [nat]")
        if len(betas):
            axes[row, 0].legend(fontsize=5)
    return finish(
        fig,
        "Noisy-network I(X;T), T = S + N(0, beta^2 I) (Monte Carlo, line) within its "
        "Kolchinsky-Tracey bounds (band), mean over seeds",
        out,
        formats,
    )


def clustering(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """Mean cosine similarity within (solid) and between (dashed) classes per layer, and the
    gap, over epochs; mean over seeds."""
    gs = twelve_bit_groups(ds)
    fig, axes = new_figure(len(gs), 2, 4.5, 3.2)
    cmap = colormaps["viridis"]
    for row, (key, g) in enumerate(gs.items()):
        n = g.sizes["layer"]
        for i, layer in enumerate(g.layer.values):
            color = cmap(i / max(1, n - 1))
            sel = g.sel(layer=layer).mean("run")
            ep = _epochs(g)
            axes[row, 0].plot(ep, sel.cos_within, color=color, label=str(layer))
            axes[row, 0].plot(ep, sel.cos_between, color=color, ls="--")
            axes[row, 1].plot(ep, sel.cos_gap, color=color, label=str(layer))
        axes[row, 0].set_ylabel("mean cosine similarity")
        axes[row, 1].set_ylabel("within - between")
        for ax in axes[row]:
            ax.set_xscale("log")
            ax.set_xlabel("epoch")
            ax.set_title(_title(key, g), fontsize=7)
        axes[row, 1].legend(fontsize=6)
    return finish(
        fig,
        "Clustering by class: cosine similarity within (solid) / between (dashed) classes, "
        "and the gap, mean over seeds",
        out,
        formats,
    )


TWELVE_BIT_FIGURES = {
    "twelve_bit_info_plane": info_plane,
    "twelve_bit_binning_sensitivity": binning_sensitivity,
    "twelve_bit_noisy_input_mi": noisy_input_mi,
    "twelve_bit_clustering": clustering,
}
