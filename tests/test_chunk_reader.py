"""The analyzer's chunk reader against zarr's own reads, its buffers and its errors."""

import threading

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec, TransposeCodec, ZstdCodec

from analyzer import chunk_reader, epoch_pass
from analyzer.activations import StoreError
from analyzer.chunk_reader import UnitReader

SHAPE, CHUNKS = (3, 50, 70), (1, 50, 32)  # 70 units: chunks of 32, 32 and a 6-unit edge
TRAINER_CODEC = (BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),)  # trainer/store.py's
RANGES = [(0, 70), (0, 32), (5, 9), (30, 34), (31, 70), (64, 70), (69, 70)]


def _array(tmp_path, dtype="float32", compressors=TRAINER_CODEC, **kw):
    rng = np.random.default_rng(0)
    values = rng.normal(size=SHAPE).astype(dtype)
    if values.dtype.kind == "f":
        values[1, :, 3] = np.nan
    a = zarr.create_array(
        tmp_path / "activation",
        shape=SHAPE,
        chunks=kw.pop("chunks", CHUNKS),
        dtype=dtype,
        compressors=compressors,
        fill_value=np.nan if values.dtype.kind == "f" else 0,
        **kw,
    )
    a[:] = values
    return values


@pytest.mark.parametrize(
    "dtype, compressors, fast, kw",
    [
        ("float32", TRAINER_CODEC, True, {}),
        ("float64", (BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),), True, {}),
        ("float32", None, True, {}),
        ("float32", (ZstdCodec(),), True, {}),  # zarr's default (xr.Dataset.to_zarr)
        ("float32", (GzipCodec(),), True, {}),
        ("float16", (BloscCodec(),), True, {}),  # float32 returned
        ("float16", (ZstdCodec(), Crc32cCodec()), True, {}),
        ("float32", (ZstdCodec(),), True, {"chunks": (3, 50, 32)}),  # chunks span epochs
        ("float32", (ZstdCodec(),), True, {"chunks": (2, 16, 7)}),  # and samples, odd widths
        ("float32", (ZstdCodec(),), False, {"filters": (TransposeCodec(order=(0, 2, 1)),)}),
        ("int16", (ZstdCodec(),), False, {}),  # other dtypes: zarr reads, float32 returned
    ],
)
def test_reads_equal_zarr(tmp_path, dtype, compressors, fast, kw):
    values = _array(tmp_path, dtype, compressors, **kw)
    reader = UnitReader(str(tmp_path))
    assert (reader.meta is not None) == fast
    for e in range(SHAPE[0]):
        for lo, hi in RANGES:
            got = reader.read(e, lo, hi)
            assert got.dtype == (np.float32 if dtype in ("float16", "int16") else dtype)
            np.testing.assert_array_equal(got, values[e, :, lo:hi].astype(got.dtype))
            assert got.flags.c_contiguous


def test_sharded_array_is_read_by_zarr(tmp_path):
    values = _array(tmp_path, chunks=(1, 50, 70), shards=(1, 50, 70))
    reader = UnitReader(str(tmp_path))
    assert reader.meta is None
    np.testing.assert_array_equal(reader.read(2, 10, 40), values[2, :, 10:40])


def test_missing_chunk_reads_the_fill_value(tmp_path):
    values = _array(tmp_path)
    (tmp_path / "activation" / "c" / "1" / "0" / "1").unlink()
    got = UnitReader(str(tmp_path)).read(1, 20, 70)
    expected = values[1, :, 20:70].copy()
    expected[:, 12:44] = np.nan
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, zarr.open_array(tmp_path / "activation")[1, :, 20:70])


def test_a_read_reuses_the_thread_buffer(tmp_path):
    values = _array(tmp_path)
    reader = UnitReader(str(tmp_path))
    assert reader.meta is not None
    first = reader.read(0, 0, 32)
    second = reader.read(1, 0, 32)
    assert np.shares_memory(first, second)  # the documented contract: valid until the next read
    np.testing.assert_array_equal(first, values[1, :, :32])
    other = {}
    thread = threading.Thread(target=lambda: other.update(v=reader.read(2, 0, 32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(other["v"], second)  # one buffer per thread
    np.testing.assert_array_equal(second, values[1, :, :32])
    chunk_reader.release_buffers()  # as an analysis does when it ends
    assert not chunk_reader._buffers
    assert not np.shares_memory(reader.read(1, 0, 32), second)


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_a_damaged_chunk_names_the_store(tmp_path, damage):
    _array(tmp_path)
    chunk = tmp_path / "activation" / "c" / "2" / "0" / "0"
    data = chunk.read_bytes()
    chunk.write_bytes(b"\x00" * 40 if damage == "garbage" else data[: len(data) // 2])
    reader = UnitReader(str(tmp_path))
    np.testing.assert_array_equal(reader.read(2, 32, 64), reader.read(2, 32, 64))  # others fine
    with pytest.raises(StoreError, match=str(tmp_path)):
        reader.read(2, 0, 40)


def test_epoch_results_keep_no_view_of_the_read_buffer(tmp_path):
    """An epoch's results stay as they were after the same thread reads the next epoch."""
    from analyzer.mi_tensors import Options
    from analyzer.prepare import prepare
    from tests.test_analyzer_scale import OPTS, make_store

    path = tmp_path / "run" / "activations.zarr"
    make_store(path, 2)
    plan = prepare(path, Options(**OPTS)).plan
    first = epoch_pass.analyze_epoch(plan, 0, (1,))
    kept = {k: np.array(v, copy=True) for k, v in first.items() if k != epoch_pass.PAIR_CODES}
    codes = first[epoch_pass.PAIR_CODES][1][0].copy()
    epoch_pass.analyze_epoch(plan, 1, (1,))
    for name, value in kept.items():
        np.testing.assert_array_equal(first[name], value, err_msg=name)
    np.testing.assert_array_equal(first[epoch_pass.PAIR_CODES][1][0], codes)


@pytest.mark.parametrize("fast", [True, False])
def test_a_read_holds_one_stored_chunk_beyond_its_output(tmp_path, fast):
    """Bounded by a block: reading 5 stored chunks allocates a few chunks' worth at a time
    besides the reused output buffer, on both paths (zarr's whole-range read: 15 chunks)."""
    import tracemalloc

    shape, chunks = (2, 400, 320), (1, 400, 64)
    filters = () if fast else (TransposeCodec(order=(0, 2, 1)),)  # zarr's array API reads it
    a = zarr.create_array(
        tmp_path / "activation", shape=shape, chunks=chunks, dtype="float32",
        compressors=(ZstdCodec(),), filters=filters, fill_value=np.nan,
    )  # fmt: skip
    a[:] = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    reader = UnitReader(str(tmp_path))
    assert (reader.meta is not None) == fast
    reader.read(0, 0, 320)  # buffers allocated
    tracemalloc.start()
    try:
        reader.read(1, 0, 320)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    chunk_bytes = 400 * 64 * 4
    # fast path: the file bytes (incompressible here); zarr per piece: output, decode, transpose
    assert peak < (2.5 if fast else 4) * chunk_bytes, peak / chunk_bytes
