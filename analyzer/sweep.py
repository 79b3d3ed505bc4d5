"""Robustness sweep of one run (paper appendix F): the layer-level MI under other estimator settings.

For every (bins, sample fraction, binning rule) the run's stored GAP values are re-binned
(``binning.codes_for``) on a seeded class-stratified subset of the validation samples
(``binning.subsample``), and per (epoch, layer) the channel-label MI, its label-permutation
null (``nulls.channel_null``), the Gini of the channel MI and the channel entropy H(Bin T_lc)
are reduced to the layer level exactly as in the MI Dataset. No retraining; the trainer's store
is only read, one epoch at a time (``analyzer.chunk_reader``: any store layout, memory one
epoch). The ``fixed`` rule bins each channel over its min and max across all epochs (a first
pass over the epochs).

    python -m analyzer.sweep RUN_DIR/activations.zarr --out results/robustness/runs/RUN.zarr
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from analyzer.activations import StoreError, layers_of, open_activations
from analyzer.chunk_reader import UnitReader
from analyzer.core import metrics
from analyzer.core.binning import RULES, codes_for, subsample
from analyzer.core.nulls import channel_null
from latent_mi import contract as C
from latent_mi.outputs import OutputError, safe_output
from latent_mi.settings import Parser, add_arguments, parse, plain_text


@dataclass
class SweepOptions:
    bins: tuple[int, ...] = (10, 20, 30, 50)
    fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    rules: tuple[str, ...] = RULES
    seed: int = 0


def channel_entropy(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """H(Bin T_c) in nats of each row of codes (C, N), from one bincount."""
    c, n = codes.shape
    flat = codes.astype(np.int64) + (np.arange(c) * n_bins)[:, None]
    counts = np.bincount(flat.ravel(), minlength=c * n_bins).reshape(c, n_bins) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(counts > 0, counts * np.log(counts), 0.0).sum(axis=1)


def layer_values(values, labels, perms, n_bins, n_classes, rule, bounds) -> dict:
    """Layer-level label MI, its null, Gini and input MI of one (epoch, layer) (nan if not finite)."""
    codes, finite = codes_for(values, n_bins, rule, bounds)
    if not finite.all():
        return dict(label_mi=np.nan, label_mi_null=np.nan, gini=np.nan, input_mi=np.nan)
    res = channel_null(codes, labels, perms, n_bins, n_classes)
    return dict(
        label_mi=float(res.observed.mean()),
        label_mi_null=float(res.null_mean.mean()),
        gini=metrics.gini(res.observed),
        input_mi=float(channel_entropy(codes, n_bins).mean()),
    )


VARS = ("label_mi", "label_mi_null", "gini", "input_mi")


def _unit_ranges(reader: UnitReader, n_epochs: int, n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of each unit over every epoch and sample, float32, NaN where never finite
    (the ``fixed`` rule's bounds), one epoch in memory at a time."""
    lo = np.full(n_units, np.inf, dtype=np.float32)
    hi = np.full(n_units, -np.inf, dtype=np.float32)
    seen = np.zeros(n_units, dtype=bool)
    for e in range(n_epochs):
        values = reader.read(e, 0, n_units)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN unit this epoch
            lo = np.fmin(lo, np.nanmin(values, axis=0).astype(np.float32))
            hi = np.fmax(hi, np.nanmax(values, axis=0).astype(np.float32))
        seen |= ~np.isnan(values).all(axis=0)
    lo[~seen], hi[~seen] = np.nan, np.nan
    return lo, hi


