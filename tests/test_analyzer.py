import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from sklearn.metrics import mutual_info_score

from analyzer.activations import StoreError, open_activations
from analyzer.mi_tensors import Options, analyze
from tests.test_estimators import reference_codes


@pytest.fixture(scope="module")
def mi_result(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("mi") / "bins-10" / "run.zarr"
    analyze(tiny_run / "activations.zarr", out, Options(bins=10, cc_layers="all", pair_samples=8))
    return out


def test_mi_dataset_has_contract_names_dims_and_padding(mi_result, tiny_run):
    ds = xr.open_zarr(mi_result)
    src = xr.open_zarr(tiny_run / "activations.zarr")
    assert ds.label_mi.dims == ("epoch", "layer")
    assert ds.layer_mi.dims == ("epoch", "layer", "layer_b")
    assert ds.channel_label_mi.dims == ("epoch", "layer", "channel")
    assert ds.class_channel_mi.dims == ("epoch", "layer", "channel", "label")
    assert ds.topk_share.dims == ("epoch", "layer", "k") and list(ds.k.values) == [1, 5, 10, 20]
    assert ds.channel_channel_mi.dims == ("cc_epoch", "cc_layer", "channel", "channel_b")
    assert list(ds.epoch.values) == list(src.epoch.values)
    assert list(ds.layer.values) == [s["name"] for s in json.loads(src.attrs["sites"])]
    for key in ("dataset", "arch", "activation", "regularizer", "seed", "bins", "run"):
        assert key in ds.coords and ds[key].ndim == 0
    assert int(ds.bins) == 10 and ds.attrs["units"] == "nat"
    assert "clusters" in ds.attrs["input_mi_note"]
    n = ds.n_channels.values
    clm = ds.channel_label_mi.values
    for i, c in enumerate(n):
        assert np.isfinite(clm[:, i, :c]).all() and np.isnan(clm[:, i, c:]).all()
    np.testing.assert_allclose(ds.val_acc.values, src.val_acc.values)
    assert np.isfinite(float(ds.delta_input_mi))


def test_mi_values_equal_independent_references(mi_result, tiny_run):
    ds = xr.open_zarr(mi_result)
    src = xr.open_zarr(tiny_run / "activations.zarr")
    y = src.label.values
    for epoch in (0, 3):
        act = src.activation.sel(epoch=epoch).values.astype(np.float64)
        for layer in ds.layer.values[[0, -1]]:
            units = np.flatnonzero(src.site.values == layer)
            ref = np.array([mutual_info_score(y, reference_codes(act[:, u], 10)) for u in units])
            got = ds.channel_label_mi.sel(epoch=epoch, layer=layer).values[: len(units)]
            np.testing.assert_allclose(got, ref, atol=1e-6)  # stored as float32
            assert float(ds.label_mi.sel(epoch=epoch, layer=layer)) == pytest.approx(
                ref.mean(), abs=1e-6
            )
            k = 1
            ref_k = [mutual_info_score(y == k, reference_codes(act[:, u], 10)) for u in units]
            np.testing.assert_allclose(
                ds.class_channel_mi.sel(epoch=epoch, layer=layer, label=k).values[: len(units)],
                ref_k,
                atol=1e-6,
            )
    last = ds.layer.values[-1]
    units = np.flatnonzero(src.site.values == last)
    best = int(ds.attrs["best_epoch"])
    act = src.activation.sel(epoch=best).values.astype(np.float64)[:, units]
    cc = ds.channel_channel_mi.sel(cc_epoch=best, cc_layer=last).values
    codes = [reference_codes(act[:, i], 10) for i in range(len(units))]
    assert cc[0, 1] == pytest.approx(mutual_info_score(codes[0], codes[1]), abs=1e-6)
    assert cc[2, 2] == pytest.approx(mutual_info_score(codes[2], codes[2]), abs=1e-6)


def test_random_init_layer_label_mi_does_not_saturate(mi_result, tiny_run):
    ds = xr.open_zarr(mi_result)
    src = xr.open_zarr(tiny_run / "activations.zarr")
    y = src.label.values
    h_y = mutual_info_score(y, y)
    wide = ds.layer.values[ds.n_channels.values >= 64]
    assert len(wide) > 0
    for layer in wide:
        assert float(ds.label_mi.sel(epoch=0, layer=layer)) < 0.5 * h_y
        assert float(ds.label_mi_pca.sel(epoch=0, layer=layer)) < 0.9 * h_y
    # the pitfall the default avoids: one joint pattern of the whole GAP vector is I = H(Y)
    units = np.flatnonzero(src.site.values == wide[-1])
    act = src.activation.sel(epoch=0).values[:, units]
    patterns = np.unique(
        np.stack([reference_codes(act[:, i], 10) for i in range(act.shape[1])], 1),
        axis=0,
        return_inverse=True,
    )[1].ravel()
    assert mutual_info_score(y, patterns) == pytest.approx(h_y)


def test_runs_concatenate_along_run(mi_result, tmp_path):
    other = tmp_path / "other.zarr"
    shutil.copytree(mi_result, other)
    a, b = xr.open_zarr(mi_result), xr.open_zarr(other).assign_coords(run="copy")
    both = xr.concat([a, b], dim="run", coords="different", compat="equals", join="outer")
    assert both.label_mi.dims[0] == "run" and both.sizes["run"] == 2


def test_threaded_and_distributed_schedulers_agree(tiny_run, tmp_path, mi_result):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2):
        analyze(
            tiny_run / "activations.zarr",
            tmp_path / "d.zarr",
            Options(bins=10, cc_layers="all", pair_samples=8),
        )
    a, b = xr.open_zarr(mi_result).load(), xr.open_zarr(tmp_path / "d.zarr").load()
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def test_incomplete_corrupt_and_foreign_stores_are_refused(tiny_run, tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_activations(tmp_path / "nope.zarr")
    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="zarr.json is damaged"):  # the file named (27.6)
        open_activations(broken)
    foreign = tmp_path / "foreign.zarr"
    xr.Dataset({"x": ("a", np.arange(3))}).to_zarr(foreign)
    with pytest.raises(StoreError, match="not a trainer activation store"):
        open_activations(foreign)
    running = tmp_path / "running"
    shutil.copytree(tiny_run / "activations.zarr", running / "activations.zarr")
    import zarr

    zarr.open_group(running / "activations.zarr", mode="r+").attrs["status"] = "running"
    with pytest.raises(StoreError, match="incomplete"):
        open_activations(running / "activations.zarr", allow_running=False)


