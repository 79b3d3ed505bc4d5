"""From an activation store to the MI Dataset of one (bins, run), computed out of core with dask.

Work is split into one task per (epoch, layer) reading only that layer's units of that
epoch; a light per-epoch task combines the layers (layer-layer MI); channel-pair MI is
one task per (selected epoch, selected layer). Results are written to Zarr as they are
produced, so peak memory does not grow with the number of epochs.

Definitions (also written into each variable's attrs):

* ``channel_label_mi = I(T_lc; Y)``, ``channel_input_mi = H(Bin(T_lc))`` (= I(X; T_lc)
  for X uniform over the distinct validation images and a deterministic net: it measures
  how the channel clusters inputs, seeds/002), ``class_channel_mi = I(T_lc; 1[Y = k])``;
* layer level (non-saturating, never one joint pattern of a wide GAP vector):
  ``label_mi``/``input_mi`` = mean over the layer's channels of the channel values;
  ``label_mi_pca``/``input_mi_pca`` = the same on the joint bin of the top principal
  components of the layer's GAP vector; ``input_summary_mi`` = mean over channels of
  I(T_lc; Bin(PC1 of the stored input summaries));
* ``layer_mi(a, b)`` = mean over P aligned pairs of I(T_{a,s_a(p)}; T_{b,s_b(p)}) with
  s_l a fixed seeded sample of P channels of layer l (for a = b the p-th channel is paired
  with the next one of the sample); ``layer_mi_pc1(a, b)`` = I(Bin(PC1_a); Bin(PC1_b)).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numba
import numpy as np
import xarray as xr
import zarr
from threadpoolctl import threadpool_limits

from latent_mi import contract as C
from latent_mi import outputs

from . import estimators as est
from . import metrics, nulls
from . import variables as registry
from .activations import Layer, layers_of, open_activations
from .kernels import all_pairs_mi, indicator_mi_from_counts, paired_mi, xlogx_table


@dataclass
class Options:
    bins: int = 20
    topk: tuple[float, ...] = (1, 5, 10, 20)
    pair_samples: int = 64
    pca_components: int = 2
    miller_madow: bool = False
    cc_layers: str | list[str] = "last"  # "last", "all", or layer names
    cc_epochs: tuple[str, ...] = ("init", "best", "last")
    plateau_fraction: float = 0.95
    seed: int = 0  # seeds the channel-pair samples and the label permutations
    permutations: int = nulls.DEFAULT_PERMUTATIONS  # label permutations of the nulls (0: none)
    run: str | None = None
    epoch_block: int | None = None  # epochs per write; None: as many as fit in block_bytes
    block_bytes: int = (
        256 * 2**20
    )  # activation bytes in flight per block (at least 1 epoch per worker)


def pair_sample(n_channels: int, layer_index: int, size: int, seed: int) -> np.ndarray:
    """Fixed channel sample of a layer for layer-layer MI (without replacement)."""
    rng = np.random.default_rng([seed, layer_index])
    if n_channels <= size:
        return rng.permutation(n_channels)
    return np.sort(rng.choice(n_channels, size, replace=False))


def layer_epoch_stats(
    epoch_values, units, labels, n_classes, summary_codes, pairs, opts: Options
) -> dict:
    """All per-(epoch, layer) quantities from the layer's GAP values ``epoch_values[:, units]``.

    Runs single-threaded (numba and BLAS): dask supplies the parallelism across tasks,
    and nested thread pools would only oversubscribe the cores.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(1)  # thread-local in numba
    try:
        with threadpool_limits(1):
            values = np.ascontiguousarray(epoch_values[:, units])
            return _layer_epoch_stats(values, labels, n_classes, summary_codes, pairs, opts)
    finally:
        numba.set_num_threads(previous)


