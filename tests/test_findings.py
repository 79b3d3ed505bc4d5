"""The findings report on hand-built MI Datasets and intervention results with known answers."""

import json

import numpy as np
import xarray as xr

from analyzer.report.findings import epochs_to_fraction, verdict
from analyzer.report.findings_report import KEYS_ORDER, main, measure

E, L = 5, 6  # epochs, layers


def mi_dataset(
    activation, regularizer, seed, *, rise=0.5, gini_change=-0.1, expand=0.3, fast=False
):
    rng = np.random.default_rng(seed)
    depth = np.arange(L) / (L - 1)
    label = np.full((E, L), 0.3) + 0.01 * rng.standard_normal((E, L))
    for e in range(1, E):
        label[e] += rise * depth * e / (E - 1)
    null = np.full((E, L), 0.25)
    gini = np.full((E, L), 0.3) + np.linspace(0, gini_change, E)[:, None]
    sign = 1 if activation == "relu" else -1
    input_mi = 2.0 + sign * expand * np.linspace(0, 1, E)[:, None] * np.ones((E, L))
    val_acc = (
        np.array([0.1, 0.9, 0.95, 0.97, 0.98]) if fast else np.array([0.1, 0.3, 0.6, 0.8, 0.98])
    )
    dims = ("epoch", "layer")
    return xr.Dataset(
        {
            "label_mi": (dims, label),
            "label_mi_null": (dims, null),
            "gini": (dims, gini),
            "input_mi": (dims, input_mi),
            "val_acc": (("epoch",), val_acc),
        },
        coords={
            "epoch": np.arange(E),
            "layer": np.array([f"l{i}" for i in range(L)], dtype=object),
            "run": np.array(f"resnet18-{activation}-{regularizer}-s{seed}", dtype=object),
            "arch": np.array("resnet18", dtype=object),
            "activation": np.array(activation, dtype=object),
            "regularizer": np.array(regularizer, dtype=object),
            "seed": seed,
            "bins": 20,
        },
    )


def knockouts(seed, top_gap=0.3):
    rng = np.random.default_rng(seed)
    sel = ["top", "random", "bottom"]
    variants = ["zero", "energy"]
    acc = np.full((1, 2, 3, 2, 2), np.nan)
    acc[:, :, 0, :, 0] = 0.5  # top
    acc[:, :, 1, :, :] = 0.5 + top_gap  # random draws
    acc[:, :, 2, :, 0] = 0.95  # bottom
    acc[:, :, 1, 1, :] = 0.5 + (0.05 if seed == 0 else -0.01)  # energy: sign differs by seed
    acc += 0.001 * rng.standard_normal(acc.shape)
    return xr.Dataset(
        {
            "accuracy": (("layer", "q", "selection", "variant", "draw"), acc),
            "baseline_accuracy": ((), 0.97),
        },
        coords={
            "layer": ["l5"],
            "q": [0.25, 0.5],
            "selection": sel,
            "variant": variants,
            "draw": [0, 1],
        },
    )


def runs():
    mi = [mi_dataset(a, "none", s) for a in ("relu", "tanh") for s in (0, 1, 2)]
    mi += [mi_dataset("relu", "hsic", s, fast=True) for s in (0, 1, 2)]
    return mi


def test_verdict_rule():
    assert verdict([0.2, 0.3, 0.25])[0] == "reproduced"
    assert verdict([-0.1, 0.3])[0] == "inconclusive"
    # a mean <= 0 whose interval contains 0 is inconclusive, not a reversal
    assert verdict([-0.2, -0.1, 0.05])[0] == "inconclusive"
    assert verdict([-20.6, 17.6, -5.0])[0] == "inconclusive"
    # an interval wholly below 0 is a significant reversal
    assert verdict([-0.08, -0.05, -0.02, -0.04])[0] == "contradicted"
    assert verdict([])[0] == "not measured"
    # one value has no interval: nothing can be inferred from it
    assert verdict([0.1])[:3] == ("inconclusive", 0.1, None)


def test_epochs_to_fraction():
    assert epochs_to_fraction(np.arange(5), np.array([0.1, 0.5, 0.94, 0.99, 1.0])) == 3
    assert epochs_to_fraction(np.arange(3), np.array([0.1, 0.5, np.nan])) != 0


