"""Every figure, drawn from the default grid's 2 seeds, plots only values its quantity can take
(issue 26 item 4): accuracies in [0, 1] (or [0, 100] %), losses, MI and entropies >= 0, Gini,
shares and normalized entropies in [0, 1], cosines in [-1, 1]. Checked on the data limits of
each drawn axis (lines, bands, markers) and on the heatmaps' values."""

import math

import numpy as np
import pytest
import xarray as xr

from tests.test_figures import (
    EPOCHS,
    RESNET,
    VGG,
    intervention_dataset,
    mi_dataset,
    not_flattened,
    write,
)

INF = math.inf
# (text in an axis label, the range its quantity can take); the first match wins; None: a
# difference or a corrected quantity (said so in the label), which may be negative
RANGES = (
    ("corrected", None),
    ("above the null", None),
    ("- null", None),  # e.g. Fig 2's "mean channel-pair MI - null [nat]"
    ("minus", None),
    ("dI(", None),
    ("within - between", (-2.0, 2.0)),
    ("cosine", (-1.0, 1.0)),
    ("drop", (-100.0, 100.0)),
    ("accuracy [%]", (0.0, 100.0)),
    ("accuracy", (0.0, 1.0)),
    ("loss", (0.0, INF)),
    ("Gini", (0.0, 1.0)),
    ("share", (0.0, 1.0)),
    ("normalized entropy", (0.0, 1.0)),
    ("I(", (0.0, INF)),
    ("MI", (0.0, INF)),
)


def quantity_range(label: str):
    """The range of the quantity an axis label names (None: unbounded or unknown)."""
    return next((rng for text, rng in RANGES if text in label), None)


def out_of_range(fig) -> list[str]:
    """'axis label: lo..hi outside the range' for each axis (and heatmap) that plots values
    its quantity cannot take."""
    bad = []

    def check(label, lo, hi):
        rng = quantity_range(label)
        if rng is None or not (np.isfinite(lo) and np.isfinite(hi)):
            return
        tol = 1e-9 * max(1.0, abs(lo), abs(hi))
        if lo < rng[0] - tol or hi > rng[1] + tol:
            bad.append(f"{label}: {lo:.4g}..{hi:.4g} outside {rng}")

    for ax in fig.axes:
        if hasattr(ax, "_colorbar"):  # a colorbar: checked with its image below
            continue
        check(ax.get_ylabel(), *ax.dataLim.intervaly)
        check(ax.get_xlabel(), *ax.dataLim.intervalx)
        for im in ax.images:
            if im.colorbar is not None:
                values = np.asarray(im.get_array(), dtype=float)
                check(im.colorbar.ax.get_ylabel(), np.nanmin(values), np.nanmax(values))
    return bad


def two_seed_run(arch, layers, activation, seed, regularizer="none"):
    """A run whose two seeds disagree as much as their quantities allow (near each bound),
    with an epoch-1 loss spike in seed 0."""
    ds = mi_dataset(arch, layers, activation, seed, regularizer)
    n = len(layers)
    lo = seed == 0
    level = np.full((EPOCHS, n), 0.01 if lo else 0.95)
    ds["gini"] = (("epoch", "layer"), level)
    ds["norm_entropy"] = (("epoch", "layer"), 1.0 - level + (0.0 if lo else 0.04))
    ds["topk_share"] = (("epoch", "layer", "k"), np.repeat(level[..., None], 2, axis=2))
    ds["label_mi"] = (("epoch", "layer"), 0.001 + (0.0 if lo else 0.6) * level)
    ds["input_mi"] = (("epoch", "layer"), np.full((EPOCHS, n), 0.01 if lo else 2.5))
    ds["layer_mi"] = (("epoch", "layer", "layer_b"), np.full((EPOCHS, n, n), 0.005 if lo else 1.2))
    for name, mid in (
        ("label_mi_null", 0.002),
        ("label_mi_null_lo", 0.0),
        ("label_mi_null_hi", 0.01),
    ):
        ds[name] = (("epoch", "layer"), np.full((EPOCHS, n), mid))
    acc = [0.1, 0.97, 0.98, 0.99] if lo else [0.1, 0.12, 0.15, 0.2]
    loss = [2.3, 400.0, 0.03, 0.02] if lo else [2.3, 2.2, 2.1, 2.0]
    ds["val_acc"], ds["val_loss"] = ("epoch", np.array(acc)), ("epoch", np.array(loss))
    ds["delta_input_mi"] = ((), -0.5 if lo else 0.5)
    return ds


@pytest.fixture(scope="module")
def default_grid(tmp_path_factory):
    """The default grid: resnet18, vgg16 x relu, tanh x seeds 0, 1; HSIC for resnet18 relu."""
    from analyzer.figures import load_runs

    tmp = tmp_path_factory.mktemp("grid")
    paths = []
    for arch, layers in (("resnet18", RESNET), ("vgg16", VGG)):
        for act in ("relu", "tanh"):
            regs = ("none", "hsic") if (arch, act) == ("resnet18", "relu") else ("none",)
            for reg in regs:
                for seed in (0, 1):
                    ds = two_seed_run(arch, layers, act, seed, reg)
                    paths.append(write(ds, tmp / f"{arch}-{act}-{reg}-s{seed}.zarr"))
    return load_runs(paths)


def test_every_mi_figure_stays_in_its_quantities_range_with_two_seeds(default_grid):
    from analyzer.figures import MI_FIGURES

    for name, draw in MI_FIGURES.items():
        fig = draw(default_grid).figure
        assert not out_of_range(fig), (name, out_of_range(fig))


