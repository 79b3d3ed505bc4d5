"""Open and check a trainer activation store; describe its layers (sites).

The analyzer's one dependency on the trainer is the store contract (the names of
:mod:`latent_mi.contract`),
checked here so that a wrong input is a one-line :class:`StoreError`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from latent_mi import contract as C
from latent_mi.store_check import check_epoch_coord, find_damage, metadata_problem, open_complete

REQUIRED_VARS = (C.ACTIVATION, C.LABEL, C.VAL_ACC)
FINISHED = ("complete", "diverged")


class StoreError(ValueError):
    """The activation store is missing, corrupt, incomplete or not a trainer store."""


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    start: int  # first unit of the layer in the store's ``unit`` dim
    channels: int

    @property
    def units(self) -> slice:
        return slice(self.start, self.start + self.channels)


def open_activations(
    path: str | Path, allow_running: bool = False, lazy: bool = False
) -> xr.Dataset:
    """``xr.open_zarr`` with the contract checked; raises StoreError with one line.

    ``lazy``: lazily indexed numpy-backed variables instead of dask arrays (no dask.array
    import; a variable read whole with ``.values`` is cached, so read activations by selection).
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"activation store {path} does not exist")
    problem = metadata_problem(path) if (path / "zarr.json").is_file() else None
    if problem:
        raise StoreError(
            f"activation store {path}: {problem}; rerun the trainer on its run directory to "
            "repair it"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", RuntimeWarning
            )  # no consolidated metadata while running
            # whole epochs only, also while an append is landing (--allow-running)
            ds = open_complete(path, chunks=None) if lazy else open_complete(path)
    except Exception as e:  # zarr raises many types for a broken store
        raise StoreError(
            f"activation store {path} cannot be opened as Zarr: {type(e).__name__}: {e}"
        ) from None
    missing = [v for v in REQUIRED_VARS if v not in ds.variables]
    if missing or "sites" not in ds.attrs:
        what = ", ".join(missing) if missing else "attr 'sites'"
        raise StoreError(f"{path} is not a trainer activation store (missing {what})")
    status = ds.attrs.get("status")
    if status not in FINISHED and not allow_running:
        raise StoreError(
            f"activation store {path} is incomplete (status {status!r}): training is running or was "
            "killed; rerun the trainer on its run directory to resume"
        )
    if ds.activation.dims != ("epoch", "sample", "unit"):
        raise StoreError(
            f"{path}: activation has dims {ds.activation.dims}, expected (epoch, sample, unit)"
        )
    # a missing chunk would read as an all-NaN epoch (or a repeated epoch 0)
    damage = find_damage(path, indices=range(ds.sizes["epoch"]))
    if damage is not None:
        raise StoreError(damage.message(path))
    problem = check_epoch_coord(ds.epoch.values)
    if problem:
        raise StoreError(
            f"activation store {path} is not usable: {problem}; rerun the trainer on its run "
            "directory to repair it (it keeps the epochs stored in order and recomputes the rest)"
        )
    return ds


def corrupt_chunk_message(path: str | Path) -> str | None:
    """After a failed read: one line naming the epoch and variable of an undecodable chunk."""
    damage = find_damage(path, decode=True)
    return None if damage is None else damage.message(path)


def layers_of(ds: xr.Dataset) -> list[Layer]:
    """The store's sites in depth order with their unit ranges."""
    out, start = [], 0
    for site in json.loads(ds.attrs["sites"]):
        out.append(Layer(site["name"], site["kind"], start, int(site["channels"])))
        start += int(site["channels"])
    if start != ds.sizes["unit"]:
        raise StoreError(f"sites attr describes {start} units but the store has {ds.sizes['unit']}")
    return out
