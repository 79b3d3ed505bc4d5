"""trainer.Recorder: a hand-written loop gives the trainer's activation store."""

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
import zarr
from torch.utils.data import DataLoader

import interventions as iv
from analyzer.cli import main as analyze
from latent_mi.outputs import LockError
from trainer import Recorder
from trainer.example_model import make_data, make_model

ROOT = Path(__file__).resolve().parents[1]
SITES = ["block2", "act", "block1.add", "block1"]  # any order; module and fx node names


def _train_epoch(model, loader, opt):
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


@torch.no_grad()
def manual_gap(model, x):
    """GAP of each site, from the model's own modules, written out by hand."""
    model.eval()
    act = model.act(model.stem(x))
    b = model.block1
    add = x1 = act + b.bn2(b.conv2(torch.relu(b.bn1(b.conv1(act)))))
    out1 = torch.relu(add)
    out2 = model.block2(out1)
    del x1
    return {"act": act, "block1.add": add, "block1": out1, "block2": out2}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    torch.manual_seed(0)
    train_set, val_set, classes = make_data()
    model = make_model({})
    init = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=20)  # several batches
    out = tmp_path_factory.mktemp("rec") / "mine" / "activations.zarr"
    rec = Recorder(model, sites=SITES, out=out, classes=classes, config={"seed": 3})
    rec.record(0, val_loader)
    for epoch in (1, 2, 3):
        loss = _train_epoch(model, train_loader, opt)
        rec.record(epoch, val_loader, metrics={"train_loss": loss, "lr": 0.05})
    rec.close()
    return out, model, init, val_set


def test_recorded_gap_values_equal_a_manual_forward(recorded):
    out, model, init, val_set = recorded
    ds = xr.open_zarr(out)
    assert list(ds.epoch.values) == [0, 1, 2, 3]
    assert ds.attrs["status"] == "complete" and ds.attrs["epochs_complete"] == 4
    x = torch.stack([val_set[i][0] for i in range(len(val_set))])
    for epoch, net in ((3, model), (0, init)):  # epoch 0 = the network before any update
        manual = manual_gap(net, x)
        for name in ["act", "block1.add", "block1", "block2"]:
            got = ds.activation.sel(epoch=epoch).isel(unit=ds.site.values == name).values
            np.testing.assert_allclose(
                got, manual[name].mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6
            )
    # sites in depth order, whatever order they were named in
    import json

    assert [s["name"] for s in json.loads(ds.attrs["sites"])] == [
        "act",
        "block1.add",
        "block1",
        "block2",
    ]
    np.testing.assert_array_equal(ds.label.values, [val_set[i][1] for i in range(len(val_set))])
    logits = model.eval()(x)
    assert float(ds.val_acc.sel(epoch=3)) == pytest.approx(
        float((logits.argmax(1) == torch.as_tensor(ds.label.values)).float().mean())
    )
    assert np.isnan(ds.train_loss.sel(epoch=0)) and np.isfinite(ds.train_loss.sel(epoch=3))
    assert ds.attrs["seed"] == 3 and ds.attrs["arch"] == "SmallNet"


def test_analyzer_accepts_the_recorded_store(recorded, tmp_path):
    out = recorded[0]
    mi = tmp_path / "mi.zarr"
    assert (
        analyze([str(out), "--bins", "8", "--out", str(mi), "--no-progress", "--threads", "1"]) == 0
    )
    ds = xr.open_zarr(mi)
    assert list(ds.layer.values) == ["act", "block1.add", "block1", "block2"]
    assert ds.label_mi.sizes["epoch"] == 4 and np.isfinite(ds.label_mi.values).all()


def test_interventions_say_clearly_when_the_model_cannot_be_rebuilt(recorded):
    run_dir = recorded[0].parent
    with pytest.raises(ValueError, match="model_factory: 'module:function'"):
        iv.load_checkpoint(run_dir)


