"""Group runs by (arch, activation, regularizer): seeds are the only spread within a group."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from latent_mi import contract as C

GROUP = ("arch", "activation", "regularizer")


def _per_run(ds: xr.Dataset, key: str) -> np.ndarray:
    """A scalar coord shared by every run, or a per-run one, as one value per run."""
    return np.broadcast_to(np.asarray(ds[key].values), (ds.sizes["run"],))


def run_keys(ds: xr.Dataset) -> list[tuple[str, str, str]]:
    """(arch, activation, regularizer) of each run of a combined Dataset."""
    per_run = {k: _per_run(ds, k) for k in GROUP}
    return [tuple(str(per_run[k][i]) for k in GROUP) for i in range(ds.sizes["run"])]


def groups(ds: xr.Dataset, regularizer: str | None = "none") -> dict[tuple, xr.Dataset]:
    """Runs grouped by (arch, activation, regularizer), each group's layers in depth order.

    regularizer: keep only groups with this regularizer (None: every group).
    """
    out = {}
    keys = run_keys(ds)
    for key in dict.fromkeys(keys):
        if regularizer is not None and key[2] != regularizer:
            continue
        sub = ds.isel(run=[i for i, k in enumerate(keys) if k == key])
        depth = sub.depth.isel(run=0) if "run" in sub.depth.dims else sub.depth
        keep = [
            (int(d), str(n)) for n, d in zip(sub.layer.values, depth.values, strict=True) if d >= 0
        ]
        layers = [n for _, n in sorted(keep)]
        out[key] = sub.sel(layer=layers, layer_b=layers)
    return out


def seeds(g: xr.Dataset) -> list[int]:
    """The seeds of a group's runs, in run order."""
    return [int(s) for s in _per_run(g, "seed")]


def label(key: tuple, g: xr.Dataset | None = None) -> str:
    """'arch activation [+reg]', with the group's seeds (every run listed) when given."""
    arch, act, reg = key
    text = f"{arch} {act}" + ("" if reg == "none" else f" +{reg}")
    if g is not None:
        text += f" (n={g.sizes['run']}: seeds {', '.join(map(str, seeds(g)))})"
    return text


def at_best(da: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """Select each run's best-validation-accuracy epoch (:func:`latent_mi.contract.best_epoch`)."""
    best = xr.apply_ufunc(
        C.best_epoch, ds.val_acc.compute(), input_core_dims=[["epoch"]], vectorize=True
    )
    return da.isel(epoch=best)


def group_datasets(datasets: Iterable[xr.Dataset]) -> dict[tuple, list[xr.Dataset]]:
    """Per-run result Datasets (e.g. interventions) grouped by (arch, activation,
    regularizer), groups sorted; a Dataset lacking one of the keys raises ValueError."""
    out: dict[tuple, list[xr.Dataset]] = {}
    for d in datasets:
        missing = [k for k in GROUP if k not in d.coords]
        if missing:
            raise ValueError(f"result of run {_name(d)} has no {', '.join(missing)} coord")
        out.setdefault(tuple(str(d[k].values) for k in GROUP), []).append(d)
    return dict(sorted(out.items()))


def group_label(key: tuple, members: list[xr.Dataset]) -> str:
    """Label of a list-of-Datasets group, every run's seed listed."""
    arch, act, reg = key
    seeds_ = ", ".join(str(int(d.seed.values)) if "seed" in d.coords else "?" for d in members)
    return f"{arch} {act}" + ("" if reg == "none" else f" +{reg}") + f" (seeds {seeds_})"


def _name(d: xr.Dataset) -> str:
    return str(d.run.values) if "run" in d.coords else d.encoding.get("source", "?")