def _layer_epoch_stats(values, labels, n_classes, summary_codes, pairs, opts: Options) -> dict:
    """Every 'layer'-stage registry variable of one (epoch, layer), channel axes unpadded.

    Also returns the private ``pair_codes`` / ``pc1_codes`` used by :func:`epoch_stats`.
    """
    values = np.asarray(values)
    n, c = values.shape
    bins, mm = opts.bins, opts.miller_madow
    finite, counts = est.channel_counts(values, labels, bins, n_classes)
    ok = bool(finite.all())

    label = np.where(finite, est.mi_from_joint(counts, mm), np.nan)
    entropy = np.where(finite, est.entropy_from_counts(counts.sum(axis=2), n, mm), np.nan)
    indicator = (
        est.indicator_mi(counts, mm) if mm else indicator_mi_from_counts(counts, xlogx_table(n))
    )
    classes = np.where(finite[:, None], indicator, np.nan)
    _, summary_counts = est.channel_counts(values, summary_codes, bins, bins)
    summary = np.where(finite, est.mi_from_joint(summary_counts, mm), np.nan)

    nan = math.nan
    out = {
        "channel_label_mi": label,
        "channel_input_mi": entropy,
        "class_channel_mi": classes,
        "label_mi": float(label.mean()) if ok else nan,
        "input_mi": float(entropy.mean()) if ok else nan,
        "input_summary_mi": float(summary.mean()) if ok else nan,
        "gini": metrics.gini(label) if ok else nan,
        "norm_entropy": metrics.norm_entropy(label) if ok else nan,
        "topk_share": np.array([metrics.topk_share(label, k) if ok else nan for k in opts.topk]),
        "nonfinite_channels": int((~finite).sum()),
        "pair_codes": est.bin_codes(values[:, pairs], bins)[0] if ok else None,
        "pc1_codes": None,
        "label_mi_pca": nan,
        "input_mi_pca": nan,
    }
    perms = nulls.permuted_labels(labels, opts.permutations, opts.seed)  # same for every layer
    codes = est.bin_codes(values, bins)[0]
    out.update(nulls.null_outputs(codes, labels, perms, bins, n_classes, finite))
    if ok:
        scores = est.top_principal_components(values, opts.pca_components)
        joint = est.joint_codes(scores, bins)
        out["label_mi_pca"] = est.discrete_mi(joint, labels, mm)
        out["input_mi_pca"] = float(est.entropy_from_counts(np.bincount(joint), n, mm))
        out["pc1_codes"] = est.equal_width_codes(scores[:, 0], bins)
    return out


def epoch_stats(layer_results: list[dict], opts: Options, sizes: dict[str, int]) -> dict:
    """Stack one epoch's layer results (registry padding) and add the layer-layer MI matrices."""
    n_layers = len(layer_results)
    stacked = registry.stack_layers(layer_results, sizes)
    layer_mi = np.full((n_layers, n_layers), np.nan, dtype=np.float32)
    layer_mi_pc1 = np.full((n_layers, n_layers), np.nan, dtype=np.float32)
    ok = [i for i, r in enumerate(layer_results) if r["pc1_codes"] is not None]
    if not ok:  # every layer non-finite at this epoch
        stacked.update(layer_mi=layer_mi, layer_mi_pc1=layer_mi_pc1)
        return stacked
    xlogx = xlogx_table(len(layer_results[ok[0]]["pc1_codes"]))  # one table: all share N
    # all PC1 pairs at once: one all-pairs kernel call over the layers' PC1 codes
    pc1 = np.stack([layer_results[i]["pc1_codes"] for i in ok]).astype(np.uint8)
    layer_mi_pc1[np.ix_(ok, ok)] = all_pairs_mi(pc1, opts.bins, xlogx)
    for a, ra in enumerate(layer_results):
        if ra["pair_codes"] is None:
            continue
        for b in range(a, n_layers):
            rb = layer_results[b]
            if rb["pair_codes"] is None:
                continue
            ca, cb = ra["pair_codes"], rb["pair_codes"]
            if a == b:
                cb = np.roll(ca, -1, axis=0)
            p = min(len(ca), len(cb))
            v = paired_mi(
                np.ascontiguousarray(ca[:p]), np.ascontiguousarray(cb[:p]), opts.bins, xlogx
            )
            layer_mi[a, b] = layer_mi[b, a] = v.mean()
    stacked["layer_mi"] = layer_mi
    stacked["layer_mi_pc1"] = layer_mi_pc1
    return stacked