def test_rerecording_and_reopening_continue_the_store(tmp_path):
    torch.manual_seed(0)
    train_set, val_set, classes = make_data(n_train=32, n_val=16)
    model = make_model({})
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    val_loader = DataLoader(val_set, batch_size=16)
    out = tmp_path / "run" / "activations.zarr"
    rec = Recorder(model, sites=None, out=out, classes=classes)  # default discovery rule
    rec.record(0, val_loader)
    _train_epoch(model, DataLoader(train_set, batch_size=16), opt)
    rec.record(1, val_loader)
    rec.record(2, val_loader)
    rec.record(1, val_loader, metrics={"train_loss": 9.0})  # replaces 1, drops 2
    ds = xr.open_zarr(out, consolidated=False)
    assert list(ds.epoch.values) == [0, 1] and float(ds.train_loss.sel(epoch=1)) == 9.0
    # an interrupted append (arrays grown, epoch coord not written) never counts
    rec.close()
    with pytest.raises(LockError, match="is being written by"):  # one writer per run directory
        with Recorder(model, out=out):
            Recorder(model, out=out)
    group = zarr.open_group(out, mode="r+")
    for name in ("activation", "val_acc"):
        group[name].resize((3, *group[name].shape[1:]))
    again = Recorder(model, sites=None, out=out, classes=classes)  # reopen: continue at 2
    with pytest.raises(ValueError, match="epoch 5 after epochs 0-1"):
        again.record(5, val_loader)
    again.record(2, val_loader)
    again.close()
    ds = xr.open_zarr(out)
    assert list(ds.epoch.values) == [0, 1, 2] and ds.sizes["epoch"] == 3
    assert ds.activation.shape == (3, 16, ds.sizes["unit"])
    assert set(ds.site_kind.values) <= {"act", "block"}
    with pytest.raises(ValueError, match="unknown metrics accuracy"):
        again.record(3, val_loader, metrics={"accuracy": 1.0})


@pytest.mark.slow
def test_readme_example_runs_as_written_then_analyzer_and_interventions(tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your own model", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shell = re.findall(r"^python -m (analyzer|interventions) (.*)$", section, re.M)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=300)
    assert xr.open_zarr(tmp_path / "results/runs/mine/activations.zarr").sizes["epoch"] == 6
    assert [m for m, _ in shell] == ["analyzer", "interventions"]
    for module, args in shell:
        cmd = [sys.executable, "-m", module, *args.split()]
        if module == "analyzer":
            cmd += ["--no-progress", "--threads", "1"]
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, timeout=300)
    ko = xr.open_zarr(tmp_path / "results/interventions/bins-20/mine.zarr")
    assert list(ko.layer.values) == ["block2"]
    acc = ko.accuracy.sel(selection="top", variant="zero").isel(draw=0).values
    assert np.isfinite(acc).all() and float(ko.baseline_accuracy) > 0.25  # 4 classes: chance


def test_readme_example_imports_only_installed_packages(tmp_path):
    """The snippet must run as a script outside the repository root: every module it imports
    is part of an installed package (pyproject's packages) or a third-party one."""
    import tomllib

    text = (ROOT / "README.md").read_text()
    section = text.split("## Your own model", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    installed = set(packages["packages"])
    names = re.findall(r"^(?:from|import) ([\w.]+)", code, re.M)
    names += re.findall(r'"([\w.]+):\w+"', code)  # model_factory / data_factory
    for name in names:
        top, parent = name.split(".")[0], name.rsplit(".", 1)[0]
        if top in {p.split(".")[0] for p in installed}:
            assert name in installed or parent in installed, f"{name} is not installed"
        else:  # third-party: importable from a folder outside the repository
            probe = f"import importlib.util as u; assert u.find_spec({top!r}), {top!r}"
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            ok = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env)
            assert ok.returncode == 0, f"{top} is importable only from the repository root"


def test_trainer_package_imports_torch_only_for_the_recorder():
    code = (
        "import sys, trainer, trainer.config; assert 'torch' not in sys.modules; "
        "from trainer import Recorder; assert 'torch' in sys.modules; print(Recorder.__name__)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "Recorder", out.stderr[-2000:]
