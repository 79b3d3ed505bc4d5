"""Robustness sweep: the default setting reproduces the analyzer; the table covers the grid."""

import numpy as np
import xarray as xr

from analyzer.mi_tensors import Options, analyze
from analyzer.report import robustness
from analyzer.sweep import SweepOptions, channel_entropy, sweep, write


def test_channel_entropy_matches_numpy():
    codes = np.random.default_rng(0).integers(0, 5, (3, 50)).astype(np.uint8)
    for c in range(3):
        p = np.bincount(codes[c], minlength=5) / 50
        p = p[p > 0]
        assert np.isclose(channel_entropy(codes, 5)[c], -(p * np.log(p)).sum())


def test_sweep_default_setting_matches_the_mi_dataset(tiny_run, tmp_path):
    store = tiny_run / "activations.zarr"
    opts = SweepOptions(bins=(10, 6), fractions=(0.5, 1.0))
    ds = sweep(store, opts)
    assert ds.label_mi.dims == ("bins", "fraction", "rule", "epoch", "layer")
    mi_path = tmp_path / "mi.zarr"
    analyze(store, mi_path, Options(bins=10, pair_samples=8))
    mi = xr.open_zarr(mi_path)
    cell = ds.sel(bins=10, fraction=1.0, rule="range")
    assert np.allclose(cell.label_mi, mi.label_mi, atol=1e-5)
    assert np.allclose(cell.input_mi, mi.input_mi, atol=1e-5)
    assert np.allclose(cell.gini, mi.gini, atol=1e-5)
    # both are the exact mean over all label permutations
    assert np.allclose(cell.label_mi_null, mi.label_mi_null, atol=1e-5)
    # fewer samples, larger bias
    half = ds.sel(bins=10, fraction=0.5, rule="range").label_mi_null
    assert float(half.mean()) > float(cell.label_mi_null.mean())
    assert np.isfinite(ds.label_mi.sel(rule="quantile")).all()

    out = write(ds, tmp_path / "sweep" / "run.zarr")
    rows = robustness.table([xr.open_zarr(out).load()])
    assert len(rows) == 2 * 2 * 3
    assert set(rows[0]["findings"]) == {
        "label_mi_rises_with_depth",
        "trained_above_random",
        "input_mi_depends_on_activation",
        "concentration_rises_late",
    }
    stem = tmp_path / "robustness" / "summary"
    assert robustness.main([str(out), "--out", str(stem), "--formats", "png"]) == 0
    assert (tmp_path / "robustness" / "summary.png").stat().st_size > 0
    assert "Which findings hold" in (tmp_path / "robustness" / "summary.md").read_text()
