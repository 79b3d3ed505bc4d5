"""Incremental analysis, schedulers and chunk reads of the analyzer on generated stores."""

import json

import dask
import numpy as np
import pytest
import xarray as xr

from analyzer import chunk_reader, epoch_pass, mi_tensors
from analyzer.activations import Layer
from analyzer.mi_tensors import Options, analyze

WIDTHS = [8, 24, 40, 16]  # 88 units; chunks of 32 units: segments cut where both align


def _values(rng, labels, signal, e, n_epochs):
    noise = rng.normal(size=(len(labels), signal.shape[1])).astype(np.float32)
    x = np.maximum(noise + (e / n_epochs) * signal[labels], 0)
    x[:, 5] = np.round(x[:, 5] * 2)  # ties
    x[:, 30] = 1.0  # a constant channel
    return x


def metrics(e):
    return {"val_acc": [0.1, 0.5, 0.4, 0.7, 0.6][e], "val_loss": 1.0, "lr": 0.1}


def make_store(path, n_epochs, total=5, seed=0, finalize=True):
    """A synthetic trainer store of ``n_epochs`` epochs (the first ones of a ``total``-epoch run)."""
    from trainer import store

    rng = np.random.default_rng(seed)
    n = 240
    labels = rng.integers(0, 4, n)
    signal = rng.normal(size=(4, sum(WIDTHS))).astype(np.float32)
    epochs = [_values(rng, labels, signal, e, total) for e in range(total)]
    sites = [{"name": f"s{i}", "kind": "conv-relu", "channels": c} for i, c in enumerate(WIDTHS)]
    store.create_store(
        path,
        activation=epochs[0],
        metrics=metrics(0),
        labels=labels,
        input_summary=rng.normal(size=(n, 5)),
        input_features=[f"f{i}" for i in range(5)],
        sites=sites,
        attrs={
            "dataset": "generated",
            "arch": "toy",
            "activation": "relu",
            "regularizer": "none",
            "seed": 0,
            "classes": json.dumps(list("abcd")),
        },
        dtype="float32",
        unit_chunk=32,
    )
    for e in range(1, n_epochs):
        store.append_epoch(path, e, epochs[e], metrics(e), "float32")
    if finalize:
        store.finalize_store(path, "complete", n_epochs)
    return epochs


OPTS = dict(bins=8, pair_samples=6, cc_layers="all", permutations=3, run="toy", epoch_block=2)


def test_segments_align_with_layers_and_chunks():
    layers, start = [], 0
    for i, c in enumerate(WIDTHS):
        layers.append(Layer(f"s{i}", "conv-relu", start, c))
        start += c
    segs = epoch_pass.segments_of(layers, 32)
    assert segs == [(0, 32, (0, 1)), (32, 88, (2, 3))]


def test_incremental_three_plus_two_equals_full_five(tmp_path, monkeypatch):
    full, grow = tmp_path / "full" / "activations.zarr", tmp_path / "grow" / "activations.zarr"
    epochs = make_store(full, 5)
    make_store(grow, 3, finalize=False)  # a run still training
    analyze(full, tmp_path / "full.zarr", Options(**OPTS))
    out = tmp_path / "grow.zarr"
    with pytest.raises(ValueError, match="incomplete"):
        analyze(grow, out, Options(**OPTS))
    analyze(grow, out, Options(**OPTS), allow_running=True)
    assert xr.open_zarr(out).sizes["epoch"] == 3
    from trainer import store

    for e in (3, 4):  # the run trains two more epochs
        store.append_epoch(grow, e, epochs[e], metrics(e), "float32")
    store.finalize_store(grow, "complete", 5)
    computed = []
    real = mi_tensors.analyze_epoch
    monkeypatch.setattr(
        mi_tensors, "analyze_epoch", lambda plan, e, *a: computed.append(e) or real(plan, e, *a)
    )
    analyze(grow, out, Options(**OPTS))
    assert sorted(computed) == [3, 4]  # only the new epochs
    a, b = xr.open_zarr(tmp_path / "full.zarr").load(), xr.open_zarr(out).load()
    assert b.sizes["epoch"] == 5 and int(b.attrs["best_epoch"]) == 3
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    # other options: rewritten from scratch
    computed.clear()
    analyze(grow, out, Options(**dict(OPTS, bins=6)))
    assert sorted(computed) == [0, 1, 2, 3, 4] and int(xr.open_zarr(out).bins) == 6


def test_schedulers_are_bit_identical(tmp_path):
    path = tmp_path / "run" / "activations.zarr"
    make_store(path, 4)
    results = {}
    for name, config in {
        "sync": {"scheduler": "sync"},
        "threads": {"scheduler": "threads", "num_workers": 2},
        "processes": {"scheduler": "processes", "num_workers": 2},
    }.items():
        with dask.config.set(config):
            analyze(path, tmp_path / f"{name}.zarr", Options(**OPTS))
        results[name] = xr.open_zarr(tmp_path / f"{name}.zarr").load().drop_attrs()
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with distributed.Client(cluster):
            analyze(path, tmp_path / "dist.zarr", Options(**OPTS))
    results["distributed"] = xr.open_zarr(tmp_path / "dist.zarr").load().drop_attrs()
    for name, ds in results.items():
        xr.testing.assert_identical(results["sync"], ds), name


def test_each_chunk_is_read_once_per_epoch(tmp_path, monkeypatch):
    path = tmp_path / "run" / "activations.zarr"
    make_store(path, 2)
    reads = []
    real = chunk_reader.UnitReader.read
    monkeypatch.setattr(
        chunk_reader.UnitReader,
        "read",
        lambda self, e, lo, hi: reads.append((e, lo, hi)) or real(self, e, lo, hi),
    )
    with dask.config.set(scheduler="sync"):  # channel pairs of every layer at both epochs
        analyze(path, tmp_path / "mi.zarr", Options(**OPTS))
    assert sorted(reads) == [(0, 0, 32), (0, 32, 88), (1, 0, 32), (1, 32, 88)]


def test_epoch_task_pair_codes_equal_a_reread(tmp_path):
    """The channel pairs take the epoch pass's own codes; the same as binning the layer alone."""
    from analyzer.prepare import prepare

    path = tmp_path / "run" / "activations.zarr"
    make_store(path, 2)
    plan = prepare(path, Options(**OPTS)).plan
    for e in (0, 1):
        got = epoch_pass.analyze_epoch(plan, e, (1, 2))[epoch_pass.PAIR_CODES]
        assert sorted(got) == [1, 2]
        for li in (1, 2):
            (codes, finite, prep), (codes2, finite2, prep2) = (
                got[li],
                epoch_pass.pair_codes(plan, e, li),
            )
            assert codes.shape == (WIDTHS[li], 240) and codes.flags.c_contiguous
            np.testing.assert_array_equal(codes, codes2)
            np.testing.assert_array_equal(finite, finite2)
            for name in ("hist", "marginal", "top", "order", "occupied", "n_occupied"):
                np.testing.assert_array_equal(getattr(prep, name), getattr(prep2, name))
    assert epoch_pass.PAIR_CODES not in epoch_pass.analyze_epoch(plan, 0)