def test_cli_corrupt_chunk_is_one_line_error_and_leaves_nothing(tiny_run, tmp_path):
    store = tmp_path / "run" / "activations.zarr"
    shutil.copytree(tiny_run / "activations.zarr", store)
    chunk = next(p for p in (store / "activation" / "c").rglob("*") if p.is_file())
    chunk.write_bytes(b"garbage")
    out = tmp_path / "mi.zarr"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "analyzer",
            str(store),
            "--bins",
            "10",
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("analyzer: error:") and str(store) in last
    assert not out.exists() and not list(tmp_path.glob(".mi.zarr*"))


def test_nan_activations_give_nan_and_a_flag(tiny_run, tmp_path):
    store = tmp_path / "nan" / "activations.zarr"
    shutil.copytree(tiny_run / "activations.zarr", store)
    import zarr

    arr = zarr.open_array(store / "activation", mode="r+")
    block = arr[2]
    block[5, :3] = np.nan  # three channels of the first layer go NaN at epoch 2
    arr[2] = block
    out = tmp_path / "mi.zarr"
    analyze(store, out, Options(bins=10))
    ds = xr.open_zarr(out)
    first = ds.layer.values[0]
    assert int(ds.nonfinite_channels.sel(epoch=2, layer=first)) == 3
    assert np.isnan(ds.channel_label_mi.sel(epoch=2, layer=first).values[:3]).all()
    assert np.isnan(float(ds.label_mi.sel(epoch=2, layer=first)))
    assert np.isfinite(float(ds.label_mi.sel(epoch=1, layer=first)))


def test_epoch_blocks_do_not_change_results(tiny_run, tmp_path, mi_result):
    opts = Options(bins=10, cc_layers="all", pair_samples=8, epoch_block=3)  # 4 epochs: 3 + 1
    analyze(tiny_run / "activations.zarr", tmp_path / "blocks.zarr", opts)
    a, b = xr.open_zarr(mi_result).load(), xr.open_zarr(tmp_path / "blocks.zarr").load()
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def test_dataset_variables_follow_the_registry(mi_result):
    from analyzer import variables as registry

    ds = xr.open_zarr(mi_result)
    for name, var in registry.VARIABLES.items():
        if (var.stage == "store" or var.optional) and name not in ds:
            continue
        assert ds[name].dims == var.dims, name
        assert ds[name].dtype == np.dtype(var.dtype), name
        assert ds[name].attrs["units"] == var.units, name
        assert ds[name].attrs["description"] == var.description, name
    computed = {n for n, v in ds.data_vars.items()}
    assert computed <= set(registry.VARIABLES), computed - set(registry.VARIABLES)


def test_null_variables_are_consistent_and_seeded(mi_result, tiny_run, tmp_path):
    ds = xr.open_zarr(mi_result).load()
    assert ds.attrs["permutations"] == 20 and "permutation" in ds.attrs["null"]
    for name in ("channel_label_mi_null", "channel_label_mi_corrected", "channel_label_mi_pvalue"):
        assert ds[name].dims == ("epoch", "layer", "channel")
    n = int(ds.attrs["n_samples"])
    raw, null = ds.channel_label_mi.values, ds.channel_label_mi_null.values
    assert np.allclose(ds.channel_label_mi_corrected.values, raw - null, atol=1e-5, equal_nan=True)
    assert np.allclose(ds.label_mi_corrected, ds.label_mi - ds.label_mi_null, atol=1e-5)
    assert np.allclose(ds.label_mi_null, np.nanmean(null, axis=2), atol=1e-5)
    assert (ds.label_mi_null_lo <= ds.label_mi_null + 1e-6).all()
    assert (ds.label_mi_null + 1e-6 >= 0).all() and (ds.label_mi_null < np.log(10)).all()
    p = ds.channel_label_mi_pvalue.values
    assert np.nanmin(p) >= 1 / 21 - 1e-6 and np.nanmax(p) <= 1 + 1e-6
    assert ds.class_channel_mi_null.dims == ds.class_channel_mi.dims
    assert np.isnan(null[:, :, -1]).any() or ds.n_channels.min() == ds.sizes["channel"]
    assert n > 0
    # same seed, same null; another seed, other permutations (the band) but the same exact mean
    again = tmp_path / "again.zarr"
    analyze(tiny_run / "activations.zarr", again, Options(bins=10, pair_samples=8))
    other = tmp_path / "other.zarr"
    analyze(tiny_run / "activations.zarr", other, Options(bins=10, pair_samples=8, seed=5))
    a, b = xr.open_zarr(again).load(), xr.open_zarr(other).load()
    assert np.array_equal(a.label_mi_null_lo, ds.label_mi_null_lo)
    assert not np.array_equal(a.label_mi_null_lo, b.label_mi_null_lo)
    assert np.array_equal(a.label_mi_null, b.label_mi_null)
