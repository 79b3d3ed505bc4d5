"""The bias level of layer-layer MI (issue 26 item 5): exact null means and Fig 2 minus them."""

import itertools

import numpy as np
import pytest
import xarray as xr
from scipy.stats import hypergeom

from analyzer.core.kernels import paired_mi, xlogx_table
from analyzer.core.null_mean import pair_null_means
from analyzer.epoch_pass import Plan, bin_sizes, epoch_step
from analyzer.options import Options


def plugin_mi(x: np.ndarray, y: np.ndarray) -> float:
    """Plug-in I(X;Y) in nats from two code vectors (numpy, independent of the kernels)."""
    joint = np.zeros((x.max() + 1, y.max() + 1))
    np.add.at(joint, (x, y), 1)
    p = joint / len(x)
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())


def scipy_null_mean(x_sizes: np.ndarray, y_sizes: np.ndarray) -> float:
    """Exact E[plug-in MI] under a random permutation, cell by cell with scipy's pmf."""
    n = int(x_sizes.sum())
    xlogx = lambda k: k * np.log(np.maximum(k, 1))  # noqa: E731
    cells = 0.0
    for a in x_sizes[x_sizes > 0]:
        for m in y_sizes[y_sizes > 0]:
            k = np.arange(0, min(a, m) + 1)
            cells += (hypergeom.pmf(k, n, m, a) * xlogx(k)).sum()
    marg = xlogx(x_sizes).sum() + xlogx(y_sizes).sum()
    return (cells - marg) / n + np.log(n)


def test_pair_null_mean_is_the_mean_over_every_permutation():
    rng = np.random.default_rng(0)
    n = 7  # 5,040 permutations, all enumerated
    perms = np.array(list(itertools.permutations(range(n))))
    for _ in range(4):
        x, y = rng.integers(0, 3, n), rng.integers(0, 4, n)
        brute = np.mean([plugin_mi(x, y[p]) for p in perms])
        exact = pair_null_means(
            np.bincount(x, minlength=4)[None], np.bincount(y, minlength=4)[None]
        )
        assert exact[0] == pytest.approx(brute, abs=1e-12)


def test_pair_null_mean_matches_scipy_and_sampled_permutations():
    rng = np.random.default_rng(1)
    n, bins = 359, 20
    x = np.minimum((rng.exponential(size=(3, n)) * 4).astype(int), bins - 1)  # ReLU-like
    y = rng.integers(0, bins, (3, n))
    sx, sy = bin_sizes(x.astype(np.uint8), bins), bin_sizes(y.astype(np.uint8), bins)
    exact = pair_null_means(sx, sy)
    for p in range(3):
        assert exact[p] == pytest.approx(scipy_null_mean(sx[p], sy[p]), rel=1e-9)
        sampled = [plugin_mi(x[p], rng.permutation(y[p])) for _ in range(400)]
        assert exact[p] == pytest.approx(np.mean(sampled), abs=4 * np.std(sampled) / 20)
    assert 0.2 < exact.min() and exact.max() < 0.6  # the bias level at B = 20, N = 359


def _plan(n_samples: int, bins: int) -> Plan:
    return Plan(
        store="", layers=(), segments=(), labels=np.zeros(n_samples, np.int64), n_classes=1,
        summary_codes=np.zeros(0), pairs=(), pca_rows=np.zeros(0), perms=np.zeros((0, 0)),
        sizes={}, options=Options(bins=bins, topk=(), pca_components=1, seed=0),
    )  # fmt: skip


def test_epoch_step_layer_mi_null_is_the_mean_of_its_pairs_nulls():
    rng = np.random.default_rng(2)
    n, bins = 120, 6
    pair_counts = (5, 3, 4)  # layers with fewer channels than the pair sample: truncated pairs
    codes = [rng.integers(0, bins, (p, n)).astype(np.uint8) for p in pair_counts]
    results = [{"pair_codes": c, "pc1_codes": c[0]} for c in codes]
    results.append({"pair_codes": None, "pc1_codes": None})  # a non-finite layer: NaN
    out = epoch_step(_plan(n, bins), results)
    null, mi = out["layer_mi_null"], out["layer_mi"]
    for a in range(3):
        for b in range(3):
            ca, cb = codes[a], codes[b] if a != b else np.roll(codes[a], -1, axis=0)
            p = min(len(ca), len(cb))
            ref = [scipy_null_mean(np.bincount(ca[i], minlength=bins),
                                   np.bincount(cb[i], minlength=bins)) for i in range(p)]  # fmt: skip
            assert null[a, b] == pytest.approx(np.mean(ref), rel=1e-5)
            raw = paired_mi(ca[:p].copy(), cb[:p].copy(), bins, xlogx_table(n)).mean()
            assert mi[a, b] == pytest.approx(raw, rel=1e-6)
    assert np.isnan(null[3]).all() and np.isnan(null[:, 3]).all()


def test_fig2_draws_layer_mi_minus_its_null_and_says_so(tmp_path):
    from analyzer.figures import load_runs
    from analyzer.figures.captions import caption
    from analyzer.figures.grouping import at_best
    from analyzer.figures.mi import fig2_layer_mi
    from tests.test_figures import VGG, mi_dataset, write

    paths = []
    for seed in (0, 1):
        ds = mi_dataset("vgg16", VGG, seed=seed)
        rng = np.random.default_rng(seed + 10)
        ds["layer_mi_null"] = (ds.layer_mi.dims, 0.3 + 0.05 * rng.random(ds.layer_mi.shape))
        paths.append(write(ds, tmp_path / f"s{seed}.zarr"))
    runs = load_runs(paths)
    fig = fig2_layer_mi(runs).figure
    trained, random = (ax.images[0].get_array() for ax in fig.axes[:2] if ax.images)
    corrected = runs.layer_mi - runs.layer_mi_null
    np.testing.assert_allclose(trained, at_best(corrected, runs).mean("run").values, rtol=1e-6)
    np.testing.assert_allclose(random, corrected.isel(epoch=0).mean("run").values, rtol=1e-6)
    assert "minus its permutation-null mean" in fig._suptitle.get_text()
    assert "null-corrected" in caption("fig2_layer_mi", 20, 2)
    # an MI Dataset from before the null existed: drawn raw, and the figure says so
    old = runs.drop_vars("layer_mi_null")
    fig = fig2_layer_mi(old).figure
    assert "raw plug-in MI, not null-corrected" in fig._suptitle.get_text()
    raw = next(ax for ax in fig.axes if ax.images).images[0].get_array()
    np.testing.assert_allclose(raw, at_best(old.layer_mi, old).mean("run").values, rtol=1e-6)


def test_every_figure_caption_says_raw_or_null():
    from analyzer.figures.captions import FIGURES, NULLS, caption

    assert set(NULLS) == set(FIGURES)
    for name in FIGURES:
        text = caption(name, 20, 2)
        assert "*Null:*" in text and any(
            w in NULLS[name] for w in ("raw", "null-corrected", "null shown", "no MI", "no null")
        ), name


def test_analysis_writes_layer_mi_null(tmp_path):
    from analyzer.mi_tensors import Options, analyze
    from tests.test_analyzer_scale import OPTS, make_store

    store = tmp_path / "run" / "activations.zarr"
    make_store(store, 2)
    analyze(store, tmp_path / "mi.zarr", Options(**OPTS))
    ds = xr.open_zarr(tmp_path / "mi.zarr")
    null = ds.layer_mi_null.values
    assert np.isfinite(null).all() and (null > 0).all()
    assert ds.layer_mi_null.attrs["units"] == "nat"
