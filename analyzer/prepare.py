"""What one analysis needs before any epoch is read: options, plan, coords and attrs.

:func:`prepare` opens the store once (metadata, labels, input summaries, metrics) and
returns a :class:`Setup`: the picklable per-epoch :class:`~analyzer.epoch_pass.Plan`, the
MI Dataset's non-epoch coords and its attrs. Nothing here reads activations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from analyzer import estimators as mi_estimators
from analyzer import layer_info
from analyzer.activations import Layer, layers_of, open_activations
from analyzer.core import histogram as est
from analyzer.core import nulls, pca
from analyzer.core.whole_layer import LayerBinning
from analyzer.epoch_pass import Plan, max_segment_units, segments_of
from analyzer.options import Options
from latent_mi import contract as C

ANALYZER_VERSION = "5"  # 5: layer_mi_null, any store layout; 4: exact null means; bump when a change alters results: old MI Datasets are then rewritten


class OptionError(ValueError):
    """An option in its declared range that this store cannot use (the analyzer exits 2)."""


def _small(perms: np.ndarray) -> np.ndarray:
    """Permuted labels as uint8 when they fit: 8x less memory traffic in the null kernel."""
    return perms.astype(np.uint8) if perms.size and perms.max() < 256 else perms


def pair_sample(n_channels: int, layer_index: int, size: int, seed: int) -> np.ndarray:
    """Fixed channel sample of a layer for layer-layer MI (without replacement)."""
    rng = np.random.default_rng([seed, layer_index])
    if n_channels <= size:
        return rng.permutation(n_channels)
    return np.sort(rng.choice(n_channels, size, replace=False))


def selected_epochs(n_epochs: int, opts: Options, best: int) -> list[int]:
    """Epoch indices of the all-pairs channel MI (init, best, last by default)."""
    index = {"init": 0, "best": best, "last": n_epochs - 1}
    chosen = []
    for name in opts.cc_epochs:
        if name not in index:
            raise ValueError(f"cc epoch {name!r}: use init, best or last")
        if index[name] not in chosen:
            chosen.append(index[name])
    return chosen


def selected_layers(layers: list[Layer], opts: Options) -> list[int]:
    if opts.cc_layers == "all":
        return list(range(len(layers)))
    if opts.cc_layers == "last":
        return [len(layers) - 1]
    names = [layer.name for layer in layers]
    unknown = [n for n in opts.cc_layers if n not in names]
    if unknown:
        raise ValueError(f"cc layers not in the store: {', '.join(unknown)}")
    return [names.index(n) for n in opts.cc_layers]


@dataclass
class Setup:
    plan: Plan
    epochs: np.ndarray  # epoch coord values of the epochs to analyze
    store_vars: dict  # name -> (epoch,) values carried from the store
    best: int  # index of the best epoch
    cc_epochs: list[int]
    cc_layers: list[int]
    coords: dict  # non-epoch coords
    attrs: dict


def _complete_epochs(path: Path, src: xr.Dataset) -> int:
    """Leading epochs whose append finished (the trainer writes the epoch coord last)."""
    values = zarr.open_array(f"{path}/epoch", mode="r")[:]  # written last by the trainer
    # strictly increasing from 0 (every epoch, or an epoch grid such as twelve_bit_mlp's log grid)
    ok = np.concatenate([[len(values) > 0 and values[0] == 0], np.diff(values) > 0])
    n = int(len(values) if ok.all() else np.argmin(ok))
    return min(n, src.sizes["epoch"])


def prepare(store_path: str | Path, opts: Options, allow_running: bool = False) -> Setup:
    """Open the store's metadata and build everything but the activations."""
    store_path = Path(store_path).resolve()
    src = _open_complete_epochs(store_path, allow_running)
    layers = layers_of(src)
    labels = src[C.LABEL].values.astype(np.int64)
    classes = json.loads(src.attrs.get(C.ATTR_CLASSES, "null")) or [
        str(k) for k in range(labels.max() + 1)
    ]
    _check_options(opts, layers, store_path)
    best = C.best_epoch(src[C.VAL_ACC].values)
    whole = layer_info.layer_binning(
        opts.layer_info, opts.bins, str(src.attrs.get("activation", "relu"))
    )
    return Setup(
        plan=_plan(src, store_path, layers, labels, len(classes), opts, whole),
        epochs=src.epoch.values,
        store_vars=_store_vars(src),
        best=best,
        cc_epochs=selected_epochs(src.sizes["epoch"], opts, best),
        cc_layers=selected_layers(layers, opts),
        coords=_coords(src, store_path, layers, classes, opts),
        attrs={
            **_attrs(src, store_path, opts, len(labels), best),
            **layer_info.attrs(
                opts.layer_info, whole, {la.name: la.channels for la in layers}, labels
            ),
        },
    )


