"""Findings per estimator on hand-built MI Datasets whose answer differs by estimator."""

import json

import numpy as np
import xarray as xr

from analyzer.report import estimator_findings, findings_report, robustness
from tests.test_findings import E, L, mi_dataset


def with_estimators(ds: xr.Dataset, seed: int) -> xr.Dataset:
    """kNN: rises with depth (as the histogram); Gaussian: flat noise; probe: falls."""
    rng = np.random.default_rng(100 + seed)
    depth = np.arange(L) / (L - 1)
    grow = np.arange(E)[:, None] / (E - 1) * depth  # (epoch, layer)
    dims = ("epoch", "layer")
    return ds.assign(
        label_mi_knn=(dims, 0.2 + 0.4 * grow + 0.01 * rng.standard_normal((E, L))),
        label_mi_gaussian=(dims, 0.5 + 0.05 * rng.standard_normal((E, L))),
        label_mi_probe=(dims, 1.0 - 0.5 * grow + 0.01 * rng.standard_normal((E, L))),
    )


def runs(estimators=True):
    mi = [mi_dataset("relu", "none", s) for s in (0, 1, 2)]
    return [with_estimators(ds, i) for i, ds in enumerate(mi)] if estimators else mi


def test_each_finding_gets_a_verdict_per_estimator():
    found = estimator_findings.by_estimator(runs())
    depth = found["label_mi_rises_with_depth"]
    assert list(depth) == ["histogram", "kNN", "Gaussian", "probe"]  # present ones, in order
    assert [depth[e].verdict for e in depth] == [
        "reproduced",
        "reproduced",
        "inconclusive",
        "contradicted",
    ]
    # the histogram's statistic is the findings report's own (bias-corrected)
    own = {f.id: f for f in findings_report.measure(runs(), [])}
    assert depth["histogram"].statistic == own["label_mi_rises_with_depth"].statistic
    # the probe's: final third minus first third at the best epoch, uncorrected
    ds = runs()[0]
    row = ds.label_mi_probe.values[int(np.argmax(ds.val_acc.values))]
    first, last = row[:2].mean(), row[-2:].mean()
    stats = [
        r.label_mi_probe.values[int(np.argmax(r.val_acc.values))][-2:].mean()
        - r.label_mi_probe.values[int(np.argmax(r.val_acc.values))][:2].mean()
        for r in runs()
    ]
    assert np.isclose(depth["probe"].statistic, np.mean(stats)) and last < first
    text = estimator_findings.sentence("Label MI rises with depth", depth)
    assert text == (
        "Label MI rises with depth: reproduced under histogram and kNN; contradicted under "
        "probe; inconclusive under Gaussian"
    )


def test_report_says_per_estimator_and_default_report_is_unchanged(tmp_path):
    paths = {}
    for flag in (True, False):
        paths[flag] = []
        for i, ds in enumerate(runs(flag)):
            paths[flag].append(str(tmp_path / f"mi{flag}{i}.zarr"))
            ds.to_zarr(paths[flag][-1])
    for flag in (True, False):
        out = tmp_path / f"report{flag}" / "bins-20"
        assert findings_report.main(["--mi", *paths[flag], "--out", str(out)]) == 0
    doc = json.loads((tmp_path / "reportTrue" / "bins-20.json").read_text())
    per = doc["by_estimator"]["trained_above_random"]
    assert per["kNN"]["verdict"] == "reproduced" and per["probe"]["verdict"] == "contradicted"
    md = (tmp_path / "reportTrue" / "bins-20.md").read_text()
    assert "## Findings per estimator" in md and "| `label_mi_rises_with_depth` | kNN |" in md
    plain = json.loads((tmp_path / "reportFalse" / "bins-20.json").read_text())
    assert list(plain) == ["findings"]
    assert "per estimator" not in (tmp_path / "reportFalse" / "bins-20.md").read_text()


def test_robustness_summary_with_mi_says_per_estimator(tmp_path):
    sweeps, mis = [], []
    for i, ds in enumerate(runs()):
        sweep = ds[["label_mi", "label_mi_null", "gini", "input_mi", "val_acc"]]
        sweep = sweep.expand_dims(bins=[10, 20], fraction=[1.0], rule=["range"])
        sweep["val_acc"] = ds.val_acc
        sweeps.append(str(tmp_path / f"sweep{i}.zarr"))
        sweep.drop_vars("bins").assign_coords(bins=[10, 20]).to_zarr(sweeps[-1])
        mis.append(str(tmp_path / f"mi{i}.zarr"))
        ds.to_zarr(mis[-1])
    stem = tmp_path / "summary"
    argv = [*sweeps, "--out", str(stem), "--formats", "png", "--mi", *mis]
    assert robustness.main(argv) == 0
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["by_estimator"]["label_mi_rises_with_depth"]["Gaussian"]["verdict"] == (
        "inconclusive"
    )
    assert "## Findings per estimator" in (tmp_path / "summary.md").read_text()


def test_fig1_is_drawn_per_estimator(tmp_path):
    from analyzer.figures import load_runs
    from analyzer.figures.estimators import fig1_depth_by_estimator
    from tests.test_figures import EPOCHS, VGG
    from tests.test_figures import mi_dataset as figure_dataset

    paths, probes = [], []
    for seed in (0, 1, 2):
        ds = figure_dataset("vgg16", VGG, seed=seed)
        rng = np.random.default_rng(seed)
        for var in ("label_mi_knn", "label_mi_gaussian", "label_mi_probe"):
            ds[var] = (("epoch", "layer"), rng.random((EPOCHS, len(VGG))))
        probes.append(ds.label_mi_probe.values[2])  # best epoch: val_acc peaks at epoch 2
        paths.append(str(tmp_path / f"r{seed}.zarr"))
        ds.to_zarr(paths[-1])
    drawn = fig1_depth_by_estimator(load_runs(paths), out=tmp_path / "fig1e", formats=("png",))
    axes = drawn.figure.axes
    assert len(axes) == 4  # histogram, kNN, Gaussian, probe x one group
    names = [a.get_ylabel().split(", ")[1].split(" ")[0] for a in axes]
    assert names == ["histogram", "kNN", "Gaussian", "probe"]
    # the probe row's trained line: the seed mean of label_mi_probe at the best epoch
    np.testing.assert_allclose(axes[3].get_lines()[0].get_ydata(), np.mean(probes, axis=0))
    assert (tmp_path / "fig1e.png").exists()
