"""analyzer.figures on small generated MI Datasets and intervention results."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
VGG = [f"conv{i}" for i in range(1, 14)]  # alphabetical order would put conv10 after conv1
RESNET = [f"layer{s}.{b}.{k}" for s in range(1, 5) for b in range(2) for k in ("branch", "out")]
EPOCHS = 4


def mi_dataset(arch, layers, activation="relu", seed=0, regularizer="none", bins=10):
    """An MI Dataset with the analyzer's dims and the variables the figures read."""
    rng = np.random.default_rng(seed)
    n, c = len(layers), 3
    e = np.arange(EPOCHS)
    depth = np.arange(n)
    label_mi = 0.1 * depth[None, :] * e[:, None] / EPOCHS + 0.01 * rng.random((EPOCHS, n))
    ds = xr.Dataset(
        {
            "label_mi": (("epoch", "layer"), label_mi),
            "input_mi": (("epoch", "layer"), 2.0 - 0.05 * depth[None, :] + 0 * label_mi),
            "layer_mi": (("epoch", "layer", "layer_b"), rng.random((EPOCHS, n, n))),
            "gini": (("epoch", "layer"), rng.random((EPOCHS, n))),
            "norm_entropy": (("epoch", "layer"), rng.random((EPOCHS, n))),
            "topk_share": (("epoch", "layer", "k"), rng.random((EPOCHS, n, 2))),
            "channel_label_mi": (("epoch", "layer", "channel"), rng.random((EPOCHS, n, c))),
            "val_acc": (("epoch",), np.array([0.1, 0.5, 0.8, 0.7])),
            "val_loss": (("epoch",), np.array([2.3, 1.5, 0.8, 0.9])),
            "delta_input_mi": ((), 0.1 * seed),
            "plateau_epoch": (("layer",), np.full(n, 1)),
            "post_plateau_slope": (("layer",), np.full(n, -0.01)),
        },
        coords={
            "epoch": e,
            "layer": np.array(layers, dtype=object),
            "layer_b": np.array(layers, dtype=object),
            "channel": np.arange(c),
            "k": np.array([5.0, 10.0]),
            "depth": ("layer", depth.astype(np.int32)),
            "n_channels": ("layer", np.full(n, c, dtype=np.int32)),
            "layer_kind": ("layer", np.array(["x"] * n, dtype=object)),
            "bins": bins,
            "run": f"{arch}-{activation}-{regularizer}-s{seed}",
            "arch": arch,
            "activation": activation,
            "regularizer": regularizer,
            "seed": seed,
            "dataset": "synthetic",
        },
    )
    return ds


def write(ds, path):
    """Strings as object arrays (as the analyzer writes them), quietly."""
    strings = {k: v.astype(object) for k, v in ds.variables.items() if v.dtype.kind == "U"}
    ds = ds.assign_coords({k: v for k, v in strings.items() if k in ds.coords})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", consolidated=True, zarr_format=3)
    return path


@pytest.fixture(scope="module")
def mixed_runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("mi")
    paths = []
    for arch, layers in (("vgg16", VGG), ("resnet18", RESNET)):
        for act in ("relu", "tanh"):
            for seed in (0, 1):
                paths.append(
                    write(
                        mi_dataset(arch, layers, act, seed), tmp_path / f"{arch}-{act}-s{seed}.zarr"
                    )
                )
    return paths


def test_load_runs_keeps_each_runs_depth_order_for_mixed_archs(mixed_runs):
    from analyzer.figures import load_runs

    ds = load_runs(mixed_runs)
    assert ds.sizes["layer"] == len(VGG) + len(RESNET)
    assert ds.depth.dtype.kind == "i"
    for i in range(ds.sizes["run"]):
        run = ds.isel(run=i)
        present = [
            str(n) for n, d in zip(run.layer.values, run.depth.values, strict=True) if d >= 0
        ]
        own = VGG if str(run.arch.values) == "vgg16" else RESNET
        assert present == own  # each run's layers in its own depth order
        depth = run.depth.values[run.depth.values >= 0]
        assert list(depth) == list(range(len(own)))
        # the values follow their layers: label_mi at the last epoch rises with depth
        lm = run.label_mi.isel(epoch=-1).sel(layer=own).values
        assert np.isfinite(lm).all() and np.all(np.diff(lm) > -0.02)


