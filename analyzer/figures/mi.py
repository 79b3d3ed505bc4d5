"""Figures drawn from MI Datasets combined along ``run`` (:func:`load_runs`).

Every function takes the combined Dataset, an output path without suffix (None: only
return the figure) and the file formats, and returns a :class:`Drawn`. Each line or panel
is one (arch, activation, regularizer) group: each seed thin, the mean bold, a 95% t-interval band
only with >= 3 seeds (``SPREAD``); "trained"
is each run's best-validation-accuracy epoch, "random" its epoch 0 (initialization).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib import colormaps

from analyzer.core.stats import t_interval
from analyzer.figures.depth import MIN_BAND_SEEDS, bounds, depth_lines, depth_ticks, null_band
from analyzer.figures.depth import ci_band as band
from analyzer.figures.drawing import Drawn, bins_of, finish, new_figure
from analyzer.figures.grouping import at_best, groups, label, seeds
from analyzer.report.findings import epochs_to_fraction
from latent_mi import contract as C

FORMATS = ("png", "pdf")
SPREAD = f"each seed thin, mean bold, 95% t-interval band with >= {MIN_BAND_SEEDS} seeds"


def fig1_depth_mi(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """Label MI and input MI against depth, trained (best epoch) against random (epoch 0),
    with the label-permutation null band of the label MI."""
    gs = groups(ds)
    fig, axes = new_figure(2, len(gs), 4.2, 3.6)
    for col, (key, g) in enumerate(gs.items()):
        for row, var in enumerate(("label_mi", "input_mi")):
            ax = axes[row, col]
            if var == "label_mi":
                null_band(ax, g)
            lim = bounds(var)
            depth_lines(ax, g, at_best(g[var], g).values, "trained (best epoch)", limits=lim)
            depth_lines(ax, g, g[var].isel(epoch=0).values, "random (epoch 0)", ls="--", limits=lim)
            depth_ticks(ax, g)
            ax.set_ylabel(
                ("I(T;Y)" if row == 0 else "I(X;T) = H(Bin T)") + " [nat], mean over channels"
            )
            ax.set_title(label(key, g), fontsize=8)
            ax.legend(fontsize=6)
    return finish(
        fig,
        f"Fig 1: layer-label and input MI against depth ({bins_of(ds)}); "
        f"{SPREAD}; grey: label-permutation null",
        out,
        formats,
    )


def layer_mi_shown(g: xr.Dataset) -> tuple[xr.DataArray, str]:
    """What Fig 2 draws: layer_mi minus its exact permutation-null mean ``layer_mi_null``
    (the plug-in bias of independent channels at these bins and N), or the raw layer_mi of
    an MI Dataset written before the null existed; and a phrase saying which."""
    if "layer_mi_null" in g:
        null = g.layer_mi_null
        shown = (g.layer_mi - null).assign_attrs(units="nat")
        lo, hi = float(null.min()), float(null.max())
        return shown, f"minus its permutation-null mean ({lo:.2f}-{hi:.2f} nat, subtracted)"
    return g.layer_mi, "raw plug-in MI, not null-corrected (no layer_mi_null: rerun the analyzer)"


def fig2_layer_mi(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """Layer-layer MI heatmaps minus the exact permutation-null mean, trained against random
    (mean over seeds)."""
    gs = groups(ds)
    fig, axes = new_figure(len(gs), 2, 4.5, 4.0)
    notes = set()
    for row, (key, g) in enumerate(gs.items()):
        shown, note = layer_mi_shown(g)
        notes.add(note.split(" (")[0])
        trained = at_best(shown, g).mean("run").values
        random = shown.isel(epoch=0).mean("run").values
        vmin, vmax = min(0.0, np.nanmin([trained, random])), np.nanmax([trained, random])
        for col, (mat, name) in enumerate(((trained, "trained"), (random, "random"))):
            ax = axes[row, col]
            im = ax.imshow(mat, vmin=vmin, vmax=vmax, cmap="viridis")
            ax.set_title(f"{label(key, g)}: {name}\nlayer_mi {note}", fontsize=7)
            sites = [str(n) for n in g.layer.values]
            ax.set_xticks(np.arange(len(sites)), sites, rotation=90, fontsize=5)
            ax.set_yticks(np.arange(len(sites)), sites, fontsize=5)
            ax.set_xlabel("layer b (measurement site)")
            ax.set_ylabel("layer a (measurement site)")
            corrected = "layer_mi_null" in g
            fig.colorbar(
                im,
                ax=ax,
                label="mean channel-pair MI" + (" - null" if corrected else " (raw)") + " [nat]",
            )
    return finish(
        fig,
        f"Fig 2: layer-layer MI ({bins_of(ds)}) {' / '.join(sorted(notes))}; diagonal: MI "
        "between different channels of the same layer",
        out,
        formats,
    )


def fig3_concentration(ds: xr.Dataset, out=None, formats=FORMATS, k: float = 10.0) -> Drawn:
    """Gini, Top-k% share and normalized entropy of channel-label MI against depth."""
    gs = groups(ds)
    fig, axes = new_figure(3, len(gs), 4.2, 3.0)
    for col, (key, g) in enumerate(gs.items()):
        series = (
            (g.gini, "Gini"),
            (g.topk_share.sel(k=k, method="nearest"), f"Top-{k:g}% share"),
            (g.norm_entropy, "normalized entropy"),
        )
        for row, (da, name) in enumerate(series):
            ax = axes[row, col]
            depth_lines(ax, g, at_best(da, g).values, "trained", limits=(0.0, 1.0))
            depth_lines(ax, g, da.isel(epoch=0).values, "random", ls="--", limits=(0.0, 1.0))
            ax.set_ylabel(f"{name} (dimensionless)")
            depth_ticks(ax, g)
            ax.set_title(label(key, g), fontsize=8)
            ax.legend(fontsize=6)
    return finish(
        fig,
        f"Fig 3/4: concentration of channel-label MI within layers ({bins_of(ds)}; {SPREAD})",
        out,
        formats,
    )


def fig7_accuracy_vs_delta(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """Best validation accuracy against dI(X;T) (best - init, final third of layers), one
    marker per run, one colour per (arch, activation, regularizer) group."""
    fig, axes = new_figure(1, 1, 6.0, 4.5)
    ax = axes[0, 0]
    markers = {"vgg16": "o", "resnet18": "s", "resnet50": "^"}
    for key, g in groups(ds, regularizer=None).items():
        ax.scatter(
            g.delta_input_mi.values,
            g.val_acc.max("epoch").values * 100,
            marker=markers.get(key[0], "x"),
            label=label(key, g),
        )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("dI(X;T) [nat]: best epoch - initialization, final third of layers")
    ax.set_ylabel("best validation accuracy [%]")
    ax.legend(fontsize=7)
    return finish(
        fig,
        f"Fig 7: accuracy against input-MI change ({bins_of(ds)}, one marker per run)",
        out,
        formats,
    )


def _slope_line(run: xr.Dataset, layer: str):
    """(epochs, fitted I(X;T)) of one run's post-plateau least-squares line, or None."""
    p0 = int(run.plateau_epoch.sel(layer=layer))
    slope = float(run.post_plateau_slope.sel(layer=layer))
    if p0 < 0 or not np.isfinite(slope):
        return None
    epochs = run.epoch.values
    y = run.input_mi.sel(layer=layer).values
    sel = epochs >= p0
    intercept = np.nanmean(y[sel]) - slope * np.mean(epochs[sel])
    return epochs[sel], intercept + slope * epochs[sel]


