"""End-to-end: the Snakemake DAG on generated data in a temporary directory."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = {
    "dataset": {"name": "synthetic", "image_size": 32, "n_train": 96, "n_val": 48, "noise": 0.3},
    "width": 0.125,
    "grid": {
        "arch": ["resnet18", "vgg16"],
        "activation": ["relu"],
        "regularizer": ["none"],
        "seed": [0, 1],
    },
    "train": {"epochs": 2, "lr": 0.02, "progress": False},
    "mi": {"bins": [10], "pair_samples": 8},
    "interventions": {
        "q": [0.25, 0.75],
        "random_draws": 2,
        "noise": [1.0],
        "class_q": [0.5],
        "layers": "last",
    },
    "figures": {"formats": ["png", "pdf"]},
    # Shwartz-Ziv & Tishby / Goldfeld et al. on the 12-bit task: one short twelve_bit_mlp run through train, analysis, figures
    "twelve_bit": {
        "enabled": True,  # off unless a config asks (config/config.yaml does)
        "seed": [0],
        "epochs": 20,
        "dump_count": 4,
        "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 512},
        "bin_sizes": [0.001, 0.1],
        "noise_betas": [0.05],
    },
}
CODE = (
    "Snakefile",
    "workflow",
    "analyzer",
    "trainer",
    "interventions",
    "latent_mi",
)  # a clone's code


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    code = workdir if (workdir / "Snakefile").exists() else ROOT  # a self-contained project
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(code / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run."""
    counts = {}
    for line in output.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def copy_project(workdir: Path) -> None:
    """The project as a user has it: code, config and results in one folder."""
    for name in CODE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, workdir / name)
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    copy_project(workdir)
    snakemake(workdir, "figures")
    return workdir


@pytest.mark.slow
def test_full_run_makes_figures_then_nothing_is_stale(workflow_dir):
    figs = workflow_dir / "results" / "default" / "figures" / "bins-10"
    assert (figs / "fig1_depth_mi.png").stat().st_size > 1000
    assert (
        workflow_dir / "results" / "default" / "mi" / "bins-10" / "resnet18-relu-none-s0.zarr"
    ).is_dir()
    dry = snakemake(workflow_dir, "-n", "figures")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    twelve_bit = workflow_dir / "results" / "default" / "twelve_bit"
    for name in (
        "twelve_bit_info_plane",
        "twelve_bit_binning_sensitivity",
        "twelve_bit_noisy_input_mi",
        "twelve_bit_clustering",
    ):
        assert (twelve_bit / "figures" / "bins-30" / f"{name}.png").stat().st_size > 1000
    mi = twelve_bit / "mi" / "bins-30" / "twelve_bit_mlp-tanh-beta0-s0.zarr"
    assert {"layer_input_mi", "noisy_input_mi", "cos_gap"} <= set(xr.open_zarr(mi).data_vars)


