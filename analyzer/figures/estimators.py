"""Fig 1 per MI estimator: layer label MI against depth under each estimator the runs carry.

One row per estimator (``analyzer.report.estimator_findings.VIEWS`` present in the
Dataset: histogram, kNN, Gaussian, probe and the projection variants), one column per
(arch, activation, regularizer) group; trained (best epoch) against random (epoch 0), mean
and 95% t-interval over seeds. Each estimator has its own scale (they disagree in scale by
construction): compare the trend down a column, not the levels across rows.

    from analyzer.figures import load_runs
    from analyzer.figures.estimators import fig1_depth_by_estimator
    fig1_depth_by_estimator(load_runs(paths), out="fig1_depth_by_estimator")
"""

from __future__ import annotations

import xarray as xr

from analyzer.figures.depth import depth_lines, depth_ticks
from analyzer.figures.drawing import Drawn, bins_of, finish, new_figure
from analyzer.figures.grouping import at_best, groups, label
from analyzer.report.estimator_findings import VIEWS

FORMATS = ("png", "pdf")


def fig1_depth_by_estimator(ds: xr.Dataset, out=None, formats=FORMATS) -> Drawn:
    """Label MI against depth, one row per estimator present in ``ds`` (load_runs output)."""
    views = [(name, var) for name, var in VIEWS if var in ds]
    gs = groups(ds)
    fig, axes = new_figure(len(views), len(gs), 4.2, 3.2)
    for col, (key, g) in enumerate(gs.items()):
        for row, (name, var) in enumerate(views):
            ax = axes[row, col]
            depth_lines(ax, g, at_best(g[var], g).values, "trained (best epoch)")
            depth_lines(ax, g, g[var].isel(epoch=0).values, "random (epoch 0)", ls="--")
            depth_ticks(ax, g)
            ax.set_ylabel(f"I(T;Y) [nat], {name} ({var})", fontsize=7)
            ax.set_title(label(key, g), fontsize=8)
            ax.legend(fontsize=6)
    return finish(
        fig,
        f"Fig 1 per estimator: layer-label MI against depth ({bins_of(ds)} for the histogram)\n"
        "mean and 95% t-interval over seeds; each row its own estimator and scale",
        out,
        formats,
    )
