import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.helpers import TINY, tiny_config
from trainer import store, train
from trainer.config import ConfigError, resolve_config
from trainer.resume import ResumeError
from trainer.train import run

EPOCH_VARS = ["train_loss", "train_acc", "train_hsic", "val_loss", "val_acc", "lr", "epoch_seconds"]


def assert_stores_equal(a: Path, b: Path):
    da, db = xr.open_zarr(a), xr.open_zarr(b)
    assert list(da.epoch.values) == list(db.epoch.values)
    xr.testing.assert_identical(da.drop_vars("epoch_seconds"), db.drop_vars("epoch_seconds"))


def test_two_epoch_run_gives_documented_store(tmp_path):
    cfg = tiny_config("train.epochs=2", "arch=resnet18")
    done = run(cfg, tmp_path / "run")
    assert done["status"] == "complete" and done["epochs"] == 3
    ds = xr.open_zarr(tmp_path / "run" / "activations.zarr")
    assert list(ds.epoch.values) == [0, 1, 2]
    assert ds.activation.dims == ("epoch", "sample", "unit")
    assert ds.activation.shape[:2] == (3, 64)
    assert set(EPOCH_VARS) <= set(ds.data_vars)
    assert ds.label.dims == ("sample",) and ds.input_summary.dims == ("sample", "input_feature")
    sites = json.loads(ds.attrs["sites"])
    assert len(sites) == 16 and [s["name"] for s in sites][:2] == [
        "layer1.0.branch",
        "layer1.0.out",
    ]
    assert ds.sizes["unit"] == sum(s["channels"] for s in sites)
    assert list(np.unique(ds.site.values)) == sorted(s["name"] for s in sites)
    for key in ("dataset", "arch", "activation", "regularizer", "seed", "config", "versions"):
        assert key in ds.attrs
    assert ds.attrs["status"] == "complete"
    assert json.loads(ds.attrs["config"]) == cfg
    assert np.isnan(ds.train_loss.values[0]) and np.isfinite(ds.train_loss.values[1:]).all()
    assert {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()} >= {
        "init.pt",
        "best.pt",
        "last.pt",
    }
    # the dumped values are the network's: epoch 0 differs from epoch 2
    assert not np.allclose(ds.activation[0].values, ds.activation[2].values)


def test_float16_dump_and_hsic_run(tmp_path):
    cfg = tiny_config(
        "train.epochs=1",
        "arch=vgg16",
        "dump.dtype=float16",
        "regularizer=hsic",
        "dataset.image_size=32",
    )
    run(cfg, tmp_path / "run")
    ds = xr.open_zarr(tmp_path / "run" / "activations.zarr")
    assert ds.activation.dtype == np.float16
    assert ds.sizes["unit"] == 4224 // 8  # VGG-16 has 4,224 conv channels at width 1
    assert len(json.loads(ds.attrs["sites"])) == 13
    assert np.isfinite(ds.train_hsic.values[1])


def test_same_seed_gives_identical_store(tmp_path):
    cfg = tiny_config("train.epochs=2")
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    assert_stores_equal(tmp_path / "a" / "activations.zarr", tmp_path / "b" / "activations.zarr")