def _open_complete_epochs(store_path: Path, allow_running: bool) -> xr.Dataset:
    """The store's metadata (lazy), cut to its leading complete epochs; none is an error."""
    src = open_activations(store_path, allow_running=allow_running, lazy=True)  # metadata only
    n_epochs = _complete_epochs(store_path, src)
    if n_epochs == 0:
        raise ValueError(f"{store_path}: no complete epoch to analyze")
    return src.isel(epoch=slice(0, n_epochs))


def _check_options(opts: Options, layers: list[Layer], store_path: Path) -> None:
    """Refuse (OptionError) options in their declared range that this store cannot use."""
    if mi_estimators.check(opts.estimators):
        raise OptionError(mi_estimators.check(opts.estimators))
    c_max = max(layer.channels for layer in layers)
    if opts.pca_components > c_max:
        raise OptionError(
            f"--pca-components {opts.pca_components} exceeds the widest layer's {c_max} channels "
            f"of {store_path}: use at most {c_max}"
        )


def _summary_codes(src: xr.Dataset, n_samples: int, n_bins: int) -> np.ndarray:
    """(sample,) int64 bins of the input summary's first principal component (zeros without one)."""
    if C.INPUT_SUMMARY not in src:
        return np.zeros(n_samples, dtype=np.int64)
    scores = est.top_principal_components(src[C.INPUT_SUMMARY].values, 1)[:, 0]
    return est.equal_width_codes(scores, n_bins).astype(np.int64)


def _plan(
    src: xr.Dataset,
    store_path: Path,
    layers: list[Layer],
    labels: np.ndarray,
    n_classes: int,
    opts: Options,
    whole: LayerBinning,
) -> Plan:
    """The picklable per-epoch plan: segments, labels, samples, permutations and options."""
    chunk = int(src[C.ACTIVATION].encoding.get("chunks", (1, 1, src.sizes["unit"]))[2])
    c_max = max(layer.channels for layer in layers)
    sizes = {
        "epoch": src.sizes["epoch"],
        "layer": len(layers),
        "layer_b": len(layers),
        "channel": c_max,
        "channel_b": c_max,
        "label": n_classes,
        "k": len(opts.topk),
        "bin_size": len(opts.layer_info.bin_sizes),
        "beta": len(opts.layer_info.betas),
    }
    return Plan(
        store=str(store_path),
        layers=tuple(layers),
        segments=tuple(segments_of(layers, chunk, max_segment_units(chunk, len(labels)))),
        labels=labels,
        n_classes=n_classes,
        summary_codes=_summary_codes(src, len(labels), opts.bins),
        pairs=tuple(
            pair_sample(layer.channels, i, opts.pair_samples, opts.seed)
            for i, layer in enumerate(layers)
        ),
        pca_rows=pca.subsample(len(labels), opts.seed),
        perms=_small(nulls.permuted_labels(labels, opts.permutations, opts.seed)),
        sizes=sizes,
        options=opts,
        layer_binning=whole,
    )


