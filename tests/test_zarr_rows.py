"""The store's row appender writes exactly what zarr's own ``resize`` + ``__setitem__`` write."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from trainer import store, zarr_rows

SITES = [
    {"name": "a", "kind": "conv-relu", "channels": 5},
    {"name": "b", "kind": "post-add", "channels": 8},
]


def _new_store(path: Path, act: np.ndarray, dtype: str, unit_chunk: int) -> None:
    store.create_store(
        path,
        activation=act,
        metrics={"val_acc": 0.5},
        labels=np.arange(len(act)) % 3,
        input_summary=np.zeros((len(act), 2), np.float32),
        input_features=["f0", "f1"],
        sites=SITES,
        attrs={"arch": "test"},
        dtype=dtype,
        unit_chunk=unit_chunk,
        clevel=3,
    )


def _zarr_append(path: Path, epoch: int, act: np.ndarray, metrics: dict, dtype: str) -> None:
    """The reference: zarr's array API, one array at a time, ``epoch`` last."""
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    n = group["epoch"].shape[0]
    rows = {"activation": act.astype(dtype)}
    rows.update({k: np.float64(metrics.get(k, np.nan)) for k in store.EPOCH_VARS})
    rows["epoch"] = np.int32(epoch)
    for name, row in rows.items():
        array = group[name].with_config({"write_empty_chunks": True})  # as create_store
        array.resize((n + 1, *array.shape[1:]))
        array[n] = row


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    ("dtype", "unit_chunk"), [("float32", 4), ("float16", 13), ("float32", 100)]
)
def test_append_writes_the_same_files_as_zarr(tmp_path, dtype, unit_chunk):
    """Ties, NaN, +-inf, an edge chunk padded with the fill value: byte-identical files."""
    rng = np.random.default_rng(0)
    epochs = [rng.integers(0, 4, (7, 13)).astype(np.float32) for _ in range(4)]
    epochs[2][1, 3], epochs[3][0, 0], epochs[3][6, 12] = np.nan, np.inf, -np.inf
    ours, ref = tmp_path / "ours.zarr", tmp_path / "ref.zarr"
    for path, append in ((ours, store.append_epoch), (ref, _zarr_append)):
        _new_store(path, epochs[0], dtype, unit_chunk)
        for e in range(1, 4):
            append(path, e, epochs[e], {"train_loss": e / 3, "val_acc": 0.25 * e}, dtype)
    assert _files(ours) == _files(ref)
    ds = xr.open_zarr(ours, consolidated=False)
    assert ds.epoch.values.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(ds.activation.values, np.stack(epochs).astype(dtype))
    np.testing.assert_array_equal(ds.train_loss.values[1:], np.arange(1, 4) / 3)


def test_interrupted_append_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    """A crash after some chunks landed: shapes unchanged, the epoch not counted, and the next
    append writes the same epoch over the stray chunks."""
    act = np.arange(7 * 13, dtype=np.float32).reshape(7, 13)
    path = tmp_path / "s.zarr"
    _new_store(path, act, "float32", 4)
    real = zarr_rows._write_atomic
    calls = []

    def crash_on_third_metadata(target, data):
        calls.append(target)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(target, data)

    monkeypatch.setattr(zarr_rows, "_write_atomic", crash_on_third_metadata)
    with pytest.raises(OSError, match="No space"):
        store.append_epoch(path, 1, act + 1, {}, "float32")
    monkeypatch.setattr(zarr_rows, "_write_atomic", real)
    assert store.complete_epochs(path) == 1
    assert not list(path.rglob("*.partial"))
    store.truncate_epochs(path, 1)  # what a resume does
    store.append_epoch(path, 1, act + 2, {}, "float32")
    ds = xr.open_zarr(path, consolidated=False)
    np.testing.assert_array_equal(ds.activation.values[1], act + 2)
    assert ds.epoch.values.tolist() == [0, 1]


def test_append_names_the_array_that_does_not_fit(tmp_path):
    act = np.zeros((7, 13), np.float32)
    path = tmp_path / "s.zarr"
    _new_store(path, act, "float32", 4)
    with pytest.raises(ValueError, match=r"activation.*cannot take a row of shape \(7, 12\)"):
        store.append_epoch(path, 1, act[:, :12], {}, "float32")


def test_metadata_write_is_atomic(tmp_path, monkeypatch):
    """zarr.json is replaced by a rename: a failed write leaves the old document whole."""
    target = tmp_path / "zarr.json"
    target.write_bytes(b'{"old": 1}')

    def failing_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        zarr_rows._write_atomic(target, b'{"new": 2}')
    assert target.read_bytes() == b'{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["zarr.json"]
