"""The analyzer on stores the trainer did not write (issue 26 item 2): same MI, bounded memory.

One set of values (exactly representable in float16) is written by the trainer's writer and
re-saved by ``xr.Dataset.to_zarr`` in other layouts; every layout must give the same MI
Dataset, and the analyzer's traced peak memory must not grow with the number of epochs.
"""

import gc
import json
import tracemalloc

import dask
import numpy as np
import pytest
import xarray as xr

from analyzer import epoch_pass
from analyzer.chunk_reader import UnitReader
from analyzer.mi_tensors import Options, analyze
from analyzer.prepare import prepare
from tests.test_analyzer_scale import WIDTHS

OPTS = dict(bins=8, pair_samples=6, cc_layers="all", permutations=3, run="toy", epoch_block=2)
N = 240


def _epoch(rng, labels, signal, e, n_epochs):
    noise = rng.normal(size=(len(labels), signal.shape[1])).astype(np.float32)
    x = np.maximum(noise + (e / n_epochs) * signal[labels], 0)
    x[:, 30] = 1.0  # a constant channel
    return x.astype(np.float16).astype(np.float32)  # the same values in every layout


def trainer_store(path, n_epochs, seed=0):
    """A store written by the trainer's own writer (Blosc-zstd + crc32c, chunks of 32 units)."""
    from trainer import store

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, N)
    signal = rng.normal(size=(4, sum(WIDTHS))).astype(np.float32)
    sites = [{"name": f"s{i}", "kind": "conv-relu", "channels": c} for i, c in enumerate(WIDTHS)]
    metrics = lambda e: {"val_acc": 0.1 + 0.1 * (e % 4), "val_loss": 1.0, "lr": 0.1}  # noqa: E731
    store.create_store(
        path,
        activation=_epoch(rng, labels, signal, 0, n_epochs),
        metrics=metrics(0),
        labels=labels,
        input_summary=rng.normal(size=(N, 5)),
        input_features=[f"f{i}" for i in range(5)],
        sites=sites,
        attrs={"dataset": "generated", "arch": "toy", "activation": "relu",
               "regularizer": "none", "seed": 0, "classes": json.dumps(list("abcd"))},
        dtype="float32",
        unit_chunk=32,
    )  # fmt: skip
    for e in range(1, n_epochs):
        store.append_epoch(path, e, _epoch(rng, labels, signal, e, n_epochs), metrics(e), "float32")
    store.finalize_store(path, "complete", n_epochs)


LAYOUTS = {  # name: (activation dtype, activation chunks (epoch, sample, unit))
    "zstd": ("float32", (1, N, 32)),  # xr.to_zarr with zarr's default codecs
    "float16": ("float16", (1, N, 32)),
    "unit_chunk_1024": ("float32", (1, N, 1024)),  # wider than the 88 units
    "chunks_span_epochs": ("float32", (3, N, 32)),
    "chunks_split_samples": ("float32", (2, 100, 16)),
    "units_never_aligned": ("float32", (1, N, 30)),  # no layer boundary is a chunk boundary
    "zarr_v2": ("float32", (1, N, 32)),  # Zarr format 2: read through zarr's API
}


def to_zarr_copy(src, path, layout):
    """``src`` re-saved by ``xr.Dataset.to_zarr`` with zarr's default codecs, in ``layout``."""
    dtype, chunks = LAYOUTS[layout]
    ds = xr.open_zarr(src)
    for var in ds.variables.values():
        var.encoding = {}
    ds["activation"] = ds.activation.astype(dtype)
    ds = ds.chunk(dict(zip(("epoch", "sample", "unit"), chunks, strict=True)))
    fmt = 2 if layout == "zarr_v2" else 3
    ds.to_zarr(path, mode="w", encoding={"activation": {"chunks": chunks}}, zarr_format=fmt)


def mi_dataset(store, out):
    with dask.config.set(scheduler="threads", num_workers=2):
        analyze(store, out, Options(**OPTS))
    return xr.open_zarr(out).load()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trainer")
    store = tmp / "run" / "activations.zarr"
    trainer_store(store, 5)
    return store, mi_dataset(store, tmp / "mi.zarr")


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_gives_the_trainer_layouts_mi(reference, tmp_path, layout, monkeypatch):
    store, expected = reference
    foreign = tmp_path / "run" / "activations.zarr"
    to_zarr_copy(store, foreign, layout)
    # segments of at most ~20 units' values (or one chunk): cuts off chunk boundaries too
    monkeypatch.setattr(epoch_pass, "SEGMENT_BYTES", N * 4 * 20)
    if layout == "units_never_aligned":
        segments = prepare(foreign, Options(**OPTS)).plan.segments
        assert [s[:2] for s in segments] == [(0, 32), (32, 72), (72, 88)]
    if layout != "zarr_v2":  # (Zarr 2's default is Blosc-lz4, read through zarr's API)
        assert "blosc" not in (foreign / "activation" / "zarr.json").read_text()
    got = mi_dataset(foreign, tmp_path / "mi.zarr")
    xr.testing.assert_identical(got.drop_attrs(), expected.drop_attrs())
    assert got.channel_label_mi.notnull().any()


