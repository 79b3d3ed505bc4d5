"""Depth axes that read without the README, seed intervals and the permutation-null band.

* x is the integer depth index of the measurement site, ticks carry the site names;
* ResNet branch (before the skip addition) and post-add (after it) sites are separate
  series, as the paper separates them; other archs draw one series;
* one meaning per encoding in every panel: colour and marker are the site kind (blue
  circles: the main path, i.e. every VGG / other-arch site and ResNet post-add sites; orange
  squares: ResNet branch sites), the line style is the epoch (solid trained, dashed random);
* lines are the mean over seeds with a 95% Student-t interval band (``analyzer.core.stats``);
* :func:`null_band` shades the label-permutation null of the layer MI (``label_mi_null_lo``
  .. ``label_mi_null_hi``, mean over seeds): MI inside it is what a channel without label
  information gives with these bins and samples.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from analyzer.core.stats import t_band
from analyzer.figures.grouping import at_best
from latent_mi import contract as C

SPLIT_KINDS = (C.SITE_POST_ADD, C.SITE_BRANCH)  # drawn as separate series when both are present
KIND_COLOR = {C.SITE_POST_ADD: "C0", C.SITE_BRANCH: "C1"}  # any other kind: the main path's C0
KIND_MARKER = {C.SITE_POST_ADD: "o", C.SITE_BRANCH: "s"}


MIN_BAND_SEEDS = 3  # with 2 seeds the 95% t-interval is mean +- 12.7 se: no band drawn


def bounds(name: str) -> tuple[float | None, float | None]:
    """The range a variable can take: accuracies, Gini and normalized entropies in [0, 1],
    MI, entropies and losses >= 0; (None, None) when unbounded or unknown."""
    if name.endswith(("acc", "accuracy", "gini")) or "normalized" in name or name == "gini":
        return 0.0, 1.0
    if name.endswith(("_mi", "loss")) or "_mi_" in name or name.startswith("h_"):
        return 0.0, None
    return None, None


def ci_band(ax, x, values, limits=(None, None), **kw):
    """Mean line over the first axis (seeds), each seed as a thin line, and the 95%
    t-interval band only with >= MIN_BAND_SEEDS seeds, clipped to ``limits``; returns the line."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    mean, lo, hi = t_band(values, axis=0)
    (line,) = ax.plot(x, mean, **{"marker": "o", "ms": 3, **kw})
    if values.shape[0] > 1:
        seed_kw = {k: v for k, v in kw.items() if k in ("ls", "linestyle")}
        for row in values:
            ax.plot(x, row, color=line.get_color(), lw=0.5, alpha=0.4, **seed_kw)
    if values.shape[0] >= MIN_BAND_SEEDS:
        if limits != (None, None):
            lo, hi = np.clip(lo, *limits), np.clip(hi, *limits)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    return line


def site_kinds(g: xr.Dataset) -> np.ndarray:
    """Kind of each layer of a group (first run carrying it), '' when unknown."""
    if "layer_kind" not in g.coords:
        return np.array([""] * g.sizes["layer"], dtype=object)
    kinds = np.asarray(g.layer_kind.values, dtype=object)
    if kinds.ndim == 2:  # (run, layer): first non-empty per layer
        kinds = np.array([next((k for k in col if k), "") for col in kinds.T], dtype=object)
    return kinds


def depth_lines(ax, g: xr.Dataset, values, label: str, **kw) -> list:
    """Plot ``values`` (run, layer) of a group against integer depth, split by site kind:
    colour and marker say the kind (module doc), the caller's ``ls`` says trained/random."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    kinds = site_kinds(g)
    x = np.arange(len(kinds))
    if not set(SPLIT_KINDS) <= set(kinds):  # one series: the main path's colour and marker
        style = {"color": KIND_COLOR[C.SITE_POST_ADD], "marker": KIND_MARKER[C.SITE_POST_ADD]}
        return [ci_band(ax, x, values, label=label, **{**style, **kw})]
    lines = []
    for kind in dict.fromkeys(kinds):
        idx = np.flatnonzero(kinds == kind)
        style = {"color": KIND_COLOR.get(kind, "C2"), "marker": KIND_MARKER.get(kind, "^")}
        lines.append(
            ci_band(ax, x[idx], values[:, idx], label=f"{label}, {kind or 'other'}", **style, **kw)
        )
    return lines


def depth_ticks(ax, g: xr.Dataset) -> None:
    """Integer ticks at every site, labelled with the site names."""
    names = [str(n) for n in g.layer.values]
    ax.set_xticks(np.arange(len(names)), names, rotation=90, fontsize=5)
    ax.set_xlabel("measurement site (shallow to deep)")


def null_band(ax, g: xr.Dataset, label: str = "permutation null, trained (95%)") -> None:
    """Grey band of the layer MI's label-permutation null at the best epoch (mean over seeds)."""
    if "label_mi_null_lo" not in g or not np.isfinite(g.label_mi_null_lo.values).any():
        return
    x = np.arange(g.sizes["layer"])
    with np.errstate(invalid="ignore"):
        lo = np.nanmean(np.atleast_2d(at_best(g.label_mi_null_lo, g).values), axis=0)
        hi = np.nanmean(np.atleast_2d(at_best(g.label_mi_null_hi, g).values), axis=0)
        mid = np.nanmean(np.atleast_2d(at_best(g.label_mi_null, g).values), axis=0)
    ax.fill_between(x, lo, hi, color="0.5", alpha=0.3, lw=0, label=label)
    ax.plot(x, mid, color="0.35", lw=0.8, ls=":")