def test_findings_on_known_answers():
    found = {f.id: f for f in measure(runs(), [knockouts(0), knockouts(1), knockouts(2)])}
    assert found["label_mi_rises_with_depth"].verdict == "reproduced"
    assert np.isclose(found["label_mi_rises_with_depth"].null, 0.0)
    # the statistic is bias-corrected: rise of (label - null), here the rise of label itself
    assert abs(found["label_mi_rises_with_depth"].statistic - 0.5 * (0.9 - 0.1)) < 0.05
    assert found["trained_above_random"].verdict == "reproduced"
    assert found["input_mi_depends_on_activation"].verdict == "reproduced"
    assert np.isclose(found["input_mi_depends_on_activation"].statistic, 2 * 0.3 * 1.0, atol=1e-6)
    assert found["input_mi_depends_on_activation"].runs == 6
    assert found["concentration_rises_late"].verdict == "contradicted"  # Gini falls here
    assert found["knockout_top_vs_random"].verdict == "reproduced"
    assert np.isclose(found["knockout_top_vs_random"].statistic, 0.3, atol=0.01)
    assert found["knockout_top_vs_bottom"].verdict == "reproduced"
    assert found["knockout_energy_preserving"].verdict == "inconclusive"
    assert found["knockout_per_class"].verdict == "not measured"
    assert found["transplants_do_not_transfer"].verdict == "not measured"
    # findings 1-4 rest on the CE runs only (6 of the 9 runs)
    assert found["label_mi_rises_with_depth"].runs == 6
    hsic = found["hsic_speeds_convergence"]
    assert hsic.verdict == "reproduced" and hsic.statistic == 4 - 2 and hsic.runs == 6


def test_depth_finding_not_reproduced_when_only_the_bias_rises():
    mi = [mi_dataset("relu", "none", s, rise=0.0) for s in (0, 1, 2)]
    for ds in mi:  # the raw MI rises with depth only by as much as the null does
        ramp = np.linspace(0, 0.2, L)[None, :]
        ds["label_mi"] = ds.label_mi + ramp
        ds["label_mi_null"] = ds.label_mi_null + ramp
    found = {f.id: f for f in measure(mi, [])}
    depth = found["label_mi_rises_with_depth"]
    assert depth.verdict in ("contradicted", "inconclusive") and abs(depth.statistic) < 0.02
    assert depth.null > 0.1
    assert found["input_mi_depends_on_activation"].verdict == "not measured"
    assert found["hsic_speeds_convergence"].verdict == "not measured"


def test_report_files_have_the_exact_schema(tmp_path):
    paths = []
    for i, ds in enumerate(runs()):
        paths.append(str(tmp_path / f"mi{i}.zarr"))
        ds.to_zarr(paths[-1])
    iv = tmp_path / "iv.zarr"
    knockouts(0).to_zarr(iv)
    out = tmp_path / "findings" / "bins-20"
    assert main(["--mi", *paths, "--interventions", str(iv), "--out", str(out)]) == 0
    doc = json.loads((tmp_path / "findings" / "bins-20.json").read_text())
    assert list(doc) == ["findings"] and len(doc["findings"]) == 10
    verdicts = {"reproduced", "contradicted", "inconclusive", "not measured"}
    for f in doc["findings"]:
        assert list(f) == list(KEYS_ORDER) and f["verdict"] in verdicts
    md = (tmp_path / "findings" / "bins-20.md").read_text()
    assert "bins = 20" in md and "hsic_speeds_convergence" in md
    assert not list((tmp_path / "findings").glob(".*tmp*"))


def test_report_never_overwrites_a_foreign_file(tmp_path):
    path = tmp_path / "mi.zarr"
    runs()[0].to_zarr(path)
    (tmp_path / "bins-20.json").write_text("my notes")
    rc = main(["--mi", str(path), "--out", str(tmp_path / "bins-20")])
    assert rc == 1 and (tmp_path / "bins-20.json").read_text() == "my notes"
    assert main(["--mi", str(path), "--out", str(tmp_path / "again")]) == 0
    assert main(["--mi", str(path), "--out", str(tmp_path / "again")]) == 0  # our own: replaced


def test_report_states_the_data_training_outcome_and_groups(tmp_path):
    mi = runs()
    mi += [mi_dataset("relu", "none", s).assign_coords(arch="vgg16") for s in (0, 1, 2)]
    for ds in mi[-3:]:  # this group stays at chance (3 classes)
        ds["val_acc"] = ds.val_acc * 0 + 0.333
    mi = [ds.assign_coords(label=[0, 1, 2], dataset="digits") for ds in mi]
    paths = []
    for i, ds in enumerate(mi):
        paths.append(str(tmp_path / f"mi{i}.zarr"))
        ds.to_zarr(paths[-1])
    out = tmp_path / "findings" / "bins-20"
    assert main(["--mi", *paths, "--out", str(out)]) == 0
    md = (tmp_path / "findings" / "bins-20.md").read_text()
    assert "## Data and training outcome" in md and "digits" in md
    assert "vgg16/relu did not learn" in md and "resnet18/relu did not learn" not in md
    assert "| vgg16/relu | `label_mi_rises_with_depth` |" in md
    assert "| resnet18/tanh | `label_mi_rises_with_depth` |" in md
