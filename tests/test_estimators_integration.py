"""The estimator pass end to end: `python -m analyzer STORE --estimators ...` on a generated
store writes one variable per estimator, equal to the core functions on the stored values;
the default (histogram only) Dataset is unchanged."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from analyzer import variables as registry
from analyzer.core.gaussian import gaussian_label_mi, gaussian_layer_mi
from analyzer.core.knn import knn_label_mi, knn_layer_mi
from analyzer.core.pca import layer_scores, subsample
from analyzer.core.probe import probe_label_mi
from analyzer.estimators import VARIABLES as EST_VARS
from tests.test_analyzer_scale import make_store

ROOT = Path(__file__).resolve().parents[1]
ALL = ["histogram", "knn", "gaussian", "probe"]
EXTRA = [v for names, _ in EST_VARS.values() for v in names]


def _analyze(store, out, *extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "analyzer", str(store), "--out", str(out), "--bins", "8"]
    cmd += ["--permutations", "2", "--threads", "1", "--no-progress", *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return xr.open_zarr(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("est")
    store = tmp / "activations.zarr"
    make_store(store, 3, total=3)
    default = _analyze(store, tmp / "default.zarr")
    every = _analyze(store, tmp / "all.zarr", "--estimators", *ALL, "--estimator-dims", "3")
    return store, default, every


def test_each_estimator_variable_equals_the_core_function(runs):
    store, _, ds = runs
    src = xr.open_zarr(store)
    y = src.label.values
    rows = subsample(len(y), 0)
    for epoch in (0, 2):
        act = src.activation.sel(epoch=epoch).values
        for layer in ds.layer.values:
            x = act[:, np.flatnonzero(src.site.values == layer)]
            c = x.shape[1]
            at = dict(epoch=epoch, layer=layer)
            knn = knn_label_mi(x, y, 3)
            got = ds.channel_label_mi_knn.sel(**at).values
            np.testing.assert_allclose(got[:c], knn, rtol=1e-6, atol=1e-6)
            assert np.isnan(got[c:]).all()  # padding past the layer's channels
            assert float(ds.label_mi_knn.sel(**at)) == pytest.approx(knn.mean(), abs=1e-6)
            gauss = gaussian_label_mi(x, y)
            np.testing.assert_allclose(
                ds.channel_label_mi_gaussian.sel(**at).values[:c], gauss, rtol=1e-6, atol=1e-6
            )
            x64 = x.astype(np.float64)
            proj = layer_scores(x, x64.mean(0), x64.std(0), 3, rows, 0)
            assert float(ds.label_mi_gaussian_pca.sel(**at)) == pytest.approx(
                gaussian_layer_mi(proj, y), rel=1e-4, abs=1e-5
            )
            assert float(ds.label_mi_knn_pca.sel(**at)) == pytest.approx(
                knn_layer_mi(proj, y, 3), rel=1e-4, abs=1e-5
            )
            assert float(ds.label_mi_probe.sel(**at)) == pytest.approx(
                probe_label_mi(x, y), rel=1e-5, abs=1e-6
            )


def test_attrs_and_options_record_the_estimators(runs):
    _, default, ds = runs
    for name in EXTRA:
        attrs = ds[name].attrs
        assert attrs["units"] == "nat"
        assert {"definition", "assumptions", "known_bias"} <= set(attrs)
        assert attrs["description"] == registry.VARIABLES[name].description
    opts = json.loads(ds.attrs["analysis_options"])
    assert opts["estimators"] == ALL and opts["knn_k"] == 3 and opts["estimator_dims"] == 3
    assert "estimators" not in json.loads(default.attrs["analysis_options"])


def test_default_run_is_the_histogram_dataset_unchanged(runs):
    """Histogram only: no estimator variable, and every histogram variable identical to the
    all-estimator run's (the estimator pass adds variables and changes none)."""
    _, default, ds = runs
    assert not set(EXTRA) & set(default.data_vars)
    assert set(ds.data_vars) - set(default.data_vars) == set(EXTRA)
    for name in default.data_vars:
        xr.testing.assert_identical(default[name].load(), ds[name].load())


def test_unknown_estimator_is_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, "-m", "analyzer", "x.zarr", "--out", "o.zarr", "--estimators", "ksg"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "'ksg'" in lines[0] and "knn" in lines[0]
