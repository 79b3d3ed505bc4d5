"""From an activation store to the MI Dataset of one (bins, run): orchestration and writing.

One task per epoch (:func:`analyzer.epoch_pass.analyze_epoch`: one read of each stored chunk,
one fused compiled pass per segment of units, per-layer and layer-layer results, and the bin
codes of the layers whose all-pairs channel MI is asked at that epoch) on the active
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
from dask.base import named_schedulers

from analyzer import chunk_reader, kernel_cache, memory
from analyzer import variables as registry
from analyzer.core import metrics
from analyzer.epoch_pass import PAIR_CODES, analyze_epoch, assemble_pairs, pair_codes, pair_piece
from analyzer.incremental import reusable_epochs, start_from
from analyzer.prepare import Options, Setup, pair_sample, prepare  # noqa: F401  (public API)
from latent_mi import contract as C
from latent_mi import outputs

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


def _compute(*tasks) -> tuple:
    """``dask.compute`` on the active scheduler. With no dask.distributed imported no client
    can exist, so a named local scheduler (threads by default, as for delayed) is passed
    directly: dask would otherwise import distributed to look for one (~0.17 s per process)."""
    scheduler = None
    if "distributed" not in sys.modules:
        name = dask.config.get("scheduler", None) or "threads"
        if isinstance(name, str):
            scheduler = named_schedulers.get(name.lower())
    return dask.compute(*tasks, scheduler=scheduler)


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


def _pair_key(setup: Setup, e: int, li: int) -> tuple[int, str]:
    """(epoch coord, layer name): how the selected-epoch channel pairs are keyed."""
    return int(setup.epochs[e]), setup.plan.layers[li].name


def _pair_graph(plan, layer_codes) -> object:
    """The delayed (c_max, c_max) all-pairs array of one (epoch, layer) from its delayed
    ``pair_codes`` tuple, in as many balanced pieces as workers."""
    piece = dask.delayed(functools.partial(pair_piece, plan), pure=True)
    assemble = dask.delayed(functools.partial(assemble_pairs, plan), pure=True)
    n_pieces = _n_workers()
    return assemble(layer_codes, [piece(layer_codes, r, n_pieces) for r in range(n_pieces)])


def _compute_epochs(
    setup: Setup, indices: list[int], missing: set, extra: dict
) -> tuple[list[dict], dict]:
    """Epoch results of ``indices``, the channel pairs of the ``missing`` (epoch index, layer
    index) among them (from the epoch tasks' own codes) and, in the same pass (so they fill
    idle workers), the delayed ``extra`` tasks. Returns (results, pair key -> array)."""
    epoch = dask.delayed(functools.partial(analyze_epoch, setup.plan), pure=True)
    pick = dask.delayed(_pick, pure=True)
    tasks, todo = [], dict(extra)
    for e in indices:
        layers = tuple(li for li in setup.cc_layers if (e, li) in missing)
        tasks.append(epoch(e, layers))
        for li in layers:
            todo[_pair_key(setup, e, li)] = _pair_graph(setup.plan, pick(tasks[-1], li))
    out = _compute(*tasks, *todo.values())
    results = list(out[: len(indices)])
    for r in results:
        r.pop(PAIR_CODES, None)
    return results, dict(zip(todo, out[len(indices) :], strict=True))


def _pick(result: dict, layer_index: int) -> tuple:
    return result[PAIR_CODES][layer_index]


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


def _write_last(
    tmp: Path,
    setup: Setup,
    opts: Options,
    arrays: dict,
    last: xr.Dataset | None,
    first: bool,
    block: int,
) -> None:
    """The last block of epochs (None when every epoch was kept) and the whole-epoch-axis
    variables (channel pairs, dynamics); ``first``: nothing is written yet (an analysis of at
    most one block of epochs), then all of it in one write."""
    names = [C.INPUT_MI, C.LABEL_MI, C.VAL_ACC]
    parts = [] if first else [xr.open_zarr(tmp, consolidated=False, chunks=None)[names]]
    if last is not None:
        parts.append(last[names])
    small = (xr.concat(parts, dim="epoch") if len(parts) > 1 else parts[0]).load()
    whole = xr.merge([_pairs(setup, arrays), add_dynamics(small, opts)])
    if first:
        _write_block(tmp, xr.merge([last, whole]), True, block)
        return
    if last is not None:
        _write_block(tmp, last, False, block)
    whole.to_zarr(tmp, mode="a", consolidated=False)


def _pair_tasks(setup: Setup, old: Path | None, done: int) -> tuple[dict, set, dict]:
    """The selected-epoch all-pairs channel MI: (arrays OUT already holds, the (epoch index,
    layer index) still missing, delayed re-read tasks of the missing ones among the ``done``
    epochs kept from OUT, which no epoch task of this run reads)."""
    reuse = {}
    if old is not None:
        prev = xr.open_zarr(old)
        if "channel_channel_mi" in prev:
            for e in prev.cc_epoch.values:
                for name in prev.cc_layer.values:
                    reuse[(int(e), str(name))] = prev.channel_channel_mi.sel(
                        cc_epoch=e, cc_layer=name
                    )
    codes = dask.delayed(functools.partial(pair_codes, setup.plan), pure=True)
    arrays, missing, reread = {}, set(), {}
    for e in setup.cc_epochs:
        for li in setup.cc_layers:
            key = _pair_key(setup, e, li)
            if key in reuse:
                arrays[key] = reuse[key].values
            elif e < done:
                reread[key] = _pair_graph(setup.plan, codes(e, li))
            else:
                missing.add((e, li))
    return arrays, missing, reread


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
    kernel_cache.ensure_compiled()  # the first analysis on this machine compiles (and says so)
    memory.limit_arenas()  # before the worker threads exist
    try:
        return _analyze(store_path, out, opts, progress, allow_running)
    finally:
        chunk_reader.release_buffers()


def _analyze(store_path, out: Path, opts: Options, progress: bool, allow_running: bool) -> Path:
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
        arrays, missing, reread = _pair_tasks(setup, out if done else None, done)
        last, first = None, False  # the last block: written with the whole-axis variables
        for start in starts:
            indices = list(range(start, min(n_epochs, start + block)))
            extra = reread if start == done else {}  # re-reads fill the first block's workers
            results, pairs = _compute_epochs(setup, indices, missing, extra)
            arrays.update(pairs)
            ds = block_dataset(setup, indices, results)
            del results
            if indices[-1] == n_epochs - 1:
                last, first = ds, start == 0
            else:
                _write_block(tmp, ds, start == 0, block)
        if done == n_epochs:  # every epoch reused
            arrays.update(zip(reread, _compute(*reread.values()), strict=True))
        _write_last(tmp, setup, opts, arrays, last, first, block)
        group = zarr.open_group(tmp, mode="r+", use_consolidated=False)
        group.attrs.update(setup.attrs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            zarr.consolidate_metadata(tmp)
    return out