def fig8_trajectories(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """I(X;T) over epochs for the final third of layers (each seed, mean, band: ``SPREAD``), with each
    seed's post-plateau slope fit (dotted)."""
    gs = groups(ds)
    fig, axes = new_figure(1, len(gs), 4.5, 4.0)
    for col, (key, g) in enumerate(gs.items()):
        ax = axes[0, col]
        for layer in C.final_third(g.layer.values):
            slopes = g.post_plateau_slope.sel(layer=layer).values
            slopes = slopes[np.isfinite(slopes)]
            slope = f"{slopes.mean():+.3f}" if slopes.size else "undefined"
            line = band(
                ax,
                g.epoch.values,
                g.input_mi.sel(layer=layer).values,
                limits=bounds("input_mi"),
                lw=1,
                ms=2,
                label=f"{layer} (slope {slope})",
            )
            for i in range(g.sizes["run"]):
                fit = _slope_line(g.isel(run=i), layer)
                if fit is not None:
                    ax.plot(*fit, ls=":", color=line.get_color())
        ax.set_xlabel("epoch")
        ax.set_ylabel("I(X;T) [nat]")
        ax.set_title(label(key, g), fontsize=8)
        ax.legend(fontsize=6, title="layer (mean slope, nat/epoch)", title_fontsize=6)
    return finish(
        fig,
        f"Fig 8: I(X;T) trajectories ({bins_of(ds)}; {SPREAD}); "
        "dotted: each seed's post-plateau fit",
        out,
        formats,
    )


def info_plane(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """Information plane (Shwartz-Ziv & Tishby): I(X;T) against I(T;Y) over epochs, one
    colour per layer (by depth), a thin line per seed, the seed mean bold; o = epoch 0,
    * = last epoch."""
    gs = groups(ds, regularizer=None)
    fig, axes = new_figure(1, len(gs), 5.0, 4.2)
    cmap = colormaps["viridis"]
    for col, (key, g) in enumerate(gs.items()):
        ax = axes[0, col]
        n = g.sizes["layer"]
        for i, layer in enumerate(g.layer.values):
            color = cmap(i / max(1, n - 1))
            x = g.input_mi.sel(layer=layer).values  # (run, epoch)
            y = g.label_mi.sel(layer=layer).values
            for r in range(g.sizes["run"]):
                ax.plot(x[r], y[r], color=color, lw=0.5, alpha=0.5)
            mx, my = np.nanmean(x, axis=0), np.nanmean(y, axis=0)
            ax.plot(mx, my, color=color, lw=1.6, label=str(layer))
            ax.plot(mx[0], my[0], "o", mfc="none", color=color, ms=5)
            ax.plot(mx[-1], my[-1], "*", color=color, ms=8)
        ax.set_xlabel("I(X;T) = H(Bin T) [nat]")
        ax.set_ylabel("I(T;Y) [nat]")
        ax.set_title(f"{label(key, g)}", fontsize=8)
        ax.legend(fontsize=5, ncol=2, title="layer (shallow to deep)", title_fontsize=6)
    return finish(
        fig,
        f"Information plane ({bins_of(ds)}): bold = mean over seeds {sorted(set(seeds(ds)))}, "
        "thin = each seed; o epoch 0, * last epoch",
        out,
        formats,
    )


def _speed(g: xr.Dataset) -> str:
    """Epochs to reach 95% of the final validation accuracy: each seed's value with fewer
    than MIN_BAND_SEEDS seeds, else mean [95% t-interval] clipped to the epochs run."""
    values = [
        epochs_to_fraction(g.epoch.values, g.val_acc.isel(run=i).values)
        for i in range(g.sizes["run"])
    ]
    iv = t_interval(values)
    if iv.n < MIN_BAND_SEEDS:
        return ", ".join(f"{v:g}" for v in values) + (" (each seed)" if len(values) > 1 else "")
    lo, hi = np.clip([iv.lo, iv.hi], g.epoch.values.min(), g.epoch.values.max())
    return f"{iv.mean:.1f} [{lo:.1f}, {hi:.1f}]"


def robust_ylim(ax, floor: float = 0.0, reach: float = 3.0) -> None:
    """y-limits that show every value except outliers: a value above the highest one past
    epoch 1 by more than ``reach`` times the range past epoch 1 (an epoch-1 loss spike of 400
    next to losses of 0.02-2.3) runs off the top, and the axes say so; nothing is cut when
    there is no such outlier (the initial loss stays visible)."""
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    if not lines:
        return
    x = np.concatenate([np.asarray(ln.get_xdata(), dtype=float) for ln in lines])
    y = np.concatenate([np.asarray(ln.get_ydata(), dtype=float) for ln in lines])
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    late = y[x > 1]
    if late.size < 2:
        return
    cut = late.max() + reach * max(late.max() - late.min(), 1e-12)
    shown = y[y <= cut]
    hi, lo = shown.max(), max(floor, shown.min())
    pad = 0.05 * (hi - lo) or 0.05 * abs(hi) or 0.05
    ax.set_ylim(max(lo - pad, floor), hi + pad)
    if y.max() > cut:
        ax.text(
            0.99,
            0.98,
            f"off scale: up to {y.max():.3g} at epoch {x[np.argmax(y)]:g}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=6,
            color="0.3",
        )


def loss_yscale(ax) -> None:
    """A log loss axis when every drawn loss is > 0 (an epoch-1 spike of 400 and late losses
    of 0.02-0.3 both stay readable, nothing is cut), else :func:`robust_ylim`."""
    y = np.concatenate([np.asarray(ln.get_ydata(), dtype=float) for ln in ax.get_lines()])
    y = y[np.isfinite(y)]
    if y.size == 0 or (y <= 0).any():
        robust_ylim(ax)
        return
    ax.set_yscale("log")
    ax.set_ylim(y.min() / 1.3, y.max() * 1.3)  # from the lines: a band clipped at 0 is not used


def fig9_hsic(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """Validation accuracy and loss curves, CE against CE+HSIC, per (arch, activation)."""
    gs = groups(ds, regularizer=None)
    with_hsic = sorted({key[:2] for key in gs if key[2] == "hsic"})
    pairs = with_hsic or sorted({key[:2] for key in gs})  # only (arch, act) with an HSIC run
    fig, axes = new_figure(2, max(1, len(pairs)), 4.5, 3.5)
    for col, base in enumerate(pairs):
        for reg, ls in (("none", "--"), ("hsic", "-")):
            g = gs.get((*base, reg))
            if g is None:
                continue
            name = f"{'CE' if reg == 'none' else 'CE+HSIC'} (seeds {seeds(g)})"
            speed = f"{name}; 95% of final acc. at epoch {_speed(g)}"
            for row, var in enumerate(("val_acc", "val_loss")):
                band(
                    axes[row, col],
                    g.epoch.values,
                    g[var].values,
                    limits=bounds(var),
                    ls=ls,
                    label=speed if var == "val_acc" else name,
                )
        axes[0, col].set_title(" ".join(base), fontsize=8)
        axes[0, col].set_ylabel("validation accuracy")
        axes[1, col].set_ylabel("validation loss [nat]")
        for row in range(2):
            axes[row, col].set_xlabel("epoch")
            axes[row, col].legend(fontsize=7)
        loss_yscale(axes[1, col])
    return finish(
        fig,
        f"Fig 9: HSIC regularization (training curves, no MI): {SPREAD}",
        out,
        formats,
    )


MI_FIGURES = {
    "fig1_depth_mi": fig1_depth_mi,
    "fig2_layer_mi": fig2_layer_mi,
    "fig3_concentration": fig3_concentration,
    "fig7_accuracy_vs_delta_input_mi": fig7_accuracy_vs_delta,
    "fig8_input_mi_trajectories": fig8_trajectories,
    "info_plane": info_plane,
    "fig9_hsic": fig9_hsic,
}
