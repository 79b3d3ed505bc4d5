"""Integrity checks of an activation store, shared by the trainer (resume) and the analyzer.

Torch-free. The trainer writes every chunk, NaN-only ones included (``write_empty_chunks``),
so a chunk file that is absent means damage, never "all values were NaN". Two checks:

* :func:`check_epoch_coord` -- the ``epoch`` coordinate is strictly increasing and unique
  (two trainers on one run directory would interleave their appends);
* :func:`find_damage` -- the first epoch-indexed chunk of a variable that is missing
  (cheap: file existence) or, with ``decode=True``, cannot be read back (a full read).
"""

from __future__ import annotations

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


def find_damage(
    store: str | Path,
    variable: str = C.ACTIVATION,
    indices: range | None = None,
    decode: bool = False,
) -> Damage | None:
    """The first missing (or, with ``decode``, unreadable) chunk of ``variable`` in ``indices``.

    Only local directory stores are checked for missing chunk files (others return None).
    """
    store = Path(store)
    try:
        array = zarr.open_array(store / variable, mode="r")
        epochs = zarr.open_array(store / "epoch", mode="r")[:]
    except Exception:
        return None  # not a zarr v3 store on disk: the open checks report it
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
