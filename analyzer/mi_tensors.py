"""From an activation store to the MI Dataset of one (bins, run): orchestration and writing.

One task per epoch (:func:`analyzer.epoch_pass.analyze_epoch`: one read of each stored chunk,
one fused compiled pass per segment of units, per-layer and layer-layer results) on the active
dask scheduler (threads by default, ``processes``, or a dask.distributed cluster; tasks are
single-threaded inside, so results are bit-identical for any worker count). Epochs are
computed in blocks and appended to a temporary sibling of OUT as they finish, so memory is
bounded by a block of small results plus one segment per worker, never by the run.

Incremental: when OUT is this analyzer's MI Dataset of the same store with the same options
and analyzer version (attrs ``analysis_options``, ``analyzer_version``, ``source_store``) and
its epochs are the store's first epochs (same ``val_acc``), only the new epochs are computed
and appended; the whole-epoch-axis variables (dynamics, the selected-epoch channel pairs)
are then recomputed and OUT is replaced atomically. Otherwise OUT is rewritten.

Definitions: see ``analyzer/variables.py`` (one registry of every output variable) and the
attrs written into the Dataset.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path

import dask
import numpy as np
import xarray as xr
import zarr

from latent_mi import contract as C
from latent_mi import outputs

from . import memory, metrics
from . import variables as registry
from .epoch_pass import analyze_epoch, assemble_pairs, pair_codes, pair_piece
from .incremental import reusable_epochs, start_from
from .setup import Options, Setup, pair_sample, prepare  # noqa: F401  (public API)

__all__ = ["Options", "analyze", "add_dynamics", "pair_sample"]


def add_dynamics(ds: xr.Dataset, opts: Options) -> xr.Dataset:
    """Dynamics variables from the (small) layer-level MI over all epochs; a new Dataset."""
    input_mi = ds.input_mi.values.astype(np.float64)
    label_mi = ds.label_mi.values.astype(np.float64)
    best = C.best_epoch(ds[C.VAL_ACC].values)
    per_layer, mean_final = metrics.delta_input_mi(input_mi, best)
    plateau, slope = metrics.post_plateau_slopes(
        label_mi, input_mi, ds.epoch.values, opts.plateau_fraction
    )
    values = {
        "delta_input_mi": mean_final,
        "delta_input_mi_layer": per_layer,
        "plateau_epoch": plateau,
        "post_plateau_slope": slope,
    }
    data = {}
    for var in registry.of_stage("dynamics"):
        data[var.name] = (var.dims, np.asarray(values[var.name], dtype=var.dtype))
    out = xr.Dataset(data, coords={"layer": ds.layer.values})
    registry.set_attrs(out)
    return out


def _n_workers() -> int:
    """Workers of the active dask scheduler (threads, processes or a cluster's threads)."""
    if (
        "distributed" in sys.modules
    ):  # a client implies distributed is imported (import costs ~0.3 s)
        from distributed import get_client

        try:
            return max(1, sum(get_client().nthreads().values()))
        except ValueError:  # no client
            pass
    return max(1, dask.config.get("num_workers", None) or os.cpu_count() or 1)


def block_dataset(setup: Setup, indices: list[int], results: list[dict]) -> xr.Dataset:
    """The epoch-indexed variables of a block of epochs as one Dataset (no dynamics, no pairs)."""
    data = {}
    for var in registry.of_stage("layer") + registry.of_stage("epoch"):
        if var.optional and var.name not in results[0]:  # not asked for (e.g. no noise betas)
            continue
        data[var.name] = (var.dims, np.stack([r[var.name] for r in results]))
    for name, values in setup.store_vars.items():
        data[name] = (registry.VARIABLES[name].dims, values[indices])
    coords = dict(setup.coords, epoch=setup.epochs[indices])
    ds = xr.Dataset(data, coords=coords)
    registry.set_attrs(ds)
    return ds


def _compute_epochs(setup: Setup, indices: list[int], extra: dict) -> tuple[list[dict], dict]:
    """Epoch results of ``indices`` and, computed in the same pass (so they fill idle
    workers), the delayed ``extra`` tasks (key -> result)."""
    task = dask.delayed(functools.partial(analyze_epoch, setup.plan), pure=True)
    out = dask.compute(*[task(e) for e in indices], *extra.values())
    return list(out[: len(indices)]), dict(zip(extra, out[len(indices) :], strict=True))


def _write_block(tmp: Path, ds: xr.Dataset, first: bool, block: int) -> None:
    if first:
        encoding = {
            name: {"chunks": (block, *ds[name].shape[1:])}
            for name in ds.data_vars
            if ds[name].dims[:1] == ("epoch",)
        }
        ds.to_zarr(tmp, mode="w", encoding=encoding, consolidated=False, zarr_format=3)
    else:
        keep = [n for n in ds.variables if "epoch" in ds[n].dims]
        ds[keep].to_zarr(tmp, mode="a-", append_dim="epoch", consolidated=False)


def _pair_tasks(setup: Setup, old: Path | None) -> tuple[dict, dict]:
    """The selected-epoch all-pairs channel MI: (arrays OUT already holds, delayed tasks of the
    others), each (epoch, layer) in as many balanced pieces as workers."""
    plan = setup.plan
    reuse = {}
    if old is not None:
        prev = xr.open_zarr(old)
        if "channel_channel_mi" in prev:
            for e in prev.cc_epoch.values:
                for name in prev.cc_layer.values:
                    reuse[(int(e), str(name))] = prev.channel_channel_mi.sel(
                        cc_epoch=e, cc_layer=name
                    )
    codes = dask.delayed(functools.partial(pair_codes, plan), pure=True)
    piece = dask.delayed(functools.partial(pair_piece, plan), pure=True)
    assemble = dask.delayed(functools.partial(assemble_pairs, plan), pure=True)
    n_pieces = _n_workers()
    arrays, todo = {}, {}
    for e in setup.cc_epochs:
        for li in setup.cc_layers:
            key = (int(setup.epochs[e]), plan.layers[li].name)
            if key in reuse:
                arrays[key] = reuse[key].values
            else:
                layer_codes = codes(e, li)
                pieces = [piece(layer_codes, r, n_pieces) for r in range(n_pieces)]
                todo[key] = assemble(layer_codes, pieces)
    return arrays, todo


def _pairs(setup: Setup, arrays: dict) -> xr.Dataset:
    """The channel_channel_mi Dataset from the (epoch, layer name) -> (c_max, c_max) arrays."""
    plan = setup.plan
    c_max = setup.plan.sizes["channel"]
    cc = np.full((len(setup.cc_epochs), len(setup.cc_layers), c_max, c_max), np.nan, np.float32)
    for i, e in enumerate(setup.cc_epochs):
        for j, li in enumerate(setup.cc_layers):
            cc[i, j] = arrays[(int(setup.epochs[e]), plan.layers[li].name)]
    var = registry.VARIABLES["channel_channel_mi"]
    ds = xr.Dataset(
        {var.name: (var.dims, cc.astype(var.dtype))},
        coords={
            "cc_epoch": np.array([setup.epochs[e] for e in setup.cc_epochs]),
            "cc_layer": np.array([plan.layers[i].name for i in setup.cc_layers], dtype=object),
            "channel": setup.coords["channel"],
            "channel_b": setup.coords["channel_b"],
        },
    )
    registry.set_attrs(ds)
    return ds


def _is_mi_dataset(path: Path) -> bool:
    """An MI Dataset written before outputs carried a marker (by its root attrs)."""
    attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    return {C.ATTR_BEST_EPOCH, "pair_samples", "source_store"} <= set(attrs)


def analyze(
    store_path: str | Path,
    out: str | Path,
    opts: Options,
    progress: bool = False,
    allow_running: bool = False,
) -> Path:
    """Compute (or extend) the MI Dataset of ``store_path`` at ``out`` (Zarr), atomically.

    Only epochs not already in a reusable OUT are computed (see the module doc). The result
    is assembled in a temporary sibling and renamed into place once complete, so a failure
    leaves OUT as it was. Only an MI Dataset this tool wrote is replaced
    (``latent_mi.outputs.safe_output``); anything else at ``out`` stops with an OutputError
    naming it, and a second analyzer on ``out`` a LockError. ``allow_running``: analyze the
    complete epochs of a store that the trainer is still writing.
    """
    out = Path(out)
    memory.limit_arenas()  # before the worker threads exist
    # refuses what is not ours at ``out`` before any work; locks ``out`` while writing
    with outputs.safe_output(out, C.KIND_MI, recognise=_is_mi_dataset) as tmp:
        setup = prepare(store_path, opts, allow_running=allow_running)
        n_epochs = len(setup.epochs)
        done = reusable_epochs(out, setup)
        start_from(out, tmp, done)
        block = int(opts.epoch_block or 4 * _n_workers())
        starts = range(done, n_epochs, block)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="epochs", unit="block")
        arrays, todo = _pair_tasks(setup, out if done else None)
        paired = False
        for start in starts:
            indices = list(range(start, min(n_epochs, start + block)))
            last = indices[-1] == n_epochs - 1  # channel pairs with the last block
            results, pairs = _compute_epochs(setup, indices, todo if last else {})
            arrays.update(pairs)
            paired = paired or last
            _write_block(tmp, block_dataset(setup, indices, results), start == 0, block)
            del results
        if not paired:  # every epoch reused
            arrays.update(zip(todo, dask.compute(*todo.values()), strict=True))
        _pairs(setup, arrays).to_zarr(tmp, mode="a", consolidated=False)
        small = xr.open_zarr(tmp, consolidated=False, chunks=None)
        small = small[[C.INPUT_MI, C.LABEL_MI, C.VAL_ACC]].load()
        add_dynamics(small, opts).to_zarr(tmp, mode="a", consolidated=False)
        group = zarr.open_group(tmp, mode="r+", use_consolidated=False)
        group.attrs.update(setup.attrs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            zarr.consolidate_metadata(tmp)
    return out