def channel_pairs(epoch_values, units, c_max, bins) -> np.ndarray:
    """All-pairs channel MI of one layer at one epoch, padded to (c_max, c_max) with NaN."""
    values = np.ascontiguousarray(epoch_values[:, units])
    codes, finite = est.bin_codes(values, bins)
    out = np.full((c_max, c_max), np.nan, dtype=np.float32)
    c = values.shape[1]
    mi = all_pairs_mi(codes, bins, xlogx_table(values.shape[0]))
    mi[~finite, :] = np.nan
    mi[:, ~finite] = np.nan
    out[:c, :c] = mi
    return out


def _selected_epochs(ds, opts: Options, best: int) -> list[int]:
    index = {"init": 0, "best": best, "last": ds.sizes["epoch"] - 1}
    chosen = []
    for name in opts.cc_epochs:
        if name not in index:
            raise ValueError(f"cc epoch {name!r}: use init, best or last")
        if index[name] not in chosen:
            chosen.append(index[name])
    return chosen


def _selected_layers(layers: list[Layer], opts: Options) -> list[int]:
    if opts.cc_layers == "all":
        return list(range(len(layers)))
    if opts.cc_layers == "last":
        return [len(layers) - 1]
    names = [layer.name for layer in layers]
    unknown = [n for n in opts.cc_layers if n not in names]
    if unknown:
        raise ValueError(f"cc layers not in the store: {', '.join(unknown)}")
    return [names.index(n) for n in opts.cc_layers]