def sweep(store_path: str | Path, opts: SweepOptions) -> xr.Dataset:
    """Dataset (bins, fraction, rule, epoch, layer) of the layer-level quantities of one run."""
    src = open_activations(store_path)
    layers = layers_of(src)
    labels_all = src.label.values.astype(np.int64)
    n_classes = int(labels_all.max()) + 1
    reader = UnitReader(str(store_path))  # one epoch at a time, whatever the store's layout
    n_epochs, n_units = src.sizes["epoch"], src.sizes["unit"]
    if "fixed" in opts.rules:  # an extra pass over the epochs
        lo, hi = _unit_ranges(reader, n_epochs, n_units)
    else:
        lo = hi = np.full(n_units, np.nan, dtype=np.float32)  # unused by the other rules
    shape = (len(opts.bins), len(opts.fractions), len(opts.rules), n_epochs, len(layers))
    out = {name: np.full(shape, np.nan) for name in VARS}
    keeps = [subsample(labels_all, fraction, opts.seed) for fraction in opts.fractions]
    for e in range(n_epochs):
        values_e = reader.read(e, 0, n_units)  # (sample, unit), this thread's reused buffer
        for fi, keep in enumerate(keeps):
            labels = labels_all[keep]
            perms = np.empty((0, len(labels)), dtype=np.int64)  # the null mean is exact
            epoch_values = values_e[keep].astype(np.float32, copy=False)
            for li, layer in enumerate(layers):
                values = np.ascontiguousarray(epoch_values[:, layer.units])
                bounds = (lo[layer.units], hi[layer.units])
                for bi, b in enumerate(opts.bins):
                    for ri, rule in enumerate(opts.rules):
                        r = layer_values(values, labels, perms, b, n_classes, rule, bounds)
                        for name in VARS:
                            out[name][bi, fi, ri, e, li] = r[name]
    dims = ("bins", "fraction", "rule", "epoch", "layer")
    ds = xr.Dataset(
        {name: (dims, arr.astype(np.float32)) for name, arr in out.items()},
        coords={
            "bins": list(opts.bins),
            "fraction": list(opts.fractions),
            "rule": np.array(opts.rules, dtype=object),
            "epoch": src.epoch.values,
            "layer": np.array([layer.name for layer in layers], dtype=object),
            "layer_kind": ("layer", np.array([layer.kind for layer in layers], dtype=object)),
        },
    )
    ds["val_acc"] = (("epoch",), src.val_acc.values.astype(np.float64))
    for key in ("arch", "activation", "regularizer", "dataset"):
        ds.coords[key] = np.array(str(src.attrs.get(key, "unknown")), dtype=object)
    ds.coords["seed"] = int(src.attrs.get("seed", -1))
    run = C.run_name(Path(store_path).resolve().parent.name)  # the workflow's <run>-<hash>: <run>
    ds.coords["run"] = np.array(run, dtype=object)
    units = {"label_mi": "nat", "label_mi_null": "nat", "gini": "1", "input_mi": "nat"}
    for name in VARS:
        ds[name].attrs["units"] = units[name]
    ds.attrs.update(
        description="robustness sweep (paper appendix F): layer-level quantities as in the MI "
        "Dataset (means over channels) under other bins, sample fractions and binning rules",
        binning_rules=json.dumps(
            {
                "range": "B equal-width bins over each channel's observed range at each epoch",
                "quantile": "B equal-frequency bins (edges at order statistics; ties share a bin)",
                "fixed": "B equal-width bins over each channel's min..max across all epochs",
            }
        ),
        sample_fraction="seeded class-stratified subset of the validation samples",
        null="exact mean over all label permutations (hypergeometric cells), as the MI Dataset",
        seed=opts.seed,
        source_store=str(Path(store_path).resolve()),
    )
    return ds


def write(ds: xr.Dataset, out: str | Path) -> Path:
    """Write via a temporary sibling; replaces ``out`` only if it is an earlier sweep."""
    with safe_output(out, "robustness-sweep") as tmp:
        ds.to_zarr(tmp, mode="w", consolidated=True)
    return Path(out)


def build_parser() -> Parser:
    """The sweep's options: the ``robustness`` settings (latent_mi/settings)."""
    p = Parser(prog="python -m analyzer.sweep", tool="sweep", description=plain_text(__doc__))
    p.add_argument("store", help="activation store (RUN_DIR/activations.zarr)")
    p.add_argument("--out", required=True, help="output Zarr")
    add_arguments(p, "robustness")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(build_parser(), argv, "robustness")
    except SystemExit as e:  # --help (0) or a bad option (2), already reported in one line
        return int(e.code or 0)
    opts = SweepOptions(tuple(args.bins), tuple(args.fractions), tuple(args.rules), seed=args.seed)
    from latent_mi import cpu_slots

    try:  # numba threads: the CPU slots it leases (latent_mi/cpu_slots.py)
        with cpu_slots.lease(None, numba_too=True):
            out = write(sweep(args.store, opts), args.out)
    except (StoreError, ValueError, OutputError) as e:
        print(f"sweep: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
