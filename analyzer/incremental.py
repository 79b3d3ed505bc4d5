"""Incremental analysis: which epochs of an existing MI Dataset can be kept.

An existing OUT is reused when it is this analyzer's MI Dataset (attr ``analyzer_version``
equal to :data:`analyzer.prepare.ANALYZER_VERSION`) of the same store (``source_store``), with
the same result-changing options (``analysis_options``), the same layers and samples, and
its epochs are the store's first epochs with the same ``val_acc`` (a retrained run differs
there). Its epoch-indexed variables are then copied to the temporary output and only the new
epochs are appended; variables computed from the whole epoch axis (dynamics, the
selected-epoch channel pairs) are dropped and recomputed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from analyzer import variables as registry
from analyzer.prepare import ANALYZER_VERSION, Setup
from latent_mi import contract as C
from latent_mi.manifest import verify

WHOLE_AXIS = [v.name for v in registry.VARIABLES.values() if v.stage in ("dynamics", "selected")]


def reusable_epochs(out: Path, setup: Setup) -> int:
    """Number of leading epochs of OUT that need no recomputation (0: rewrite OUT)."""
    if not (out / "zarr.json").exists():
        return 0
    try:
        verify(out)  # a damaged chunk is not reused
        old = xr.open_zarr(out)
    except Exception:  # not a readable Zarr group, or damaged: rewrite
        return 0
    attrs, new = old.attrs, setup.attrs
    same = (
        attrs.get("analyzer_version") == ANALYZER_VERSION
        and attrs.get("source_store") == new["source_store"]
        and attrs.get("analysis_options") == new["analysis_options"]
        and attrs.get("n_samples") == new["n_samples"]
        and list(old.layer.values) == list(setup.coords["layer"])
        and all(
            v.name in old
            for v in registry.VARIABLES.values()
            if v.stage in ("layer", "epoch") and not v.optional
        )
    )
    if not same:
        return 0
    n = old.sizes["epoch"]
    if n > len(setup.epochs) or not np.array_equal(old.epoch.values, setup.epochs[:n]):
        return 0
    if C.VAL_ACC in setup.store_vars and not np.array_equal(
        old[C.VAL_ACC].values, setup.store_vars[C.VAL_ACC][:n], equal_nan=True
    ):
        return 0
    return n


def start_from(out: Path, tmp: Path, done: int) -> None:
    """Copy OUT's reusable part to ``tmp`` (nothing when ``done`` is 0)."""
    if not done:
        return
    shutil.copytree(out, tmp)
    group = zarr.open_group(tmp, mode="r+", use_consolidated=False)
    for name in [*WHOLE_AXIS, "cc_epoch", "cc_layer"]:
        if name in group:
            del group[name]
