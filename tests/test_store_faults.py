"""Damaged store metadata, a lost epoch coordinate and a store caught mid-append (issue 27.6,
27.8): one line naming the file for readers, repaired by a trainer rerun (compared bitwise
with an uninterrupted run), and readers of a running store see whole epochs only."""

import json
import shutil
import threading
import time

import numpy as np
import pytest
import torch
import xarray as xr

from analyzer.activations import StoreError, open_activations
from latent_mi import contract as C
from tests.helpers import tiny_config
from tests.test_resume_faults import killed_run
from tests.test_trainer_run import assert_stores_equal
from trainer import store as trainer_store
from trainer import zarr_rows
from trainer.train import run

EPOCHS = 2
CFG = (f"train.epochs={EPOCHS}", "dataset.noise=0.3")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ref_run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("ref") / "run"
        run(tiny_config(*CFG), run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir


def _copy(ref_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(ref_run, run_dir)
    return run_dir, run_dir / C.STORE


def _one_line(err) -> str:
    line = str(err.value)
    assert "\n" not in line
    return line


def test_damaged_array_metadata_is_named_and_a_rerun_restores_it(ref_run, tmp_path, caplog):
    run_dir, store = _copy(ref_run, tmp_path)
    meta = store / C.ACTIVATION / "zarr.json"
    meta.write_text(meta.read_text()[:200])
    with pytest.raises(StoreError) as err:
        open_activations(store)
    line = _one_line(err)
    assert f"its metadata file {meta} is damaged" in line and "rerun the trainer" in line
    done = run(tiny_config(*CFG), run_dir)  # no traceback: restored, nothing recomputed
    assert done["status"] == "complete"
    assert any(
        "restored from the store's consolidated metadata" in r.message for r in caplog.records
    )
    assert not any("epoch 1 train_loss" in r.message for r in caplog.records)
    assert_stores_equal(ref_run / C.STORE, store)


def test_damaged_metadata_of_a_killed_store_is_recomputed(ref_run, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    killed_run(run_dir, monkeypatch, at_epoch=1)  # running: no consolidated copy to restore
    meta = run_dir / C.STORE / C.ACTIVATION / "zarr.json"
    meta.write_text("{")
    with pytest.raises(StoreError, match="is damaged"):
        open_activations(run_dir / C.STORE, allow_running=True)
    run(tiny_config(*CFG), run_dir)
    assert_stores_equal(ref_run / C.STORE, run_dir / C.STORE)


@pytest.mark.parametrize("finished", [True, False])
def test_removed_epoch_array_is_rebuilt_not_reported_as_two_writers(
    ref_run, tmp_path, monkeypatch, caplog, finished
):
    if finished:
        run_dir, store = _copy(ref_run, tmp_path)
    else:
        run_dir, store = tmp_path / "run", tmp_path / "run" / C.STORE
        killed_run(run_dir, monkeypatch, at_epoch=EPOCHS)
    shutil.rmtree(store / "epoch")
    with pytest.raises(StoreError) as err:
        open_activations(store, allow_running=True)
    line = _one_line(err)
    assert "more than once" not in line and "delete" not in line, line
    assert "epoch" in line and "rerun the trainer" in line
    run(tiny_config(*CFG), run_dir)
    assert any("epoch was lost: rebuilt it" in r.message for r in caplog.records)
    if finished:  # nothing was recomputed
        assert not any("train_loss" in r.message for r in caplog.records)
    assert_stores_equal(ref_run / C.STORE, store)


def _half_append(store, row_of):
    """Write the activation row of the next epoch only (a kill between the arrays' rows)."""
    doc = zarr_rows.read_doc(store / C.ACTIVATION)
    zarr_rows.append_row(store / C.ACTIVATION, doc, row_of(doc))


def test_store_killed_mid_append_is_incomplete_and_shows_whole_epochs(
    ref_run, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    killed_run(run_dir, monkeypatch, at_epoch=1)
    store = run_dir / C.STORE
    n = int(zarr_rows.read_doc(store / "epoch")["shape"][0])
    _half_append(store, lambda doc: np.ones(doc["shape"][1:], dtype=np.float32))
    assert zarr_rows.read_doc(store / C.ACTIVATION)["shape"][0] == n + 1
    with pytest.raises(ValueError, match="conflicting sizes"):
        xr.open_zarr(store)  # the fault is real
    with pytest.raises(StoreError) as err:
        open_activations(store)
    assert "is incomplete" in _one_line(err) and "rerun the trainer" in str(err.value)
    for lazy in (False, True):
        ds = open_activations(store, allow_running=True, lazy=lazy)
        assert list(ds.epoch.values) == list(range(n))
        ref = xr.open_zarr(ref_run / C.STORE).isel(epoch=slice(0, n))
        np.testing.assert_array_equal(ds.activation.values, ref.activation.values)
        np.testing.assert_array_equal(ds.val_acc.values, ref.val_acc.values)
    run(tiny_config(*CFG), run_dir)  # and a rerun completes it identically
    assert_stores_equal(ref_run / C.STORE, store)


def test_readers_of_a_running_store_never_land_inside_an_append(ref_run, tmp_path, monkeypatch):
    """Appends slowed between arrays (a slow file system); a reader polls all along."""
    run_dir, store = _copy(ref_run, tmp_path)
    trainer_store.reopen_store(store)
    trainer_store.truncate_epochs(store, 1)
    ref = xr.open_zarr(ref_run / C.STORE).load()
    real_append = zarr_rows.append_row

    def slow_append(array_dir, doc, row):
        real_append(array_dir, doc, row)
        time.sleep(0.02)

    monkeypatch.setattr(zarr_rows, "append_row", slow_append)
    seen, errors, stop = set(), [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                ds = open_activations(store, allow_running=True, lazy=True)
                n = ds.sizes["epoch"]
                assert list(ds.epoch.values) == list(range(n))
                assert np.isfinite(ds.val_acc.values).all()
                seen.add(n)
            except Exception as e:  # noqa: BLE001 - any failure of a reader is the finding
                errors.append(f"{type(e).__name__}: {e}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for epoch in range(1, EPOCHS + 1):
            row = ref.isel(epoch=epoch)
            metrics = {name: float(row[name]) for name in trainer_store.EPOCH_VARS}
            trainer_store.append_epoch(
                store, epoch, row.activation.values, metrics, str(ref.activation.dtype)
            )
            deadline = time.monotonic() + 30
            while epoch + 1 not in seen and not errors and time.monotonic() < deadline:
                time.sleep(0.05)  # the reader sees this epoch before the next append
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[:3]
    assert set(range(2, EPOCHS + 2)) <= seen, seen  # each appended epoch seen whole


def test_epoch_arrays_are_listed_activation_first(ref_run):
    from latent_mi.store_check import epoch_arrays

    names = epoch_arrays(ref_run / C.STORE)
    assert names[0] == C.ACTIVATION and names[-1] == "epoch"
    assert set(names) == {C.ACTIVATION, "epoch", *trainer_store.EPOCH_VARS}
    assert json.loads((ref_run / C.STORE / "zarr.json").read_text())["attributes"]


def test_corrupt_epoch_chunk_is_rebuilt_without_recomputing(ref_run, tmp_path, caplog):
    run_dir, store = _copy(ref_run, tmp_path)
    (store / "epoch" / "c" / "1").write_bytes(b'{"garbage')
    run(tiny_config(*CFG), run_dir)
    assert any("epoch was lost: rebuilt it" in r.message for r in caplog.records)
    assert not any("train_loss" in r.message for r in caplog.records)
    assert_stores_equal(ref_run / C.STORE, store)
