"""Open MI Datasets (one per run) and combine them along ``run``, layers in depth order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from latent_mi.manifest import OutputDamaged, open_output

# fill values of the per-layer coords where a run has no such layer (NaN for data variables)
LAYER_FILL = {"depth": -1, "n_channels": 0, "layer_kind": ""}


def _object_strings(ds: xr.Dataset) -> xr.Dataset:
    """Zarr v3 strings load as numpy StringDType, which cannot be NaN-padded: use object."""
    conv = {
        name: xr.Variable(var.dims, np.asarray(var.values, dtype=object), var.attrs)
        for name, var in ds.variables.items()
        if var.dtype.kind == "T"
    }
    return ds.assign_coords({k: v for k, v in conv.items() if k in ds.coords}).assign(
        {k: v for k, v in conv.items() if k not in ds.coords}
    )


def merge_layer_orders(orders: list[list[str]]) -> list[str]:
    """One layer axis that keeps every run's own (depth) order.

    A layer first seen in a run is inserted right after that run's previous layer, so runs
    of one architecture give their own order and VGG + ResNet runs interleave without any
    run's order changing. Raises ValueError when two runs order shared layers differently.
    """
    merged: list[str] = []
    for order in orders:
        at = -1
        for name in order:
            if name in merged:
                idx = merged.index(name)
                if idx < at:
                    raise ValueError(f"runs order layer {name!r} differently: cannot combine")
                at = idx
            else:
                at += 1
                merged.insert(at, name)
    return merged


def _depth_ordered(ds: xr.Dataset) -> list[str]:
    names = [str(n) for n in ds.layer.values]
    if "depth" in ds.coords:
        names = [n for _, n in sorted(zip(ds.depth.values.tolist(), names, strict=True))]
    return names


def load_runs(paths: list[str | Path]) -> xr.Dataset:
    """Open MI Datasets and concatenate them along ``run``.

    ``layer`` (and ``layer_b``) keep each run's depth order (:func:`merge_layer_orders`);
    runs of different architectures are padded with NaN where a run has no such layer,
    and the per-run ``depth(run, layer)`` coord stays integer (-1 where absent).
    """
    if not paths:
        raise ValueError("load_runs: no MI Dataset given")
    parts = [_object_strings(_read(p)) for p in paths]
    layers = merge_layer_orders([_depth_ordered(p) for p in parts])
    parts = [
        p.reindex(layer=layers, layer_b=layers, fill_value={**LAYER_FILL, **_nan_fill(p)})
        for p in parts
    ]
    return xr.concat(
        parts,
        dim="run",
        coords="different",
        compat="equals",
        join="outer",
        combine_attrs="drop_conflicts",
    )


def _read(path) -> xr.Dataset:
    """One MI Dataset read whole (small); a damaged one is a ValueError naming the file."""
    try:
        return open_output(path).load()  # checked against its manifest first
    except OutputDamaged:
        raise
    except Exception as e:  # zarr and codecs raise many kinds on a damaged chunk
        msg = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(
            f"{path}: cannot be read ({type(e).__name__}: {msg}); rerun the analyzer for it"
        ) from None


def _nan_fill(ds: xr.Dataset) -> dict:
    """NaN for every float variable; integer variables along layer get -1."""
    return {
        name: (np.nan if ds[name].dtype.kind == "f" else -1)
        for name in ds.variables
        if name not in LAYER_FILL
        and ("layer" in ds[name].dims or "layer_b" in ds[name].dims)
        and ds[name].dtype.kind in "fiu"
    }