def test_crash_in_the_middle_of_an_epoch_resumes_to_identical_store(tmp_path, monkeypatch):
    cfg = tiny_config("train.epochs=4")
    run(cfg, tmp_path / "ref")

    real_append = store.append_epoch

    def crashing_append(path, epoch, *args, **kwargs):
        real_append(path, epoch, *args, **kwargs)  # the epoch's data lands ...
        if epoch == 3:
            raise KeyboardInterrupt  # ... but the run dies before its checkpoint

    monkeypatch.setattr(train.store, "append_epoch", crashing_append)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "crashed")
    monkeypatch.setattr(train.store, "append_epoch", real_append)
    assert not (tmp_path / "crashed" / "done.json").exists()
    assert xr.open_zarr(tmp_path / "crashed" / "activations.zarr").attrs["status"] == "running"
    run(cfg, tmp_path / "crashed")
    assert_stores_equal(
        tmp_path / "ref" / "activations.zarr", tmp_path / "crashed" / "activations.zarr"
    )


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "2"])
def test_kill_9_and_restart_gives_identical_store(tmp_path, workers):
    args = [sys.executable, "-m", "trainer", *TINY, "train.epochs=8", "train.progress=false"]
    args += ["--workers", workers]
    subprocess.run([*args, "--out", str(tmp_path / "ref")], check=True, capture_output=True)
    proc = subprocess.Popen([*args, "--out", str(tmp_path / "killed")], stderr=subprocess.DEVNULL)
    progress = tmp_path / "killed" / "progress.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if progress.exists() and json.loads(progress.read_text())["epochs_complete"] >= 3:
            break
        time.sleep(0.01)
    time.sleep(0.05)  # land somewhere inside a later epoch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "done.json").exists()
    restart = subprocess.run([*args, "--out", str(tmp_path / "killed")], capture_output=True)
    assert restart.returncode == 0, restart.stderr.decode()[-3000:]
    assert_stores_equal(
        tmp_path / "ref" / "activations.zarr", tmp_path / "killed" / "activations.zarr"
    )


def test_changed_config_stops_and_keeps_the_run(tmp_path):
    run(tiny_config("train.epochs=1"), tmp_path / "run")
    with pytest.raises(ResumeError, match="config key seed: 0 -> 1"):
        run(tiny_config("train.epochs=2", "seed=1"), tmp_path / "run")
    ds = xr.open_zarr(tmp_path / "run" / "activations.zarr")
    assert ds.attrs["seed"] == 0 and ds.sizes["epoch"] == 2


def test_config_errors_are_one_line_and_name_the_key(tmp_path):
    for override, key in [
        ("arch=alexnet", "arch"),
        ("activation=gelu", "activation"),
        ("dataset.name=cifar", "dataset.name"),
        ("train.lr=-1", "train.lr"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.bogus=1", "train"),
    ]:
        with pytest.raises(ConfigError, match=rf"config key {key}") as err:
            resolve_config(None, [override])
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(tmp_path / "missing.yaml")


def test_missing_imagenette_root_is_a_clear_cli_error(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainer",
            "--out",
            str(tmp_path / "r"),
            "dataset.name=imagenette",
            f"dataset.root={tmp_path / 'nowhere'}",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("trainer: error: Imagenette not found at")


@pytest.mark.slow
def test_default_cpu_resnet18_reaches_90_percent_on_digits(tmp_path):
    """The embedded default's model (config/config.yaml: resnet18 at width 1/4, 12 epochs)."""
    cfg = resolve_config(None, ["width=0.25", "train.epochs=12", "train.progress=false"])
    done = run(cfg, tmp_path / "digits")
    assert done["best_val_acc"] >= 0.90


def test_checkpoint_saved_before_its_epoch_landed_is_redumped_on_resume(tmp_path, monkeypatch):
    cfg = tiny_config("train.epochs=4")
    run(cfg, tmp_path / "ref")
    real_append = store.append_epoch

    def lost_append(path, epoch, *args, **kwargs):
        if epoch == 3:  # the background write of epoch 3 never lands; its checkpoint does
            raise KeyboardInterrupt
        real_append(path, epoch, *args, **kwargs)

    monkeypatch.setattr(train.store, "append_epoch", lost_append)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "crashed")
    monkeypatch.setattr(train.store, "append_epoch", real_append)
    assert store.complete_epochs(tmp_path / "crashed" / "activations.zarr") == 3
    run(cfg, tmp_path / "crashed")
    assert_stores_equal(
        tmp_path / "ref" / "activations.zarr", tmp_path / "crashed" / "activations.zarr"
    )
