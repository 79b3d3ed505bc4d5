"""latent_mi.contract: the shared definitions, and that it stays torch-free."""

import subprocess
import sys

import numpy as np
import pytest

from latent_mi import contract as C


@pytest.mark.parametrize(
    "val_acc, best",
    [
        ([0.1, 0.5, 0.5, 0.2], 1),  # first maximum on ties
        ([np.nan, 0.3, 0.2], 1),  # NaN never wins
        ([0.2, np.inf, 0.3], 2),  # non-finite never wins
        ([np.nan, np.nan], 0),  # nothing finite: initialization
        ([0.4], 0),
    ],
)
def test_best_epoch(val_acc, best):
    assert C.best_epoch(val_acc) == best


@pytest.mark.parametrize("seed", range(5))
def test_running_rule_matches_best_epoch(seed):
    """The trainer's incremental rule (improves) picks best_epoch's epoch."""
    rng = np.random.default_rng(seed)
    v = np.round(rng.random(30), 1)
    v[rng.random(30) < 0.2] = np.nan
    best, best_acc = 0, v[0]
    for e in range(1, len(v)):
        if C.improves(v[e], best_acc):
            best, best_acc = e, v[e]
    assert best == C.best_epoch(v)


@pytest.mark.parametrize("n, expect", [(1, 1), (2, 1), (3, 1), (4, 2), (13, 5), (16, 6)])
def test_final_third(n, expect):
    layers = list(range(n))
    assert list(C.final_third(layers)) == layers[n - expect :]
    assert list(C.final_third(np.arange(n))) == layers[n - expect :]


def test_paths_and_transplant_recognition():
    assert C.run_dir("results/default", "r-0123abcd") == "results/runs/r-0123abcd"
    assert C.run_dir("/scratch/paper/", "r") == "/scratch/runs/r"
    assert C.runs_root("out") == "runs"
    assert C.done_path("results/runs/r") == "results/runs/r/done.json"
    assert C.run_name("vgg16-relu-none-s0-0a1b2c3d") == "vgg16-relu-none-s0"
    for name in ("vgg16-relu-none-s0", "mine-deadbeefs", "mine-DEADBEEF", "x-0a1b2c3"):
        assert C.run_name(name) == name  # no hash suffix: unchanged
    assert C.mi_path("results", 20, "r") == "results/mi/bins-20/r.zarr"
    p = C.transplant_path("results", 20, "a-s0", "a-s1")
    assert p == "results/interventions/bins-20/transplant-a-s0--a-s1.zarr"
    assert C.is_transplant(p)
    assert not C.is_transplant(C.interventions_path("results", 20, "a-s0"))
    assert str(C.checkpoint_path("x", "best")) == "x/checkpoints/best.pt"


def test_settings_hash_is_canonical_and_tells_settings_apart():
    import hashlib
    import json

    a = {"train": {"lr": 0.05, "epochs": 12}, "arch": "vgg16"}
    b = {"arch": "vgg16", "train": {"epochs": 12, "lr": 0.05}}  # same settings, other order
    assert C.settings_hash(a) == C.settings_hash(b)
    assert C.settings_hash(a) != C.settings_hash({**a, "train": {"lr": 0.05, "epochs": 13}})
    text = '{"arch":"vgg16","train":{"epochs":12,"lr":0.05}}'  # by hand: sorted, no spaces
    assert json.loads(text) == a
    assert C.settings_hash(a) == hashlib.sha256(text.encode()).hexdigest()[:8]
    assert C.trained_run_name("vgg16-relu-none-s0", a) == f"vgg16-relu-none-s0-{C.settings_hash(a)}"


def test_contract_imports_no_torch_or_numba():
    code = (
        "import sys, latent_mi.contract; "
        "bad = [m for m in ('torch', 'numba') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_settings_and_contract_import_no_numpy():
    """The settings table takes the site kinds from the contract and stays numpy-free."""
    code = "import sys, latent_mi.settings; sys.exit('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("arch", ["vgg16", "resnet18"])
def test_trainer_sites_have_contract_kinds(arch):
    """The kinds the trainer writes are the contract's, the ones the figures split by."""
    from analyzer.figures.depth import SPLIT_KINDS
    from latent_mi.settings import SETTINGS
    from trainer.models import build_model
    from trainer.sites import find_sites

    kinds = [s.kind for s in find_sites(build_model(arch, 10, width=0.125))]
    assert set(kinds) <= set(C.SITE_KINDS)
    if arch == "resnet18":  # per block: the branch, then the block output after the addition
        assert kinds == [C.SITE_BRANCH, C.SITE_POST_ADD] * 8
        assert set(SPLIT_KINDS) == set(kinds)
    else:
        assert kinds == [C.SITE_CONV_RELU] * 13
    assert set(SETTINGS["hsic.site_kinds"].default) <= set(C.SITE_KINDS)
