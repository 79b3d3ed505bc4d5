"""notebooks/explore.ipynb run on small generated MI Datasets (issue 26 item 10): its own
pyplot plot draws one site kind per line, the last-layer cell picks each run's own site,
and it writes nothing into the repository."""

from pathlib import Path

import numpy as np
import pytest

from tests.test_figures import RESNET, VGG, mi_dataset, write

ROOT = Path(__file__).resolve().parents[1]
KINDS = np.array(["branch" if n.endswith("branch") else "post-add" for n in RESNET], object)

# appended to the notebook: checks the state its cells left behind
CHECK = """
import numpy as np
for line in ax.get_lines():
    name = line.get_label().split(" | ")[0]
    g = next(g for k, g in groups.items() if figures.label(k) == name)
    kinds = figures.site_kinds(g)[np.asarray(line.get_xdata(), dtype=int)]
    assert len(set(kinds)) == 1, (line.get_label(), set(kinds))  # one site kind per line
labels = [line.get_label() for line in ax.get_lines()]
assert any(label.endswith("| branch") for label in labels), labels
assert any(label.endswith("| post-add") for label in labels), labels
sites = dict(zip(map(str, last.run.values), map(str, last.layer.values)))
assert all(site == ("conv13" if run.startswith("vgg16") else "layer4.1.out")
           for run, site in sites.items()), sites
assert np.isfinite(last.values).all()
"""


def test_notebook_plots_one_site_kind_per_line_and_picks_each_runs_last_layer(
    tmp_path, monkeypatch
):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    mi = tmp_path / "results" / "mi" / "bins-10"
    mi.mkdir(parents=True)
    for arch, layers in (("vgg16", VGG), ("resnet18", RESNET)):
        for seed in (0, 1):
            ds = mi_dataset(arch, layers, seed=seed)
            if arch == "resnet18":
                ds = ds.assign_coords(layer_kind=("layer", KINDS))
            write(ds, mi / f"{arch}-relu-none-s{seed}.zarr")
    nb = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK))
    before = sorted(p.name for p in (ROOT / "notebooks").iterdir())
    env = {
        "LATENT_MI_RESULTS": str(tmp_path / "results"),
        "LATENT_MI_BINS": "10",
        "LATENT_MI_FIGDIR": str(tmp_path / "figs"),
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "agg",
        "OMP_NUM_THREADS": "1",
    }
    for k, v in env.items():  # the kernel inherits this process's environment
        monkeypatch.setenv(k, v)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert (tmp_path / "figs" / "fig1_from_notebook.png").exists()
    assert sorted(p.name for p in (ROOT / "notebooks").iterdir()) == before