def build_dataset(store_path: str | Path, opts: Options) -> xr.Dataset:
    """The lazy (dask-backed) MI Dataset of one store, without the dynamics variables."""
    src = open_activations(store_path)
    layers = layers_of(src)
    labels = src.label.values.astype(np.int64)
    classes = json.loads(src.attrs.get("classes", "null")) or [
        str(k) for k in range(labels.max() + 1)
    ]
    n_classes = len(classes)
    c_max = max(layer.channels for layer in layers)
    n_epochs, n_layers = src.sizes["epoch"], len(layers)
    val_acc = src.val_acc.values
    best = metrics.best_epoch(val_acc)

    summary = src.input_summary.values if "input_summary" in src else None
    if summary is not None:
        summary_codes = est.equal_width_codes(
            est.top_principal_components(summary, 1)[:, 0], opts.bins
        )
    else:
        summary_codes = np.zeros(len(labels), dtype=np.int64)
    summary_codes = summary_codes.astype(np.int64)
    sizes = {
        "epoch": n_epochs,
        "layer": n_layers,
        "layer_b": n_layers,
        "channel": c_max,
        "channel_b": c_max,
        "label": n_classes,
        "k": len(opts.topk),
    }
    pairs = [
        pair_sample(layer.channels, i, opts.pair_samples, opts.seed)
        for i, layer in enumerate(layers)
    ]

    # One task reads each epoch whole (every chunk decompressed once); the per-layer tasks
    # slice it in memory. Slicing the dask array per layer instead would decompress a
    # chunk once for every layer it holds.
    act = src.activation.data
    read = dask.delayed(np.asarray, pure=True)
    epoch_values = [read(act[e]) for e in range(n_epochs)]
    task = dask.delayed(layer_epoch_stats, pure=True)
    combine = dask.delayed(epoch_stats, pure=True)
    per_epoch = []
    for e in range(n_epochs):
        layer_tasks = [
            task(
                epoch_values[e],
                layer.units,
                labels,
                n_classes,
                summary_codes,
                pairs[i],
                opts,
            )
            for i, layer in enumerate(layers)
        ]
        per_epoch.append(combine(layer_tasks, opts, sizes))

    data_vars = {}
    for var in registry.of_stage("layer") + registry.of_stage("epoch"):
        shape = registry.shape_of(var, sizes, skip=1)
        arrays = [
            da.from_delayed(dask.delayed(lambda r, k=var.name: r[k])(res), shape, dtype=var.dtype)
            for res in per_epoch
        ]
        data_vars[var.name] = (var.dims, da.stack(arrays))

    cc_epochs = _selected_epochs(src, opts, best)
    cc_layers = _selected_layers(layers, opts)
    cc = dask.delayed(channel_pairs, pure=True)
    cc_arrays = [
        da.stack(
            [
                da.from_delayed(
                    cc(epoch_values[e], layers[li].units, c_max, opts.bins),
                    (c_max, c_max),
                    np.float32,
                )
                for li in cc_layers
            ]
        )
        for e in cc_epochs
    ]
    data_vars["channel_channel_mi"] = (
        registry.VARIABLES["channel_channel_mi"].dims,
        da.stack(cc_arrays),
    )

    for var in registry.of_stage("store"):
        if var.name in src:
            data_vars[var.name] = (var.dims, src[var.name].values.astype(var.dtype))

    names = np.array([layer.name for layer in layers], dtype=object)
    coords = {
        "epoch": src.epoch.values,
        "layer": names,
        "layer_b": names,
        "channel": np.arange(c_max),
        "channel_b": np.arange(c_max),
        "label": np.arange(n_classes),
        "class_name": ("label", np.array(classes, dtype=object)),
        "k": np.array(opts.topk, dtype=np.float64),
        "n_channels": ("layer", np.array([layer.channels for layer in layers], dtype=np.int32)),
        "layer_kind": ("layer", np.array([layer.kind for layer in layers], dtype=object)),
        "depth": ("layer", np.arange(n_layers, dtype=np.int32)),
        "cc_epoch": np.array([src.epoch.values[e] for e in cc_epochs]),
        "cc_layer": np.array([layers[i].name for i in cc_layers], dtype=object),
        "bins": opts.bins,
        "run": np.array(opts.run or Path(store_path).resolve().parent.name, dtype=object),
    }
    for key in ("dataset", "arch", "activation", "regularizer"):
        coords[key] = np.array(str(src.attrs.get(key, "unknown")), dtype=object)
    coords["seed"] = int(src.attrs.get("seed", -1))
    ds = xr.Dataset(data_vars, coords=coords)
    registry.set_attrs(ds)
    ds["k"].attrs.update(units="percent of the layer's channels")
    ds.attrs.update(
        estimator="plug-in histogram (maximum likelihood) entropy and MI, natural log",
        miller_madow=int(opts.miller_madow),
        binning=est.BINNING,
        null=(
            f"label-permutation null: {opts.permutations} permutations of the validation labels, "
            f"seed {opts.seed}, shared by every channel, layer and epoch; *_corrected = plug-in "
            "MI minus the null mean (also with --miller-madow)"
        ),
        permutations=opts.permutations,
        null_seed=opts.seed,
        units="nat",
        n_samples=len(labels),
        layer_level=(
            "per-channel MI averaged over the layer's channels (never one joint pattern of the whole "
            "GAP vector, which saturates at H(Y) / ln N); *_pca variants use the joint bin of the top "
            f"{opts.pca_components} principal components"
        ),
        input_mi_note=(
            "with X uniform over the distinct validation images and a deterministic network, "
            "I(X;T) = H(Bin(T)): it measures how the representation clusters inputs (seeds/002), "
            "not a true MI"
        ),
        pair_samples=opts.pair_samples,
        pca_components=opts.pca_components,
        plateau_fraction=opts.plateau_fraction,
        **{C.ATTR_BEST_EPOCH: int(src.epoch.values[best])},
        source_store=str(Path(store_path).resolve()),
        source_status=src.attrs.get("status", ""),
        source_config=src.attrs.get("config", ""),
        versions=json.dumps(_versions()),
    )
    return ds


