"""Per-run layer selections on combined MI Datasets (runs along ``run``), for users of xarray.

Runs of different architectures share one ``layer`` axis (the union of their sites, NaN
where a run has no such site; ``analyzer.figures.load_runs``), so a positional pick such as
``ds.label_mi.isel(layer=-1)`` is one site for every run (``layer4.1.out``: NaN for VGG
runs). :func:`last_layer` picks each run's own deepest measured site instead.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def _measured(da: xr.DataArray) -> xr.DataArray:
    """(run?, layer) booleans: the run measured the layer (``depth >= 0``; without a
    ``depth`` coord: any finite value of ``da`` at that layer)."""
    if "depth" in da.coords:
        return da.depth >= 0
    keep = {"run", "layer"}
    return da.notnull().any([d for d in da.dims if d not in keep])


def last_layer(da: xr.DataArray) -> xr.DataArray:
    """``da`` at each run's last measured layer (deepest ``depth``; without a ``depth`` coord,
    the last layer holding a finite value): ``layer`` becomes a per-run coord naming the site.

    da: any variable with a ``layer`` dim, e.g. ``ds.label_mi`` (run, epoch, layer) ->
    (run, epoch). A run with no measured layer raises ValueError naming it.
    """
    if "layer" not in da.dims:
        raise ValueError(f"last_layer: {da.name or 'the array'} has no 'layer' dim")
    measured = _measured(da)
    order = (
        da.depth
        if "depth" in da.coords
        else xr.DataArray(np.arange(da.sizes["layer"]), dims="layer")
    )
    rank = xr.where(measured, order, -1)
    none = (rank < 0).all("layer")
    if bool(none.any()):
        runs = none.run.values[none.values] if "run" in none.dims else ["the run"]
        raise ValueError(f"last_layer: no measured layer for {', '.join(map(str, runs))}")
    return da.isel(layer=rank.argmax("layer"))
