"""Damaged checkpoints and store metadata after a kill: repaired by a rerun (issue 27.6, 27.7).

Each fault is injected into a killed run; the rerun's store is compared bitwise with an
uninterrupted run (the ``epoch_seconds`` timings aside).
"""

import json
import logging
import threading

import pytest
import torch

from tests.helpers import tiny_config
from tests.test_trainer_run import assert_stores_equal
from trainer import train
from trainer.train import run

EPOCHS = 2
CFG = (f"train.epochs={EPOCHS}", "dataset.noise=0.3")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ref_run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("ref") / "run"
        run(tiny_config(*CFG), run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir


def killed_run(run_dir, monkeypatch, at_epoch: int = EPOCHS):
    """Train until ``last.pt`` of ``at_epoch`` is saved, then die (before progress.json)."""
    real_write = train.atomic_write_json

    def killed_write(path, obj):
        if path.name == "progress.json" and obj.get("epochs_complete") == at_epoch + 1:
            raise KeyboardInterrupt
        real_write(path, obj)

    monkeypatch.setattr(train, "atomic_write_json", killed_write)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(*CFG), run_dir)
    monkeypatch.setattr(train, "atomic_write_json", real_write)
    for thread in threading.enumerate():  # the background store append of the last epoch
        if thread.name.startswith("store-writer"):
            thread.join()


@pytest.mark.parametrize("at_epoch", [1, EPOCHS])
def test_nan_in_last_checkpoint_of_a_killed_run_is_damage_not_divergence(
    ref_run, tmp_path, monkeypatch, caplog, at_epoch
):
    run_dir = tmp_path / "run"
    killed_run(run_dir, monkeypatch, at_epoch)
    last = run_dir / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=False)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name].fill_(float("nan"))
    torch.save(state, last)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        done = run(tiny_config(*CFG), run_dir)
    assert done["status"] == "complete" and done["epochs"] == EPOCHS + 1
    assert json.loads((run_dir / "done.json").read_text())["status"] == "complete"
    warned = [r.getMessage() for r in caplog.records if "last.pt" in r.getMessage()]
    assert len(warned) == 1 and "non-finite values in weight" in warned[0], warned
    assert "resuming from" in warned[0] and "not a divergence" in warned[0]
    assert_stores_equal(ref_run / "activations.zarr", run_dir / "activations.zarr")
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() != b""
    rerun = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    assert rerun["epoch"] == EPOCHS
    assert all(v.isfinite().all() for v in rerun["model"].values() if v.is_floating_point())


@pytest.mark.parametrize("saves_before_kill", [1, 2])
def test_kill_between_the_checkpoint_saves_of_an_improving_epoch_resumes(
    ref_run, tmp_path, monkeypatch, saves_before_kill
):
    """A kill -9 after one or both checkpoint saves of an epoch that improves the best:
    the rerun completes with the uninterrupted store and a best.pt of the best epoch (the
    CI caught the old order, best.pt before last.pt, refusing to resume)."""
    best_epoch = json.loads((ref_run / "done.json").read_text())["best_epoch"]
    assert best_epoch >= 1  # else no epoch improves and the test would test nothing
    run_dir, real_save, saves = tmp_path / "run", train.atomic_torch_save, []

    def killed_save(state, path):
        real_save(state, path)
        if int(state["epoch"]) == best_epoch:
            saves.append(path.name)
            if len(saves) == saves_before_kill:
                raise KeyboardInterrupt

    monkeypatch.setattr(train, "atomic_torch_save", killed_save)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(*CFG), run_dir)
    monkeypatch.setattr(train, "atomic_torch_save", real_save)
    for thread in threading.enumerate():
        if thread.name.startswith("store-writer"):
            thread.join()
    done = run(tiny_config(*CFG), run_dir)
    assert done["status"] == "complete" and done["best_epoch"] == best_epoch
    assert_stores_equal(ref_run / "activations.zarr", run_dir / "activations.zarr")
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)
    assert best["epoch"] == best_epoch