def test_groups_restore_each_archs_layers_and_list_every_run(mixed_runs):
    from analyzer.figures import groups, label, load_runs

    gs = groups(load_runs(mixed_runs))
    assert set(gs) == {(a, x, "none") for a in ("vgg16", "resnet18") for x in ("relu", "tanh")}
    g = gs[("vgg16", "relu", "none")]
    assert [str(n) for n in g.layer.values] == VGG
    assert "seeds 0, 1" in label(("vgg16", "relu", "none"), g)


def test_merge_layer_orders_refuses_conflicting_orders():
    from analyzer.figures import merge_layer_orders

    assert merge_layer_orders([["a", "c"], ["a", "b", "c"]]) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="differently"):
        merge_layer_orders([["a", "b"], ["b", "a"]])


def test_importing_figures_leaves_the_matplotlib_backend_alone():
    code = (
        "import matplotlib; matplotlib.use('svg'); import analyzer.figures, "
        "analyzer.figures.cli; import matplotlib as m; "
        "print(m.get_backend(), m.rcParams['figure.constrained_layout.use'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    assert out == ["svg", "False"]


def test_every_mi_figure_draws_and_says_its_bin_count(mixed_runs, tmp_path):
    from analyzer.figures import FIGURES, MI_FIGURES, load_runs

    ds = load_runs(mixed_runs)
    for name, draw in MI_FIGURES.items():
        drawn = draw(ds, tmp_path / name, ("png",))
        assert drawn.paths[0].stat().st_size > 1000
        title = drawn.figure.get_suptitle().replace("\n", " ")
        assert ("10 bins" in title) == FIGURES[name].binned, name  # bins only where used
        assert drawn._repr_png_().startswith(b"\x89PNG")


def test_info_plane_draws_every_seed_and_layer(mixed_runs):
    from analyzer.figures import info_plane, load_runs

    fig = info_plane(load_runs(mixed_runs)).figure
    ax = next(a for a in fig.axes if "vgg16 relu" in a.get_title())
    # per layer: one thin line per seed, the mean, two end markers
    assert len(ax.lines) == len(VGG) * (2 + 3)
    assert len({line.get_color() for line in ax.lines}) == len(VGG)


def intervention_dataset(activation, seed, accuracy, arch="resnet18"):
    q, sel, var = [0.25, 0.75], ["top", "random", "bottom"], ["zero", "energy", "noise-1.0"]
    shape = (2, len(q), len(sel), len(var), 2)
    labels = np.arange(3)
    return xr.Dataset(
        {
            "accuracy": (("layer", "q", "selection", "variant", "draw"), np.full(shape, accuracy)),
            "baseline_accuracy": ((), 0.9),
            "class_accuracy": (
                ("layer", "class_q", "selection", "label", "draw"),
                np.full((2, 1, 3, 3, 2), accuracy),
            ),
            "class_baseline": (("label",), np.full(3, 0.9)),
            "cover_accuracy": (("cover_layer", "cover_q"), np.full((1, 2), accuracy)),
            "redundant_accuracy": (("cover_layer", "cover_q"), np.full((1, 2), accuracy)),
            "skip_gain_accuracy": (("gain",), np.full(3, accuracy)),
        },
        coords={
            "layer": ["a", "b"],
            "q": q,
            "selection": sel,
            "variant": var,
            "draw": [0, 1],
            "class_q": [0.5],
            "label": labels,
            "cover_layer": ["b"],
            "cover_q": q,
            "gain": [0.0, 0.5, 1.0],
            "arch": arch,
            "activation": activation,
            "regularizer": "none",
            "seed": seed,
            "run": f"{arch}-{activation}-none-s{seed}",
            "bins": 10,
        },
    )


def test_intervention_figures_never_mix_activations(tmp_path):
    from analyzer.figures import INTERVENTION_FIGURES

    paths = [
        write(intervention_dataset(act, s, acc), tmp_path / f"resnet18-{act}-none-s{s}.zarr")
        for act, acc in (("relu", 0.5), ("tanh", 0.7))
        for s in (0, 1)
    ]
    for act, acc in (("relu", 0.5), ("tanh", 0.7)):
        pair = intervention_dataset(act, 0, acc)[["arch", "activation", "regularizer", "seed"]]
        pair = pair.assign(
            transplant_accuracy=(("layer", "q", "selection", "draw"), np.full((2, 2, 3, 2), acc)),
            recipient_baseline=0.9,
        ).assign_coords(layer=["a", "b"], q=[0.25, 0.75], selection=["top", "random", "bottom"])
        name = f"transplant-resnet18-{act}-none-s0--resnet18-{act}-none-s1.zarr"
        paths.append(write(pair.assign_coords(bins=10), tmp_path / name))
    expected = {"relu": 40.0, "tanh": 20.0}  # drops in points; a mix would give 30
    for name, draw in INTERVENTION_FIGURES.items():
        fig = draw(paths, tmp_path / name, ("png",)).figure
        assert "10 bins" in fig.get_suptitle(), name
        for ax in fig.axes:
            for line in ax.lines:
                y = np.asarray(line.get_ydata(), dtype=float)
                assert not np.any(np.isclose(y, 30.0)), (name, ax.get_title())
    fig = INTERVENTION_FIGURES["fig5_knockouts"](paths).figure
    for ax in fig.axes:
        act = "relu" if "relu" in ax.get_title() else "tanh"
        assert "seeds 0, 1" in ax.get_title()
        top = ax.lines[0].get_ydata()
        np.testing.assert_allclose(top, expected[act])
    fig = INTERVENTION_FIGURES["fig6_class_knockouts"](paths).figure
    for ax in fig.axes:
        act = "relu" if "relu" in ax.get_title() else "tanh"
        heights = [p.get_height() for p in ax.patches]
        np.testing.assert_allclose(heights, expected[act])
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]