def add_dynamics(ds: xr.Dataset, opts: Options) -> xr.Dataset:
    """Dynamics variables from the (small) layer-level MI over epochs; returns a new Dataset."""
    input_mi = ds.input_mi.values.astype(np.float64)
    label_mi = ds.label_mi.values.astype(np.float64)
    best = metrics.best_epoch(ds.val_acc.values)
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
    """Workers of the active dask scheduler (threads, or a distributed cluster's threads)."""
    try:
        from distributed import get_client

        return max(1, sum(get_client().nthreads().values()))
    except (ImportError, ValueError):
        return max(1, dask.config.get("num_workers", None) or os.cpu_count() or 1)


def _versions() -> dict:
    import numba

    return {
        "numpy": np.__version__,
        "xarray": xr.__version__,
        "dask": dask.__version__,
        "zarr": zarr.__version__,
        "numba": numba.__version__,
    }


def _is_mi_dataset(path: Path) -> bool:
    """An MI Dataset written before outputs carried a marker (by its root attrs)."""
    attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    return {C.ATTR_BEST_EPOCH, "pair_samples", "source_store"} <= set(attrs)


def analyze(store_path: str | Path, out: str | Path, opts: Options, progress: bool = False) -> Path:
    """Compute the MI Dataset of ``store_path`` and write it to ``out`` (Zarr), atomically.

    Epochs are computed and written in blocks (``epoch_block``, by default as many epochs as
    fit in ``block_bytes``, at least one per dask worker), so peak memory is bounded by the
    block, not by the number of epochs. The result is
    written to a temporary sibling and renamed into place only once complete, so a failure
    leaves nothing at ``out`` (an older result there is kept until replaced). Only an MI
    Dataset this tool wrote is replaced (``latent_mi.outputs.safe_output``); anything else at
    ``out`` stops with an OutputError naming it, and a second analyzer on ``out`` a LockError.
    """
    out = Path(out)
    # refuses what is not ours at ``out`` before any work; locks ``out`` while writing
    with outputs.safe_output(out, C.KIND_MI, recognise=_is_mi_dataset) as tmp:
        ds = build_dataset(store_path, opts)
        pairs = ds[["channel_channel_mi"]]
        main = ds.drop_vars("channel_channel_mi")
        lazy = [name for name, v in main.data_vars.items() if isinstance(v.data, da.Array)]
        n_epochs = main.sizes["epoch"]
        epoch_bytes = ds.attrs["n_samples"] * int(ds.n_channels.sum()) * 4  # float32 in memory
        block = opts.epoch_block or max(_n_workers(), opts.block_bytes // max(epoch_bytes, 1))
        block = int(min(block, n_epochs))
        # one stored chunk per block for the computed variables: few, larger writes
        main = main.assign({name: main[name].chunk({"epoch": block}) for name in lazy})
        main.to_zarr(tmp, mode="w", compute=False, consolidated=False, zarr_format=3)  # metadata
        starts = range(0, n_epochs, block)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="epochs", unit="block")
        for start in starts:
            region = slice(start, min(n_epochs, start + block))
            part = main[lazy].isel(epoch=region)
            part.drop_vars(list(part.coords)).to_zarr(
                tmp, region={"epoch": region}, consolidated=False
            )
        pairs.attrs.update(ds.attrs)  # xarray rewrites the group attrs on mode "a"
        pairs.to_zarr(tmp, mode="a", consolidated=False)
        small = xr.open_zarr(tmp, consolidated=False)[["input_mi", "label_mi", "val_acc"]].load()
        dynamics = add_dynamics(small, opts)
        dynamics.attrs.update(ds.attrs)  # xarray rewrites the group attrs on mode "a"
        dynamics.to_zarr(tmp, mode="a", consolidated=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            zarr.consolidate_metadata(tmp)
    return out
