"""Which files in a run directory are the trainer's own (only those are ever removed), and
how the trainer writes them (atomically; a full disk is one line naming the file).

The trainer writes, under ``<run_dir>``: ``progress.json``, ``done.json``, the checkpoints
``checkpoints/{init,best,last}.pt`` and ``checkpoints/epoch-NNN.pt`` (and their ``.tmp``
siblings while writing), and the activation store ``activations.zarr/`` whose files are
``zarr.json`` metadata, chunk files under an array's ``c/`` folder, and ``*.partial`` temp
names of a JSON rewrite. Anything else there is the user's (``checkpoints/pretrained.pth``,
``activations.zarr/notes.txt``): a fresh start leaves it in place, or, where the trainer
would have to remove a folder that holds it, stops with one line naming the file.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import torch

from latent_mi import contract as C
from latent_mi import outputs

OWN_CHECKPOINT = re.compile(r"^(init|best|last|epoch-\d+)\.pt(\.tmp)?$")
OWN_TOP_FILES = (C.PROGRESS, C.DONE)
OWN_TEMP = re.compile(r"\.[0-9a-f]{32}\.partial$")  # trainer.zarr_rows' temp names


class ForeignFileError(RuntimeError):
    """A file the trainer did not write sits where a fresh start would remove things."""


def own_checkpoints(run_dir: Path) -> list[Path]:
    """The trainer's checkpoint files (and their temp siblings) in ``run_dir/checkpoints``."""
    ckpt = Path(run_dir) / C.CHECKPOINTS
    if not ckpt.is_dir():
        return []
    return sorted(p for p in ckpt.iterdir() if p.is_file() and OWN_CHECKPOINT.match(p.name))


def is_store_file(rel: Path) -> bool:
    """Whether a path relative to the store root is a name zarr/the trainer writes there."""
    name = rel.name
    if name == "zarr.json" or name.endswith(".partial"):
        return True
    return "c" in rel.parts[:-1]  # a chunk file: <array>/c/<i>/<j>...


def foreign_in_store(store: Path) -> list[Path]:
    """Files inside the store folder that are not the trainer's (sorted)."""
    if not store.is_dir():
        return [store] if store.exists() else []
    return sorted(
        p for p in store.rglob("*") if not p.is_dir() and not is_store_file(p.relative_to(store))
    )


def clear_run(run_dir: Path) -> None:
    """Remove the trainer's own files of a run before a fresh start, nothing else.

    Raises ForeignFileError (one line naming the file, nothing removed) when the store
    folder holds a file the trainer did not write.
    """
    run_dir = Path(run_dir)
    store = run_dir / C.STORE
    foreign = foreign_in_store(store)
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise ForeignFileError(
            f"{foreign[0]}{more} was not written by the trainer and sits in the store it "
            f"would start afresh: move it out of {store}, or use another --out (nothing was "
            "deleted)"
        )
    if store.is_dir():
        shutil.rmtree(store)
    for path in own_checkpoints(run_dir):
        path.unlink()
    for name in OWN_TOP_FILES:
        (run_dir / name).unlink(missing_ok=True)


def remove_stale_temps(run_dir: Path) -> list[Path]:
    """Remove temp files a killed write left (the trainer's own names only); the removed."""
    run_dir = Path(run_dir)
    store = run_dir / C.STORE
    stale = (
        [p for p in store.rglob("*.partial") if OWN_TEMP.search(p.name)] if store.is_dir() else []
    )
    stale += [p for p in own_checkpoints(run_dir) if p.name.endswith(".tmp")]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` via a temp sibling and rename; a failed write is one OutputError line
    (e.g. ``no space left on DEVICE writing PATH``) and leaves the old file in place."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise outputs.OutputError(outputs.write_error(e, path)) from None


def atomic_write_json(path: Path, obj: dict) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def atomic_torch_save(obj, path: Path) -> None:
    # serialized in memory first: torch's own file writer reports a full disk as
    # "unexpected pos" instead of the OSError
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())
