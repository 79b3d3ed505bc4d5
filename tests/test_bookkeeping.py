"""Bookkeeping files are rewritten on resume and a damaged best.pt is noticed (issue 27 item 7)."""

import json
import shutil

import pytest
import torch

from tests.helpers import tiny_config
from tests.test_trainer_run import assert_stores_equal
from trainer import train
from trainer.resume import ResumeError
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


def _without_times(progress: dict) -> dict:
    metrics = {k: v for k, v in progress["last_metrics"].items() if k != "epoch_seconds"}
    return {**progress, "last_metrics": metrics}


def test_kill_in_final_epoch_after_checkpoint_then_resume_rewrites_progress(
    ref_run, tmp_path, monkeypatch
):
    real_write = train.atomic_write_json

    def killed_write(path, obj):
        if path.name == "progress.json" and obj.get("epochs_complete") == EPOCHS + 1:
            raise KeyboardInterrupt  # killed after last.pt, before progress.json and the dump
        real_write(path, obj)

    monkeypatch.setattr(train, "atomic_write_json", killed_write)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(*CFG), tmp_path / "run")
    monkeypatch.setattr(train, "atomic_write_json", real_write)
    run(tiny_config(*CFG), tmp_path / "run")
    got = json.loads((tmp_path / "run" / "progress.json").read_text())
    want = json.loads((ref_run / "progress.json").read_text())
    assert got["epochs_complete"] == EPOCHS + 1
    assert _without_times(got) == _without_times(want)
    assert_stores_equal(ref_run / "activations.zarr", tmp_path / "run" / "activations.zarr")


def test_truncated_best_checkpoint_is_noticed_by_a_rerun(ref_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(ref_run, run_dir)
    best = run_dir / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=False)
    best.write_bytes(best.read_bytes()[:100])
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    if state["epoch"] == last["epoch"]:  # rebuilt from last.pt, the same epoch
        run(tiny_config(*CFG), run_dir)
        assert best.read_bytes() == (ref_run / "checkpoints" / "best.pt").read_bytes()
    else:  # nothing to rebuild it from: one line, nothing deleted
        with pytest.raises(ResumeError, match=r"best.pt is unreadable .*nothing was deleted"):
            run(tiny_config(*CFG), run_dir)
        assert best.stat().st_size == 100


def test_stale_partial_files_of_a_killed_rewrite_are_removed(ref_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(ref_run, run_dir)
    stale = run_dir / "activations.zarr" / "epoch" / f"zarr.json.{'ab' * 16}.partial"
    stale.write_text("{")
    stale_ckpt = run_dir / "checkpoints" / "last.pt.tmp"
    stale_ckpt.write_bytes(b"x")
    foreign = run_dir / "activations.zarr" / "my.partial"
    foreign.write_text("keep")
    run(tiny_config(*CFG), run_dir)
    assert not stale.exists() and not stale_ckpt.exists()
    assert foreign.read_text() == "keep"
    assert_stores_equal(ref_run / "activations.zarr", run_dir / "activations.zarr")
