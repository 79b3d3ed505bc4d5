"""Integrity checks of an activation store, shared by the trainer (resume) and the analyzer.

Torch-free. The trainer writes every chunk, NaN-only ones included (``write_empty_chunks``),
so a chunk file that is absent means damage, never "all values were NaN". Two checks:

* :func:`check_epoch_coord` -- the ``epoch`` coordinate is strictly increasing and unique
  (two trainers on one run directory would interleave their appends);
* :func:`find_damage` -- the first epoch-indexed chunk of a variable that is missing
  (cheap: file existence) or, with ``decode=True``, cannot be read back (a full read);
* :func:`metadata_problem` -- a ``zarr.json`` that is missing or not readable, named;
* :func:`open_complete` -- open a store showing whole epochs only, even mid-append.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from latent_mi import contract as C


@dataclass(frozen=True)
class Damage:
    """One damaged chunk: ``variable`` at ``epoch`` (the coordinate value, not the index)."""

    variable: str
    index: int  # position along the epoch dim
    epoch: int
    problem: str  # "missing" or "corrupt: <error>"
    path: Path

    def short(self, store: str | Path) -> str:
        return (
            f"activation store {store}: the chunk of {self.variable!r} at epoch {self.epoch} is "
            f"{self.problem} ({self.path})"
        )

    def message(self, store: str | Path) -> str:
        return (
            f"{self.short(store)}; the store is damaged: rerun the trainer on its run directory "
            "to re-dump it"
        )


def check_epoch_coord(epochs: np.ndarray) -> str | None:
    """None if ``epochs`` is strictly increasing (hence unique), else a description."""
    epochs = np.asarray(epochs)
    if epochs.size < 2 or bool(np.all(np.diff(epochs) > 0)):
        return None
    values, counts = np.unique(epochs, return_counts=True)
    dup = values[counts > 1]
    what = f"epochs {dup[:5].tolist()} appear more than once" if dup.size else "out of order"
    return f"its epoch coordinate is not strictly increasing ({what})"


def epoch_arrays(store: str | Path) -> list[str]:
    """Names of the store's arrays indexed by ``epoch`` first (``activation`` first, ``epoch``
    last), from their ``zarr.json`` files (unreadable ones are left to :func:`metadata_problem`)."""
    store = Path(store)
    names = []
    for meta in sorted(store.glob("*/zarr.json")):
        try:
            doc = json.loads(meta.read_bytes())
        except (OSError, ValueError):
            continue
        dims = doc.get("dimension_names") or [] if isinstance(doc, dict) else []
        if dims and dims[0] == "epoch":
            names.append(meta.parent.name)
    return sorted(names, key=lambda n: (n != C.ACTIVATION, n == "epoch", n))


def find_damage(
    store: str | Path,
    variable: str | None = C.ACTIVATION,
    indices: range | None = None,
    decode: bool = False,
) -> Damage | None:
    """The first missing (or, with ``decode``, unreadable) chunk in ``indices``.

    ``variable``: one array, or None for every epoch-indexed array (the trainer's resume: it
    writes all their chunks, where other writers may skip a chunk holding the fill value). Only local directory stores are checked for missing chunk files (others
    return None).
    """
    store = Path(store)
    try:
        epochs = zarr.open_array(store / "epoch", mode="r")[:]
    except Exception:
        return None  # not a zarr v3 store on disk: the open checks report it
    for name in [variable] if variable else epoch_arrays(store):
        damage = _array_damage(store, name, epochs, indices, decode)
        if damage is not None:
            return damage
    return None


def _array_damage(store: Path, variable: str, epochs, indices, decode: bool) -> Damage | None:
    try:
        array = zarr.open_array(store / variable, mode="r")
    except Exception:
        return None  # its metadata: see metadata_problem
    indices = range(array.shape[0]) if indices is None else indices
    stored = array.shards or array.chunks  # what is stored per key (a shard, if sharded)
    per_chunk = int(stored[0])  # epochs per stored chunk
    for i in indices:
        epoch = int(epochs[i]) if i < len(epochs) else i
        for coords in np.ndindex(
            *[-(-n // c) for n, c in zip(array.shape[1:], stored[1:], strict=True)]
        ):
            key = array.metadata.encode_chunk_key((i // per_chunk, *coords))
            path = store / variable / key
            if not path.is_file():
                return Damage(variable, i, epoch, "missing", path)
        if decode:
            try:
                array[i]
            except Exception as e:
                msg = f"corrupt: {type(e).__name__}: {e}".replace("\n", " ")
                return Damage(variable, i, epoch, msg, store / variable)
    return None


def _json_problem(path: Path) -> str | None:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return f"its metadata file {path} is missing"
    except (OSError, ValueError) as e:
        return f"its metadata file {path} is damaged ({type(e).__name__}: {e})"
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3:
        return f"its metadata file {path} is damaged (not a Zarr v3 document)"
    return None


def metadata_problem(store: str | Path) -> str | None:
    """The first ``zarr.json`` of a local store (the group's, the ``epoch`` coordinate's of an
    activation store, or any array's named by the group or found on disk) that is missing or
    not readable, as
    "its metadata file PATH is missing|damaged (...)"; None if all read."""
    store = Path(store)
    root = store / "zarr.json"
    problem = _json_problem(root)
    if problem:
        return problem
    listed = json.loads(root.read_bytes()).get("consolidated_metadata") or {}
    names = {n for n in (listed.get("metadata") or {}) if "/" not in n}
    names |= {p.name for p in store.iterdir() if p.is_dir() and (p / "zarr.json").exists()}
    if C.ACTIVATION in names:  # an activation store: its epoch coordinate is required
        names.add("epoch")
    for name in sorted(names):
        problem = _json_problem(store / name / "zarr.json")
        if problem:
            return problem
    return None


def epoch_lengths(store: str | Path) -> dict[str, int]:
    """Rows of each epoch-indexed array, the ``epoch`` coordinate read first.

    An append writes each array's rows, then its ``zarr.json`` (atomically), and the
    ``epoch`` coordinate last; arrays only grow while a trainer runs. The minimum of these
    lengths is therefore a number of whole epochs, whenever a reader looks.
    """
    store = Path(store)
    names = ["epoch", *[n for n in epoch_arrays(store) if n != "epoch"]]
    return {n: int(json.loads((store / n / "zarr.json").read_bytes())["shape"][0]) for n in names}


def open_complete(store: str | Path, **kwargs):
    """``xr.open_zarr(store, **kwargs)`` showing only whole epochs (a running store).

    A reader may land inside an append (the activation row written, the metric rows not
    yet): arrays longer than the complete epochs are opened apart and cut to them.
    """
    import xarray as xr

    for attempt in range(5):
        try:
            lengths = epoch_lengths(store)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return xr.open_zarr(store, **kwargs)  # not a local Zarr v3 store: zarr says why
        n = min(lengths.values())
        longer = [name for name, rows in lengths.items() if rows > n]
        try:
            ds = xr.open_zarr(store, drop_variables=longer, **kwargs)
            for name in longer:
                others = [v for v in lengths if v != name]
                part = xr.open_zarr(store, drop_variables=others, **kwargs)[name]
                ds[name] = part.isel(epoch=slice(0, n)).variable
            return ds.isel(epoch=slice(0, n))
        except ValueError as e:  # an append landed between our reads: look again
            if "conflicting sizes" not in str(e) or attempt == 4:
                raise
    raise AssertionError("unreachable")
