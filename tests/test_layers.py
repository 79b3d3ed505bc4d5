"""latent_mi.layers.last_layer on combined VGG + ResNet runs (issue 26 item 10)."""

import numpy as np
import pytest
import xarray as xr

from tests.test_figures import RESNET, VGG, mi_dataset, write


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(each run's own Dataset, the combined Dataset): VGG and ResNet, 2 seeds each."""
    from analyzer.figures import load_runs

    tmp = tmp_path_factory.mktemp("runs")
    own = [
        mi_dataset(arch, layers, seed=seed)
        for arch, layers in (("vgg16", VGG), ("resnet18", RESNET))
        for seed in (0, 1)
    ]
    paths = [write(ds, tmp / f"{i}.zarr") for i, ds in enumerate(own)]
    return own, load_runs(paths)


def test_last_layer_picks_each_runs_own_deepest_site(runs):
    from latent_mi.layers import last_layer

    own, ds = runs
    assert np.isnan(ds.label_mi.isel(layer=-1).values).any()  # the positional pick fails
    got = last_layer(ds.label_mi)
    assert got.dims == ("run", "epoch")
    for i, run in enumerate(own):  # brute force: the run's own site of largest depth
        deepest = str(run.layer.values[int(np.argmax(run.depth.values))])
        assert str(got.layer.values[i]) == deepest
        np.testing.assert_array_equal(got.isel(run=i).values, run.label_mi.sel(layer=deepest))
    assert [str(v) for v in got.layer.values] == ["conv13", "conv13", *["layer4.1.out"] * 2]


def test_last_layer_without_depth_uses_the_last_finite_layer_and_names_empty_runs(runs):
    from latent_mi.layers import last_layer

    _, ds = runs
    da = ds.label_mi.drop_vars("depth")
    got = last_layer(da.isel(epoch=-1))
    np.testing.assert_array_equal(got.values, last_layer(ds.label_mi).isel(epoch=-1).values)
    one = last_layer(ds.isel(run=0).label_mi)  # one run: a scalar layer coord
    assert str(one.layer.values) == "conv13" and one.dims == ("epoch",)
    empty = da.where(da.run != da.run.values[1])
    with pytest.raises(ValueError, match=str(ds.run.values[1])):
        last_layer(empty)
    with pytest.raises(ValueError, match="no 'layer' dim"):
        last_layer(xr.DataArray([1.0], dims="epoch", name="val_acc"))


def test_readme_jupyter_snippet_runs_with_last_layer(tmp_path):
    """The README's Jupyter block (load_runs, last_layer) runs as written on generated runs."""
    import os
    import re
    import subprocess
    import sys

    from tests.test_figures import ROOT

    mi = tmp_path / "results" / "default" / "mi" / "bins-20"
    mi.mkdir(parents=True)
    for arch, layers in (("vgg16", VGG), ("resnet18", RESNET)):
        for seed in (0, 1):
            ds = mi_dataset(arch, layers, seed=seed).assign_coords(run=f"{arch}-relu-none-s{seed}")
            write(ds, mi / f"{arch}-relu-none-s{seed}.zarr")
    text = (ROOT / "README.md").read_text()
    code = re.search(r"In Jupyter.*?```python\n(.*?)```", text, re.S).group(1)
    assert "last_layer(" in code
    code += "\nprint(list(map(str, last_layer(ds.label_mi).layer.values)))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last == str(["layer4.1.out", "layer4.1.out", "conv13", "conv13"])