def test_a_to_zarr_store_is_decoded_by_the_fast_path(reference, tmp_path):
    store, _ = reference
    for layout in ("zstd", "float16", "chunks_span_epochs", "chunks_split_samples"):
        to_zarr_copy(store, tmp_path / layout, layout)
        assert UnitReader(str(tmp_path / layout)).meta is not None, layout


def _traced_peak(store, out) -> tuple[int, int]:
    """(peak bytes Python/numpy allocated during one analysis (tracemalloc), bytes of the
    MI Dataset's epoch-indexed variables)."""
    with dask.config.set(scheduler="threads", num_workers=1):
        analyze(store, out, Options(**OPTS))  # compile and warm first
        gc.collect()  # what an earlier test left for the collector is not this analysis's
        tracemalloc.start()
        try:
            analyze(store, out.with_name("again.zarr"), Options(**OPTS))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    ds = xr.open_zarr(out)
    return peak, sum(v.nbytes for v in ds.data_vars.values() if "epoch" in v.dims)


@pytest.mark.parametrize("layout", ["zstd", "chunks_span_epochs"])
def test_peak_memory_does_not_grow_with_the_epochs(tmp_path, layout):
    peaks, outputs = {}, {}
    for n_epochs in (4, 16):
        src = tmp_path / f"t{n_epochs}" / "run" / "activations.zarr"
        trainer_store(src, n_epochs)
        foreign = tmp_path / f"f{n_epochs}" / "run" / "activations.zarr"
        to_zarr_copy(src, foreign, layout)
        peaks[n_epochs], outputs[n_epochs] = _traced_peak(foreign, tmp_path / f"mi{n_epochs}.zarr")
    # 12 more epochs add their (small) results and nothing of the values read: keeping even
    # one epoch's values per epoch would add 12 x 84 kB
    epoch_bytes = N * sum(WIDTHS) * 4
    assert outputs[16] - outputs[4] < 2 * epoch_bytes
    # (allocator and cache noise between two analyses in one process is a few hundred kB:
    # the bound is half of what keeping each added epoch's values would cost)
    assert peaks[16] - peaks[4] < 1.5 * (outputs[16] - outputs[4]) + 12 * epoch_bytes / 2, peaks


def test_segments_stay_bounded_where_chunks_never_meet_layer_boundaries():
    from analyzer.activations import Layer

    widths, layers, start = [64, 64, 128, 128, 256, 256, 256] + [512] * 6, [], 0
    for i, c in enumerate(widths):
        layers.append(Layer(f"conv{i}", "conv-relu", start, c))
        start += c
    assert len(epoch_pass.segments_of(layers, 1000)) == 1  # the whole epoch: no alignment
    bounded = epoch_pass.segments_of(layers, 1000, max_units=1000)
    assert max(stop - lo for lo, stop, _ in bounded) < 1000 + 512  # one layer past the bound
    assert [m for *_, ms in bounded for m in ms] == list(range(len(layers)))
    assert epoch_pass.segments_of(layers, 1024, 4248) == epoch_pass.segments_of(layers, 1024)
    assert epoch_pass.max_segment_units(1024, 3949) == 4248  # the trainer's VGG-16: one segment


def test_sweep_reads_any_layout_one_epoch_at_a_time(reference, tmp_path):
    from analyzer.sweep import SweepOptions, _unit_ranges, sweep

    store, _ = reference
    foreign = tmp_path / "run" / "activations.zarr"
    to_zarr_copy(store, foreign, "chunks_span_epochs")
    everything = xr.open_zarr(store).activation.values  # (epoch, sample, unit)
    lo, hi = _unit_ranges(UnitReader(str(foreign)), *everything.shape[::2])
    np.testing.assert_array_equal(lo, np.nanmin(everything, axis=(0, 1)))
    np.testing.assert_array_equal(hi, np.nanmax(everything, axis=(0, 1)))
    opts = SweepOptions(bins=(6,), fractions=(0.5, 1.0))
    expected = sweep(store, opts)
    got = sweep(foreign, opts)
    xr.testing.assert_identical(got.drop_attrs(), expected.drop_attrs())