def _coords(
    src: xr.Dataset, store_path: Path, layers: list[Layer], classes: list[str], opts: Options
) -> dict:
    """The MI Dataset's non-epoch coords: layers, channels, classes, options and the run."""
    names = np.array([layer.name for layer in layers], dtype=object)
    c_max = max(layer.channels for layer in layers)
    return {
        "layer": names,
        "layer_b": names,
        "channel": np.arange(c_max),
        "channel_b": np.arange(c_max),
        "label": np.arange(len(classes)),
        "class_name": ("label", np.array(classes, dtype=object)),
        "k": (
            "k",
            np.array(opts.topk, dtype=np.float64),
            {"units": "percent of the layer's channels"},
        ),
        "n_channels": ("layer", np.array([layer.channels for layer in layers], dtype=np.int32)),
        "layer_kind": ("layer", np.array([layer.kind for layer in layers], dtype=object)),
        "depth": ("layer", np.arange(len(layers), dtype=np.int32)),
        **layer_info.coords(opts.layer_info),
        "bins": opts.bins,
        "run": np.array(opts.run or store_path.parent.name, dtype=object),
        **run_coords(src.attrs),
    }


def run_coords(attrs: dict) -> dict:
    """The run's identity coords from the store's attrs (:data:`latent_mi.contract.RUN_KEYS`):
    ``seed`` an int (-1 when absent), every other key a string ("unknown" when absent), and
    the training noise sd ``noise_beta`` (twelve_bit_mlp; 0.0 when absent)."""
    coords = {
        key: (
            int(attrs.get(key, -1))
            if key == "seed"
            else np.array(str(attrs.get(key, "unknown")), dtype=object)
        )
        for key in C.RUN_KEYS
    }
    coords["noise_beta"] = float(attrs.get("noise_beta", 0.0))
    return coords


def _store_vars(src: xr.Dataset) -> dict:
    """name -> (epoch,) values of the registry's store-stage variables present in the store."""
    from analyzer import variables as registry

    return {
        v.name: src[v.name].values.astype(v.dtype)
        for v in registry.of_stage("store")
        if v.name in src
    }


def _attrs(src: xr.Dataset, store_path: Path, opts: Options, n_samples: int, best: int) -> dict:
    return dict(
        estimator="plug-in histogram (maximum likelihood) entropy and MI, natural log",
        miller_madow=int(opts.miller_madow),
        binning=opts.binning.describe(opts.bins),
        null=(
            "label-permutation null: *_null (means) are exact means over all permutations of the "
            "validation labels (hypergeometric cells, analyzer/core/null_mean.py); p-values and "
            f"label_mi_null_lo/_hi from {opts.permutations} seeded permutations (seed {opts.seed}), "
            "shared by every channel, layer and epoch; *_corrected = plug-in MI minus the exact "
            "null mean (also with --miller-madow); all NaN with 0 permutations"
        ),
        permutations=opts.permutations,
        null_seed=opts.seed,
        units="nat",
        n_samples=n_samples,
        layer_level=(
            "per-channel MI averaged over the layer's channels (never one joint pattern of the whole "
            "GAP vector, which saturates at H(Y) / ln N); *_pca variants use the joint bin of the top "
            f"{opts.pca_components} principal components"
        ),
        pca_rule=pca.RULE,
        input_mi_note=(
            "with X uniform over the distinct validation images and a deterministic network, "
            "I(X;T) = H(Bin(T)): it measures how the representation clusters inputs (Saxe et al. 2019), "
            "not a true MI"
        ),
        pair_samples=opts.pair_samples,
        pca_components=opts.pca_components,
        plateau_fraction=opts.plateau_fraction,
        **{C.ATTR_BEST_EPOCH: int(src.epoch.values[best])},
        source_store=str(store_path),
        source_status=src.attrs.get(C.ATTR_STATUS, ""),
        source_config=src.attrs.get(C.ATTR_CONFIG, ""),
        analyzer_version=ANALYZER_VERSION,
        analysis_options=opts.key(),
        versions=json.dumps(_versions()),
    )


def _versions() -> dict:
    import dask
    import numba

    return {
        "numpy": np.__version__,
        "xarray": xr.__version__,
        "dask": dask.__version__,
        "zarr": zarr.__version__,
        "numba": numba.__version__,
    }
