"""The activation store: one Zarr group per run, written epoch by epoch (names: :mod:`latent_mi.contract`).

Layout (``xr.open_zarr(path)`` opens it lazily, no extra arguments):

* ``activation(epoch, sample, unit)``: GAP value of each unit (= site x channel);
  ``site(unit)``, ``channel(unit)`` and ``site_kind(unit)`` coords; chunks
  (1, all samples, ``unit_chunk``), Blosc-zstd (level ``clevel``) with byte shuffle;
* ``label(sample)``, ``input_summary(sample, input_feature)``;
* per epoch: ``train_loss``, ``train_acc``, ``train_hsic``, ``val_loss``, ``val_acc``,
  ``lr``, ``epoch_seconds``;
* attrs: dataset, arch, activation, regularizer, seed, width, ``config`` (JSON), ``sites``
  (JSON list of {name, kind, channels} in depth order), ``classes`` (JSON), versions,
  ``status`` (``running`` while training, then ``complete`` or ``diverged``) and
  ``epochs_complete``.

Every file zarr writes is atomic; the number of complete epochs is kept by the trainer
(``progress.json``). On resume :func:`truncate_epochs` drops anything past it, so a
half-written epoch never survives.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from latent_mi import contract as C
from trainer import zarr_rows
from trainer.config import DEFAULTS

EPOCH_VARS = C.EPOCH_METRICS


def versions() -> dict:
    import numcodecs
    import torch
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "zarr": zarr.__version__,
        "numcodecs": numcodecs.__version__,
        "xarray": xr.__version__,
    }


def unit_coords(sites: list[dict]) -> dict[str, np.ndarray]:
    """Flattened (site, channel) coords for the ``unit`` dim, in depth order."""
    site = np.array([s["name"] for s in sites for _ in range(s["channels"])], dtype=object)
    kind = np.array([s["kind"] for s in sites for _ in range(s["channels"])], dtype=object)
    channel = np.concatenate([np.arange(s["channels"]) for s in sites]).astype(np.int32)
    return {"site": site, "channel": channel, "site_kind": kind}


def run_attrs(cfg: dict, config: str, classes: list[str], epoch_0: str, **extra) -> dict:
    """The store attrs that identify a run: dataset, arch, activation, regularizer, seed,
    width, ``config`` (the JSON text given), ``classes`` (JSON), ``epoch_0`` (what epoch 0
    is), then ``extra`` (task-specific, e.g. ``precision`` or ``noise_beta``), in that order.
    ``cfg["dataset"]`` is a dataset section (its ``name`` is stored) or a name."""
    dataset = cfg["dataset"]
    return {
        "dataset": dataset["name"] if isinstance(dataset, dict) else str(dataset),
        "arch": cfg["arch"],
        "activation": cfg["activation"],
        "regularizer": cfg["regularizer"],
        "seed": cfg["seed"],
        "width": cfg["width"],
        "config": config,
        C.ATTR_CLASSES: json.dumps(list(classes)),
        "epoch_0": epoch_0,
        **extra,
    }


def _epoch_dataset(epoch: int, activation: np.ndarray, metrics: dict, dtype: str) -> xr.Dataset:
    data = {C.ACTIVATION: (("epoch", "sample", "unit"), activation[None].astype(dtype))}
    for name in EPOCH_VARS:
        data[name] = (("epoch",), np.array([metrics.get(name, np.nan)], dtype=np.float64))
    return xr.Dataset(data, coords={"epoch": np.array([epoch], dtype=np.int32)})


# zarr's default compression, then a CRC-32C checksum of every stored chunk: a flipped bit
# anywhere in a chunk fails its decode (readers and the resume check name the array).
CHECKED_DEFAULT = (ZstdCodec(level=0, checksum=False), Crc32cCodec())


def create_store(
    path: Path,
    *,
    activation: np.ndarray,
    metrics: dict,
    labels: np.ndarray,
    input_summary: np.ndarray,
    input_features: list[str],
    sites: list[dict],
    attrs: dict,
    dtype: str,
    unit_chunk: int,
    clevel: int = DEFAULTS["dump"]["clevel"],
) -> None:
    """Write a new store holding epoch 0. ``activation`` is (sample, unit)."""
    n_samples, n_units = activation.shape
    ds = _epoch_dataset(0, activation, metrics, dtype)
    ds = ds.assign_coords(
        sample=np.arange(n_samples, dtype=np.int32),
        unit=np.arange(n_units, dtype=np.int32),
        input_feature=np.array(input_features, dtype=object),
        **{k: ("unit", v) for k, v in unit_coords(sites).items()},
    )
    ds[C.LABEL] = ("sample", labels.astype(np.int16))
    ds[C.INPUT_SUMMARY] = (("sample", "input_feature"), input_summary.astype(np.float32))
    ds[C.ACTIVATION].attrs.update(long_name="global-average-pooled activation", storage_dtype=dtype)
    ds.attrs.update(attrs)
    ds.attrs.update(
        sites=json.dumps(sites),
        versions=json.dumps(versions()),
        status="running",
        epochs_complete=1,
    )
    encoding = {name: {"compressors": CHECKED_DEFAULT} for name in ds.variables}
    encoding[C.ACTIVATION] = {
        "chunks": (1, n_samples, min(unit_chunk, n_units)),
        "compressors": (BloscCodec(cname="zstd", clevel=clevel, shuffle="shuffle"), Crc32cCodec()),
    }
    ds.to_zarr(
        path,
        mode="w",
        encoding=encoding,
        consolidated=False,
        zarr_format=3,
        write_empty_chunks=True,  # an absent chunk file then always means damage
    )


def append_epoch(path: Path, epoch: int, activation: np.ndarray, metrics: dict, dtype: str) -> None:
    """Append one epoch along ``epoch``: grow each epoch-indexed array by one row.

    Rows are written by :mod:`trainer.zarr_rows` (the array's own codecs, no async round
    trips; ~5x less CPU than zarr's array API for a small run). The ``epoch`` coordinate is
    written last, so an interrupted append never counts as complete.
    """
    path = Path(path)
    rows = {C.ACTIVATION: activation.astype(dtype, copy=False)}
    rows.update({name: np.array(metrics.get(name, np.nan)) for name in EPOCH_VARS})
    rows["epoch"] = np.array(epoch)
    docs = {name: zarr_rows.read_doc(path / name) for name in rows}
    epochs = docs["epoch"]["shape"][0]
    for name, doc in docs.items():  # checked before anything is written
        if doc["shape"][0] != epochs:
            raise ValueError(
                f"{path}: {name} has {doc['shape'][0]} epochs, the epoch coordinate {epochs}"
            )
    for name, row in rows.items():  # "epoch" last: marks the epoch complete
        zarr_rows.append_row(path / name, docs[name], row)


def complete_epochs(path: Path) -> int:
    """Number of leading epochs whose append finished (the ``epoch`` coord is written last)."""
    values = zarr.open_group(path, mode="r", use_consolidated=False)["epoch"][:]
    ok = values == np.arange(len(values))
    return int(len(values) if ok.all() else np.argmin(ok))


def truncate_epochs(path: Path, n_epochs: int) -> None:
    """Shrink every epoch-indexed array to its first ``n_epochs`` entries."""
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    for _, array in group.arrays():
        dims = array.metadata.dimension_names or ()
        if dims and dims[0] == "epoch" and array.shape[0] != n_epochs:
            array.resize((n_epochs, *array.shape[1:]))


def restore_metadata(path: Path) -> list[Path]:
    """Rewrite the missing or damaged ``zarr.json`` of an array from the group's consolidated
    metadata (a finished store carries it: shapes as finalized); returns the files restored.
    """
    path = Path(path)
    try:
        root = json.loads((path / "zarr.json").read_bytes())
        listed = root["consolidated_metadata"]["metadata"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no copy to restore from
    restored = []
    for name, doc in listed.items():
        meta = path / name / "zarr.json"
        if "/" in name or not (meta.parent.is_dir() or name == "epoch"):
            continue
        try:
            json.loads(meta.read_bytes())
            continue
        except (OSError, ValueError):
            pass
        meta.parent.mkdir(exist_ok=True)
        zarr_rows._write_atomic(meta, json.dumps(doc, indent=2).encode())
        restored.append(meta)
    return restored


def rebuild_epoch_coord(path: Path, dump_epochs: list[int] | None = None) -> int:
    """Rewrite a lost ``epoch`` coordinate (its ``zarr.json`` or chunks missing or damaged) of a
    trainer's store, whose epochs are ``dump_epochs`` (None: 0, 1, 2, ...) up to n entries: n
    is the number of rows every other epoch-indexed array holds. Returns the rows written
    (0: nothing was lost)."""
    path = Path(path)
    lengths, template = {}, None
    for name in [*EPOCH_VARS, C.ACTIVATION]:
        try:
            doc = zarr_rows.read_doc(path / name)
            lengths[name] = int(doc["shape"][0])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return 0  # other damage: the resume check recomputes the epochs
        if name == C.VAL_ACC:
            template = doc
    n = min(lengths.values())
    if dump_epochs is not None:
        n = min(n, len(dump_epochs))
    try:
        rows = min(n, int(zarr_rows.read_doc(path / "epoch")["shape"][0]))
        if all((path / "epoch" / "c" / str(i)).is_file() for i in range(rows)):
            zarr.open_array(path / "epoch", mode="r")[:rows]  # decodes (checksums)
            return 0  # intact (an epoch still to append is no loss)
    except Exception:  # unreadable metadata or chunk: rebuilt below
        pass
    doc = {**template, "data_type": "int32", "fill_value": 0, "attributes": {}, "shape": [0]}
    (path / "epoch").mkdir(exist_ok=True)
    for i in range(n):
        value = i if dump_epochs is None else dump_epochs[i]
        zarr_rows.append_row(path / "epoch", doc, np.array(value, dtype=np.int32))
        doc = {**doc, "shape": [i + 1]}
    return n


def reopen_store(path: Path) -> None:
    """Mark a store being resumed ``running`` again and drop its consolidated metadata, which
    would describe the array shapes as they were when it was last finalized."""
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    group.attrs.update({"status": "running"})
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    if doc.pop("consolidated_metadata", None) is not None:
        tmp = path / "zarr.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2))
        os.replace(tmp, meta)


def finalize_store(path: Path, status: str, n_epochs: int) -> None:
    """Mark the store finished and consolidate its metadata once."""
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    group.attrs.update({"status": status, "epochs_complete": n_epochs})
    with (
        warnings.catch_warnings()
    ):  # "consolidated metadata is not in the v3 spec": xarray reads it
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(path)
