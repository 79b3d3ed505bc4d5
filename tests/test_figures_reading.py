"""Figures read without guessing (issue 26 item 9): one meaning per visual encoding, labels
that do not overlap, captions that count the runs actually drawn."""

import numpy as np
import pytest

from tests.test_figures import RESNET, VGG, mi_dataset, write


@pytest.fixture(scope="module")
def run_paths(tmp_path_factory):
    """resnet18 (branch / post-add sites) and vgg16 runs, 2 seeds, plus 2 HSIC runs."""
    tmp = tmp_path_factory.mktemp("runs")
    kinds = np.array(["branch" if n.endswith("branch") else "post-add" for n in RESNET], object)
    paths = []
    for arch, layers, reg in (
        ("resnet18", RESNET, "none"),
        ("vgg16", VGG, "none"),
        ("resnet18", RESNET, "hsic"),
    ):
        for seed in (0, 1):
            ds = mi_dataset(arch, layers, seed=seed, regularizer=reg)
            if arch == "resnet18":
                ds = ds.assign_coords(layer_kind=("layer", kinds))
            paths.append(write(ds, tmp / f"{arch}-{reg}-s{seed}.zarr"))
    return paths


@pytest.fixture(scope="module")
def vgg_and_resnet(run_paths):
    from analyzer.figures import load_runs

    return load_runs(run_paths)


def _styles(ax) -> dict[str, tuple]:
    """label -> (colour, line style, marker) of the labelled lines of an axes."""
    from matplotlib.colors import to_hex

    return {
        line.get_label(): (to_hex(line.get_color()), line.get_linestyle(), line.get_marker())
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }


def test_fig1_colour_is_the_site_kind_and_line_style_the_epoch_in_every_panel(vgg_and_resnet):
    from analyzer.figures import fig1_depth_mi

    fig = fig1_depth_mi(vgg_and_resnet).figure
    vgg = _styles(next(ax for ax in fig.axes if ax.get_title().startswith("vgg16")))
    res = _styles(next(ax for ax in fig.axes if ax.get_title().startswith("resnet18")))
    trained, random = vgg["trained (best epoch)"], vgg["random (epoch 0)"]
    assert trained[0] == random[0]  # one colour: trained/random is the line style
    assert trained[1] == "-" and random[1] == "--"
    post = res["trained (best epoch), post-add"]
    assert post[0] == res["random (epoch 0), post-add"][0] == trained[0]  # the main path
    branch = res["trained (best epoch), branch"]
    assert branch[0] == res["random (epoch 0), branch"][0] != post[0]
    assert branch[2] != post[2] and post[2] == trained[2]  # marker follows the kind too
    assert res["random (epoch 0), branch"][1] == "--" and branch[1] == "-"


def test_captions_count_the_runs_each_figure_draws():
    from analyzer.figures import caption
    from analyzer.figures.captions import runs_drawn

    keys = [("resnet18", a, "none") for a in ("relu", "tanh") for _ in range(2)]
    keys += [("vgg16", a, "none") for a in ("relu", "tanh") for _ in range(2)]
    keys += [("resnet18", "relu", "hsic")] * 2  # the default grid: 10 runs
    assert runs_drawn("fig1_depth_mi", keys) == 8  # Figs 1-3, 8: no regularized run
    assert runs_drawn("fig3_concentration", keys) == 8
    assert runs_drawn("info_plane", keys) == 10
    assert runs_drawn("fig9_hsic", keys) == 4  # resnet18 relu: CE and CE+HSIC
    text = caption("fig2_layer_mi", 20, keys)
    assert "N = 8 runs (2 of the 10 runs are regularized" in text
    assert "N = 10 runs." in caption("info_plane", 20, keys)
    assert "N = 4 runs (6 of the 10" in caption("fig9_hsic", 20, keys)
    assert "N = 7 runs." in caption("fig5_knockouts", 20, 7)  # a count as before


def test_cli_captions_count_drawn_runs(run_paths, tmp_path, capsys):
    from analyzer.figures.cli import main

    folder = run_paths[0].parent
    assert main([str(folder), "--out", str(tmp_path / "f"), "--names", "fig1_depth_mi"]) == 0
    assert "N = 4 runs (2 of the 6 runs are regularized" in capsys.readouterr().out


def test_noisy_mi_caption_names_no_bins():
    from analyzer.figures import caption

    first = caption("twelve_bit_noisy_input_mi", 30, 3).split("\n")[0]
    assert "bins" not in first and "N = 3 runs" in first


def test_twelve_bit_info_plane_layers_are_a_legend_not_overlapping_labels():
    """fc1/fc2/fc3 end at the same point (I(T;Y) = H(Y)): text labels there overlapped."""
    from analyzer.figures.twelve_bit import info_plane
    from tests.test_figures_ranges import twelve_bit_runs

    ds = twelve_bit_runs()
    end = ds.layer_label_mi.isel(epoch=-1)
    ds["layer_label_mi"] = ds.layer_label_mi.where(ds.epoch < 100, end.isel(layer=0))
    ds["layer_input_mi"] = ds.layer_input_mi.where(ds.epoch < 100, 1.0)  # one end point
    drawn = info_plane(ds)
    drawn._repr_png_()
    (ax,) = [a for a in drawn.figure.axes if a.get_legend() is not None]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fc1", "fc2", "fc3"]
    markers = {h.get_marker() for h in ax.get_legend().legend_handles}
    assert len(markers) == 3  # one marker shape per layer
    renderer = drawn.figure._get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text()]
    for i, a in enumerate(boxes):  # no text labels left to overlap
        assert not any(a.overlaps(b) for b in boxes[i + 1 :])


def test_twelve_bit_info_plane_title_names_the_binning_never_nan():
    from analyzer.figures.twelve_bit import info_plane
    from tests.test_figures_ranges import twelve_bit_runs

    ds = twelve_bit_runs()  # combined runs of differing binning: no layer_binning attrs
    title = info_plane(ds).figure.get_suptitle().replace("\n", " ")  # wrapped
    assert "nan" not in title and "attrs layer_binning" in title
    ds.attrs["layer_binning"] = "fixed bin size b = 0.0667: bin = floor(t / b) per unit"
    assert "b = 0.0667" in info_plane(ds).figure.get_suptitle().replace("\n", " ")