def test_the_range_check_finds_what_unclipped_two_seed_bands_drew(default_grid, monkeypatch):
    """The check above can fail: with the earlier figures' 95% t-bands at 2 seeds (mean +-
    12.7 se, not clipped) it reports label MI < 0, accuracy outside [0, 1], loss < 0."""
    from analyzer.figures import depth, mi

    monkeypatch.setattr(depth, "MIN_BAND_SEEDS", 2)
    monkeypatch.setattr(mi, "bounds", lambda name: (None, None))
    bad = out_of_range(mi.fig1_depth_mi(default_grid).figure)
    assert any(b.startswith("I(T;Y)") for b in bad), bad
    bad = out_of_range(mi.fig9_hsic(default_grid).figure)
    assert any(b.startswith("validation accuracy") for b in bad), bad
    assert any(b.startswith("validation loss") for b in bad), bad


def test_fig9_two_seeds_loss_spike_does_not_flatten_the_rest(default_grid):
    from analyzer.figures.mi import fig9_hsic

    fig = fig9_hsic(default_grid).figure
    loss_ax = next(ax for ax in fig.axes if "loss" in ax.get_ylabel())
    acc_ax = next(ax for ax in fig.axes if "accuracy" in ax.get_ylabel())
    assert loss_ax.get_ylim()[0] > 0.0 and loss_ax.get_yscale() == "log"
    assert loss_ax.get_ylim()[1] >= 400.0  # the spike is shown, not cut
    assert not_flattened(loss_ax)  # and the rest is not flattened by it
    assert 0.0 <= acc_ax.get_ylim()[0] and acc_ax.get_ylim()[1] <= 1.06
    legend = [t.get_text() for t in acc_ax.get_legend().get_texts()]
    # epochs to 95% of the final accuracy: each seed (2 seeds), no interval beyond the epochs
    # run (was "4.0 [-8.7, 16.7]")
    assert legend and all("at epoch 1, 3 (each seed)" in t for t in legend), legend
    assert not any("[" in t.split("at epoch")[1] for t in legend)


def test_fig9_speed_interval_stays_within_the_epochs_run(default_grid):
    from analyzer.figures.mi import _speed, groups

    g = groups(default_grid)[("resnet18", "relu", "none")]
    three = g.isel(run=[0, 1, 0]).assign_coords(seed=("run", [0, 1, 2]))
    text = _speed(three)  # epochs 1, 3, 1: the t-interval alone reaches below epoch 0
    lo, hi = (float(v) for v in text.split("[")[1].rstrip("]").split(","))
    assert 0 <= lo <= hi <= 3 and text.startswith("1.7 [")


def twelve_bit_runs() -> xr.Dataset:
    """Two seeds of one 12-bit group, values at their bounds."""
    rng = np.random.default_rng(0)
    shape = (2, 4, 3)
    dims = ("run", "epoch", "layer")
    cos = np.stack([np.full(shape[1:], -1.0), np.full(shape[1:], 1.0)])
    ds = xr.Dataset(
        {
            "layer_input_mi": (dims, rng.random(shape) * 8.3),
            "layer_label_mi": (dims, rng.random(shape) * 0.69),
            "cos_within": (dims, cos),
            "cos_between": (dims, -cos),
            "cos_gap": (dims, 2 * cos),
        },
        coords={
            "epoch": [0, 1, 10, 100],
            "layer": ["fc1", "fc2", "fc3"],
            "seed": ("run", [0, 1]),
            "activation": "tanh",
            "noise_beta": 0.0,
            "bins": 30,
            "bin_size": [1e-3, 1e-1],
            "beta": [0.01, 0.1],
        },
    )
    ds["binned_input_mi"] = (dims + ("bin_size",), rng.random((*shape, 2)))
    for name in ("noisy_input_mi", "noisy_input_mi_upper", "noisy_input_mi_lower"):
        ds[name] = (dims + ("beta",), rng.random((*shape, 2)))
    return ds


def test_twelve_bit_and_intervention_figures_stay_in_range_with_two_seeds(tmp_path):
    from analyzer.figures import INTERVENTION_FIGURES
    from analyzer.figures.twelve_bit import TWELVE_BIT_FIGURES

    for name, draw in TWELVE_BIT_FIGURES.items():
        fig = draw(twelve_bit_runs()).figure
        assert not out_of_range(fig), (name, out_of_range(fig))
    paths = []
    for seed, acc in ((0, 0.0), (1, 1.0)):
        ds = intervention_dataset("relu", seed, acc)
        ds["accuracy"] = ds.accuracy.copy(
            data=np.where(ds.draw == 0, acc, 1.0 - acc) + 0 * ds.accuracy
        )
        paths.append(write(ds, tmp_path / f"resnet18-relu-none-s{seed}.zarr"))
    for name, draw in INTERVENTION_FIGURES.items():
        fig = draw(paths).figure
        assert not out_of_range(fig), (name, out_of_range(fig))


def test_fig9_loss_axis_cuts_only_an_outlier_and_says_so():
    """No spike: every loss is shown (the initial 2.3 too); a 400 spike: off scale, noted."""
    from matplotlib.figure import Figure

    from analyzer.figures.mi import robust_ylim

    epochs = np.arange(6)
    for spike, cut in ((2.5, False), (400.0, True)):
        ax = Figure().subplots()
        ax.plot(epochs, [2.3, spike, 0.9, 0.5, 0.3, 0.2])
        robust_ylim(ax)
        lo, hi = ax.get_ylim()
        assert lo >= 0.0 and (hi < 3.0 if cut else hi >= spike)
        notes = [t.get_text() for t in ax.texts]
        assert notes == (["off scale: up to 400 at epoch 1"] if cut else [])
        assert hi >= 2.3  # the initial loss stays visible
