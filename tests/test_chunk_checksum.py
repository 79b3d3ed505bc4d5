"""Every stored chunk carries a CRC-32C that readers and the resume verify (issue 27 item 2)."""

import logging
import shutil

import pytest
import torch
import xarray as xr

from analyzer.activations import StoreError, corrupt_chunk_message
from analyzer.chunk_reader import UnitReader
from tests.helpers import tiny_config
from tests.test_trainer_run import assert_stores_equal
from trainer.train import run

CFG = ("train.epochs=2", "dataset.noise=0.3")


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


def flipped_copy(ref_run, tmp_path):
    """A copy of the run whose epoch-1 activation chunk has 8 bytes changed mid-chunk."""
    run_dir = tmp_path / "run"
    shutil.copytree(ref_run, run_dir)
    chunk = run_dir / "activations.zarr" / "activation" / "c" / "1" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 8] = bytes(b ^ 0x10 for b in raw[mid : mid + 8])
    chunk.write_bytes(bytes(raw))
    return run_dir


def test_every_array_the_trainer_writes_has_a_checksum(ref_run):
    store = ref_run / "activations.zarr"
    for meta in store.glob("*/zarr.json"):
        assert '"crc32c"' in meta.read_text(), meta.parent.name


def test_flipped_bits_are_one_line_naming_store_and_array(ref_run, tmp_path):
    store = flipped_copy(ref_run, tmp_path) / "activations.zarr"
    reader = UnitReader(str(store))
    assert reader.meta is not None  # the fast path reads (and checks) it
    with pytest.raises(StoreError) as err:
        reader.read(1, 0, reader.meta.shape[2])
    line = str(err.value)
    assert "\n" not in line and str(store) in line and "'activation'" in line
    assert "rerun the trainer" in line
    with pytest.raises(ValueError, match="checksum"):
        _ = xr.open_zarr(store, consolidated=False)["activation"][1].values  # the zarr path
    assert "checksum" in corrupt_chunk_message(store)
    reader.read(0, 0, reader.meta.shape[2])  # an intact epoch still reads


def test_trainer_rerun_repairs_a_flipped_chunk_bitwise(ref_run, tmp_path, caplog):
    run_dir = flipped_copy(ref_run, tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with caplog.at_level(logging.WARNING, logger="trainer"):
            run(tiny_config(*CFG), run_dir)
    finally:
        torch.set_num_threads(threads)
    assert "re-dumping" in caplog.text
    assert_stores_equal(ref_run / "activations.zarr", run_dir / "activations.zarr")
    chunk = "activation/c/1/0/0"
    assert (run_dir / "activations.zarr" / chunk).read_bytes() == (
        ref_run / "activations.zarr" / chunk
    ).read_bytes()


def test_an_old_store_without_checksums_still_reads(tmp_path):
    import numpy as np
    import zarr
    from zarr.codecs import BloscCodec

    values = np.random.default_rng(0).normal(size=(2, 8, 6)).astype(np.float32)
    array = zarr.create_array(
        tmp_path / "activations.zarr" / "activation",
        shape=values.shape,
        chunks=(1, 8, 4),
        dtype="float32",
        compressors=(BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),),
    )
    array[:] = values
    reader = UnitReader(str(tmp_path / "activations.zarr"))
    assert reader.meta is not None and not reader.meta.checksum
    np.testing.assert_array_equal(reader.read(1, 2, 6), values[1, :, 2:6])