def test_registry_covers_every_drawn_figure_and_captions_say_bins():
    from analyzer.figures import DRAW, FIGURES, caption

    assert set(DRAW) == set(FIGURES)
    text = caption("fig5_knockouts", 20, 8)
    assert "20 bins" in text and "N = 8 runs" in text and "Estimator" in text


def test_captions_name_bins_only_where_used_and_build_without_docutils_warnings():
    import docutils.core

    from analyzer.figures import FIGURES, caption

    assert "bins" not in caption("twelve_bit_noisy_input_mi", 30, 3).split("\n")[0]
    assert "bins" not in caption("fig9_hsic", 30, 3).split("\n")[0]
    assert "30 bins" in caption("fig2_layer_mi", 30, 3)
    for name in FIGURES:
        doc = docutils.core.publish_doctree(
            caption(name, 20, 4), settings_overrides={"report_level": 2, "halt_level": 2}
        )  # halt_level 2: a warning raises
        assert doc.astext()


def test_cli_draws_a_by_hand_set_of_runs(mixed_runs, tmp_path):
    out = tmp_path / "figs"
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer.figures", str(mixed_runs[0].parent), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "fig1_depth_mi.png").exists() and not (out / "fig9_hsic.png").exists()
    assert not (out / "fig5_knockouts.png").exists()  # no --interventions given
    bad = subprocess.run(
        [sys.executable, "-m", "analyzer.figures", str(tmp_path / "nope"), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "nope" in bad.stderr


def test_depth_figures_have_site_ticks_null_band_kind_series_and_t_intervals(tmp_path):
    from analyzer.core.stats import t_band
    from analyzer.figures import fig1_depth_mi, load_runs

    paths = []
    kinds = ["branch" if name.endswith("branch") else "post-add" for name in RESNET]
    for seed in (0, 1, 2):
        ds = mi_dataset("resnet18", RESNET, seed=seed)
        null = np.full((EPOCHS, len(RESNET)), 0.05)
        ds["label_mi_null"] = (("epoch", "layer"), null)
        ds["label_mi_null_lo"] = (("epoch", "layer"), null - 0.01)
        ds["label_mi_null_hi"] = (("epoch", "layer"), null + 0.01)
        ds = ds.assign_coords(layer_kind=("layer", np.array(kinds, dtype=object)))
        paths.append(write(ds, tmp_path / f"r{seed}.zarr"))
    ds = load_runs(paths)
    ax = fig1_depth_mi(ds).figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == RESNET  # integer ticks, site names
    assert list(ax.get_xticks()) == list(range(len(RESNET)))
    labels = [line.get_label() for line in ax.get_lines()]
    for series in ("trained (best epoch), branch", "trained (best epoch), post-add"):
        assert series in labels
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("permutation null" in t for t in legend)
    # the post-add series: x at the post-add sites, y the seed mean at the best epoch (2)
    line = ax.get_lines()[labels.index("trained (best epoch), post-add")]
    idx = [i for i, k in enumerate(kinds) if k == "post-add"]
    assert list(line.get_xdata()) == idx
    values = ds.label_mi.isel(epoch=2).values[:, idx]
    assert np.allclose(line.get_ydata(), t_band(values)[0])


def test_readme_reading_the_figures_is_the_registry():
    from analyzer.figures.captions import readme_with_section

    text = (ROOT / "README.md").read_text()
    assert readme_with_section(text) == text, "python -m analyzer.figures --write-readme README.md"


def test_cli_unwritable_out_and_truncated_chunk_are_one_line(mixed_runs, tmp_path, capsys):
    import errno

    import matplotlib.figure

    from analyzer.figures.cli import main

    blocked = tmp_path / "file"
    blocked.write_text("x")  # --out below a file: NotADirectoryError
    assert main([str(mixed_runs[0]), "--out", str(blocked / "figs")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0] and str(blocked) in err[0]

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.png"))

    mp = pytest.MonkeyPatch()
    mp.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    try:
        assert main([str(mixed_runs[0]), "--out", str(tmp_path / "figs")]) == 1
    finally:
        mp.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]

    import shutil

    damaged = shutil.copytree(mixed_runs[0], tmp_path / "damaged.zarr")
    chunk = next(p for p in sorted((damaged / "label_mi" / "c").rglob("*")) if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:5])  # a truncated chunk
    assert main([str(damaged), "--out", str(tmp_path / "figs2")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(damaged) in err[0]


def test_bands_only_with_three_seeds_each_seed_drawn_and_clipped_to_range():
    from matplotlib.figure import Figure

    from analyzer.figures.depth import bounds, ci_band

    ax = Figure().subplots()
    two = np.array([[0.2, 0.9], [0.6, 0.95]])  # 2 seeds: t-interval mean +- 12.7 se
    ci_band(ax, np.arange(2), two, limits=bounds("val_acc"))
    assert not ax.collections and len(ax.get_lines()) == 3  # mean + each seed, no band
    ax = Figure().subplots()
    three = np.array([[0.1, 0.9], [0.9, 0.99], [0.5, 0.2]])
    ci_band(ax, np.arange(2), three, limits=bounds("val_acc"))
    (poly,) = ax.collections
    ys = poly.get_paths()[0].vertices[:, 1]
    assert ys.min() >= 0.0 and ys.max() <= 1.0
    assert bounds("label_mi") == (0.0, None) and bounds("gini") == (0.0, 1.0)


def test_fig9_only_pairs_with_hsic_runs_and_a_loss_spike_does_not_flatten(tmp_path):
    from analyzer.figures import load_runs
    from analyzer.figures.mi import fig9_hsic

    paths = []
    for act in ("relu", "tanh"):
        for reg in ("none", "hsic") if act == "relu" else ("none",):
            for seed in (0, 1, 2):
                ds = mi_dataset("resnet18", RESNET, act, seed, regularizer=reg)
                loss = ds.val_loss.values.copy()
                loss[1] = 400.0  # an epoch-1 spike
                ds["val_loss"] = ("epoch", loss)
                paths.append(write(ds, tmp_path / f"{act}-{reg}-{seed}.zarr"))
    fig = fig9_hsic(load_runs(paths)).figure
    axes = [ax for ax in fig.axes if ax.get_lines()]
    assert len(fig.axes) == 2  # one (arch, activation) with HSIC: one column, no empty panel
    loss_ax = axes[1]
    assert not_flattened(loss_ax)  # the 400 spike does not flatten the rest


def late_share(ax) -> float:
    """Share of the axes' height that the lines' values past epoch 1 span (display space)."""
    pts = np.concatenate([ln.get_xydata() for ln in ax.get_lines()])
    pts = pts[(pts[:, 0] > 1) & np.isfinite(pts[:, 1])]
    y = ax.transAxes.inverted().transform(ax.transData.transform(pts))[:, 1]
    return float(np.clip(y, 0, 1).max() - np.clip(y, 0, 1).min())


def not_flattened(ax) -> bool:
    """Every value is on the axes (nothing cut), and the values past epoch 1 span at least
    10x the height a linear axis from 0 to the largest value would give them."""
    ys = np.concatenate([np.asarray(ln.get_ydata(), dtype=float) for ln in ax.get_lines()])
    lo, hi = ax.get_ylim()
    inside = (ys[np.isfinite(ys)] >= lo).all() and (ys[np.isfinite(ys)] <= hi).all()
    linear = ax.figure.add_subplot(label="linear")  # the flattening reference
    for ln in ax.get_lines():
        linear.plot(ln.get_xdata(), ln.get_ydata())
    linear.set_ylim(0, np.nanmax(ys))
    ratio = late_share(ax) / late_share(linear)
    linear.remove()
    return bool(inside and ratio >= 10)


def test_fig2_ticks_are_site_names(mixed_runs):
    from analyzer.figures import load_runs
    from analyzer.figures.mi import fig2_layer_mi

    ds = load_runs(mixed_runs[-2:])  # one resnet18 group
    ax = fig2_layer_mi(ds).figure.axes[0]
    names = [str(n) for n in ds.layer.values]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names


def test_no_axis_uses_an_offset():
    from analyzer.figures.drawing import finish, new_figure

    fig, axes = new_figure(1, 1, 3, 2)
    axes[0, 0].plot([1, 2, 3], [8.317, 8.3170001, 8.3170002])  # 0.0002-nat wiggles at 8.317
    drawn = finish(fig, "t", None, ())
    drawn._repr_png_()  # draws: the formatter picks its offset here
    assert drawn.figure.axes[0].yaxis.get_major_formatter().get_offset() == ""


def test_suptitle_wraps_to_a_narrow_figure():
    from analyzer.figures.drawing import finish, new_figure

    fig, _ = new_figure(1, 1, 3, 2)  # 3 inches wide
    title = "Fig 6: targeted knockouts of the top channels against random ones, per layer"
    drawn = finish(fig, title, None, ())
    drawn._repr_png_()
    text = drawn.figure._suptitle
    assert "\n" in text.get_text() and text.get_text().replace("\n", " ") == title
    box = text.get_window_extent(drawn.figure._get_renderer())
    assert box.x0 >= 0 and box.x1 <= drawn.figure.bbox.width + 1  # inside the figure