@pytest.mark.slow
def test_bad_twelve_bit_key_fails_validation_with_one_clear_line(workflow_dir, tmp_path):
    bad = {**TINY_CONFIG, "twelve_bit": {"activation": ["sigmoid"]}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = snakemake(workflow_dir, "-n", "twelve_bit", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    assert re.search(r"invalid config: .*'sigmoid' is not one of", proc.stdout + proc.stderr)


@pytest.mark.slow
def test_new_bin_count_schedules_only_analysis_and_figures(workflow_dir):
    dry = snakemake(
        workflow_dir, "-n", "figures", "--config", "mi={bins: [10, 6], pair_samples: 8}"
    )
    counts = job_counts(dry.stdout + dry.stderr)
    n_figures = len(
        list((workflow_dir / "results" / "default" / "figures" / "bins-10").glob("*.png"))
    )
    assert counts.get("analyze_run") == 4 and counts.get("figure") == n_figures == 10
    assert "train_run" not in counts


@pytest.mark.slow
def test_unknown_arch_fails_validation_with_one_clear_line(workflow_dir, tmp_path):
    bad = {**TINY_CONFIG, "grid": {**TINY_CONFIG["grid"], "arch": ["resnet18", "alexnet"]}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = snakemake(workflow_dir, "-n", "figures", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert re.search(r"invalid config: .*'alexnet' is not one of", text), text[-2000:]


@pytest.mark.slow
def test_notebook_reopens_results_and_redraws_a_figure(workflow_dir, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)
    for key, value in {
        "LATENT_MI_RESULTS": str(workflow_dir / "results" / "default"),
        "LATENT_MI_BINS": "10",
        "LATENT_MI_FIGDIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }.items():
        monkeypatch.setenv(key, value)  # undone after the test
    nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    ).execute()
    assert (tmp_path / "fig1_from_notebook.png").exists()


@pytest.mark.slow
def test_copied_project_dry_runs_to_nothing(workflow_dir, tmp_path):
    copy = tmp_path / "elsewhere" / "deeper" / "project"
    shutil.copytree(workflow_dir, copy, symlinks=True)  # copy2: modification times kept
    dry = snakemake(copy, "-n", "figures")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]


@pytest.mark.slow
def test_config_copy_with_other_bins_shares_the_trained_runs(workflow_dir, tmp_path):
    """The README's advice (copy the config, change mi.bins, --configfile it) trains nothing:
    trained runs are found by their identity settings, not by the config's name."""
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({**TINY_CONFIG, "mi": {**TINY_CONFIG["mi"], "bins": [6]}}))
    dry = snakemake(workflow_dir, "-n", "figures", "--configfile", str(mine))
    text = dry.stdout + dry.stderr
    counts = job_counts(text)
    assert counts.get("analyze_run") == 4 and counts.get("twelve_bit_analyze_run") == 1
    assert "train_run" not in counts and "twelve_bit_train_run" not in counts, counts
    assert "results/mine/mi/bins-6/resnet18-relu-none-s0.zarr" in text  # its own outputs
    assert re.search(r"results/runs/resnet18-relu-none-s0-[0-9a-f]{8}/done\.json", text)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", [{"progress": True}, {"live": True}, {"num_workers": 1}])
def test_runtime_keys_rerun_nothing(workflow_dir, runtime):
    """train.progress (display), train.live, workers: how a run runs, never a rerun (27.9)."""
    train = yaml.safe_dump({**TINY_CONFIG["train"], **runtime}, default_flow_style=True).strip()
    dry = snakemake(workflow_dir, "-n", "figures", "--config", f"train={train}")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]


@pytest.mark.slow
def test_editing_an_interventions_only_module_makes_exactly_the_interventions_stale(
    workflow_dir, tmp_path
):
    from latent_mi.code_inputs import code_inputs

    copy = tmp_path / "project"
    shutil.copytree(workflow_dir, copy, symlinks=True)  # copy2: modification times kept
    entries = (
        "analyzer.__main__",
        "analyzer.report.findings_report",
        "workflow/scripts/figures.py",
    )
    others = {f for entry in entries for f in code_inputs(copy, entry)}
    only = sorted(set(code_inputs(copy, "interventions.__main__")) - others)
    edited = copy / "interventions" / "experiments.py"
    assert edited in only
    edited.write_text(edited.read_text() + "\n# edited\n")
    dry = snakemake(copy, "-n", "figures")
    counts = job_counts(dry.stdout + dry.stderr)
    assert counts.get("interventions_run") == 4 and counts.get("transplant_pair") == 2, counts
    # and what reads their results; no training, no analysis
    assert set(counts) <= {
        "interventions_run",
        "transplant_pair",
        "findings_bins",
        "figure",
        "figures",
    }


@pytest.mark.slow
def test_move_runs_gives_old_layout_runs_the_names_the_workflow_asks_for(workflow_dir, tmp_path):
    """results/<config>/runs/<run>/ (the layout before shared runs) -> results/runs/<run>-<hash>/:
    the hash from the config each store records equals the workflow's."""
    from latent_mi import contract as C
    from latent_mi.move_runs import main as move_runs

    copy = tmp_path / "project"
    shutil.copytree(workflow_dir, copy, symlinks=True)  # copy2: modification times kept
    shared = copy / "results" / "runs"
    trained = sorted(p.parent.name for p in shared.glob(f"*/{C.DONE}"))
    assert len(trained) == 5  # 4 grid runs + 1 twelve_bit run
    old = copy / "results" / "default" / "runs"
    old.mkdir()
    for name in trained:  # back to the old layout
        (shared / name).rename(old / C.run_name(name))
    assert move_runs([str(copy / "results" / "default"), "--dry-run"]) == 0
    assert not list(shared.glob(f"*/{C.DONE}"))  # a dry run moves nothing
    assert move_runs([str(copy / "results" / "default")]) == 0
    assert sorted(p.parent.name for p in shared.glob(f"*/{C.DONE}")) == trained
    dry = snakemake(copy, "-n", "figures")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]


@pytest.mark.slow
def test_report_has_one_caption_per_figure_and_png_only(workflow_dir, tmp_path):
    from analyzer.figures.captions import FIGURES

    report = tmp_path / "report.html"
    snakemake(workflow_dir, "figures", "--report", str(report))
    html = report.read_text(errors="replace")
    for name in ("fig1_depth_mi", "fig5_knockouts", "info_plane"):
        assert FIGURES[name].title in html, name
    assert "10 bins" in html and "N = 4 runs" in html
    assert "fig1_depth_mi.pdf" not in html and "fig1_depth_mi.png" in html
    assert "latent-mi: latent mutual information" in html  # the workflow description


@pytest.mark.slow
def test_example_imagefolder_config_plans_torchvision_runs(tmp_path):
    """config/example-imagefolder.yaml validates and plans its grid (dry run, no data needed)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    example = ROOT / "config" / "example-imagefolder.yaml"
    dry = snakemake(tmp_path, "-n", "figures", "--configfile", str(example))
    text = dry.stdout + dry.stderr
    counts = job_counts(text)
    assert counts.get("train_run") == 4 and "twelve_bit_train_run" not in counts  # not asked
    assert re.search(r"results/runs/torchvision-mobilenet_v3_small-relu-none-s0-[0-9a-f]{8}/", text)
    assert "results/example-imagefolder/mi/bins-20/torchvision-mobilenet_v3_small" in text


def test_notebook_cells_have_ids_and_write_nothing_into_the_repo():
    """nbformat warns MissingIDFieldWarning for a cell without id; the Fig 1 cell must not
    default to saving into the notebook's folder (the repository)."""
    nbformat = pytest.importorskip("nbformat")
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("error")
        nb = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)
        nbformat.validate(nb)
    assert all(c.get("id") for c in nb.cells)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert '"LATENT_MI_FIGDIR", "."' not in code and "mkdtemp" in code
    assert "1/(P+1)" in nb.cells[0].source
