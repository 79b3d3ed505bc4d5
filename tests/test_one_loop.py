"""The one training loop: the 12-bit task's resume, its best epoch, the store-writer thread."""

import json
import threading

import numpy as np
import pytest
import torch
import xarray as xr

from latent_mi import contract as C
from tests.helpers import tiny_config
from trainer import store, train
from trainer.config import resolve_config
from trainer.task import dump_schedule
from trainer.train import run

TWELVE_BIT = [
    "arch=twelve_bit_mlp",
    "dataset.name=twelve_bit",
    "activation=tanh",
    "train.optimizer=adam",
    "train.lr=0.01",
    "train.batch_size=512",
    "train.weight_decay=0",
    "train.progress=false",
    "train.device=cpu",
    "dump.epochs=log",
    "dump.log_count=5",
    "noise.beta=0.05",  # training noise: the global RNG stream must resume too
    "train.epochs=20",
]


def without_seconds(path):
    return xr.open_zarr(path).drop_vars("epoch_seconds").load()


@pytest.mark.parametrize("lose_epoch_coord", [False, True])
def test_twelve_bit_resumes_bit_identically_after_a_crash(tmp_path, monkeypatch, lose_epoch_coord):
    cfg = resolve_config(None, TWELVE_BIT)
    run(cfg, tmp_path / "whole")
    real_append, calls = store.append_epoch, []

    def crashing_append(path, epoch, *args):
        calls.append(epoch)
        if len(calls) == 3:  # the third dump after epoch 0 never lands
            raise RuntimeError("killed")
        real_append(path, epoch, *args)

    monkeypatch.setattr(train.store, "append_epoch", crashing_append)
    with pytest.raises(RuntimeError, match="killed"):
        run(cfg, tmp_path / "crashed")
    monkeypatch.setattr(train.store, "append_epoch", real_append)
    assert not [t for t in threading.enumerate() if t.name.startswith("store-writer")]
    progress = json.loads((tmp_path / "crashed" / C.PROGRESS).read_text())
    grid = dump_schedule(20, "log", 5)
    assert progress["epochs_complete"] >= 3  # checkpointed past the dump that did not land
    if lose_epoch_coord:  # rebuilt on resume with the schedule's epoch numbers, not 0, 1, 2
        (tmp_path / "crashed" / C.STORE / "epoch" / "zarr.json").unlink()
    done = run(cfg, tmp_path / "crashed")
    whole = without_seconds(tmp_path / "whole" / C.STORE)
    again = without_seconds(tmp_path / "crashed" / C.STORE)
    assert whole.epoch.values.tolist() == grid == again.epoch.values.tolist()
    xr.testing.assert_identical(whole, again)
    assert done == json.loads((tmp_path / "whole" / C.DONE).read_text())


def test_best_epoch_is_the_contracts(tmp_path):
    done = run(resolve_config(None, TWELVE_BIT), tmp_path / "run")
    ds = xr.open_zarr(tmp_path / "run" / C.STORE)
    index = C.best_epoch(ds.val_acc.values)
    assert done["best_epoch"] == int(ds.epoch.values[index])  # an epoch number, not an index
    assert done["best_val_acc"] == float(ds.val_acc.values[index])
    best = torch.load(C.checkpoint_path(tmp_path / "run", "best"), weights_only=False)
    assert best["epoch"] == done["best_epoch"]


def test_store_writer_stops_on_any_error(tmp_path, monkeypatch):
    real = train.build_task

    def failing_task(*args):
        task = real(*args)
        real_train = task.train_epoch

        def train_epoch(epoch):
            if epoch == 2:
                raise KeyboardInterrupt  # not a divergence
            return real_train(epoch)

        task.train_epoch = train_epoch
        return task

    monkeypatch.setattr(train, "build_task", failing_task)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config("train.epochs=3"), tmp_path / "run")
    assert not [t for t in threading.enumerate() if t.name.startswith("store-writer")]
    assert store.complete_epochs(tmp_path / "run" / C.STORE) == 2  # epochs 0 and 1 landed


def test_one_attrs_builder_for_trainer_and_recorder(tmp_path):
    from trainer.recorder import Recorder

    run(tiny_config("train.epochs=1"), tmp_path / "run")
    trained = xr.open_zarr(tmp_path / "run" / C.STORE).attrs
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    data = [(torch.rand(8, 12), torch.arange(8) % 2)]
    with Recorder(net, sites=["0"], out=tmp_path / "rec" / C.STORE, classes=["a", "b"]) as rec:
        rec.record(0, data)
    recorded = xr.open_zarr(tmp_path / "rec" / C.STORE).attrs
    keys = ["dataset", "arch", "activation", "regularizer", "seed", "width", "config", "classes"]
    assert list(trained)[: len(keys)] == keys == list(recorded)[: len(keys)]
    assert json.loads(recorded["classes"]) == ["a", "b"] and recorded["width"] == 1.0
    assert np.isfinite(trained["seed"])
