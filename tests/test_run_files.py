"""A fresh start removes only the trainer's own files (issue 27 item 1)."""

import shutil

import pytest
import torch

from tests.helpers import tiny_config
from tests.test_trainer_run import assert_stores_equal
from trainer.run_files import ForeignFileError, foreign_in_store, own_checkpoints
from trainer.train import run

CFG = ("train.epochs=1", "dataset.noise=0.3")


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


def test_user_files_in_checkpoints_survive_a_fresh_start(ref_run, tmp_path):
    run_dir = tmp_path / "R"
    (run_dir / "checkpoints").mkdir(parents=True)
    notes = run_dir / "checkpoints" / "notes.txt"
    notes.write_text("keep\n")
    pretrained = run_dir / "checkpoints" / "pretrained.pth"
    weights = run_dir / "checkpoints" / "imagenet-weights.pt"
    init = torch.load(ref_run / "checkpoints" / "init.pt", weights_only=False)
    torch.save(init["model"], pretrained)
    torch.save(init["model"], weights)
    before = {p: p.read_bytes() for p in (notes, pretrained, weights)}
    run(tiny_config(*CFG), run_dir)
    assert {p: p.read_bytes() for p in before} == before
    assert_stores_equal(ref_run / "activations.zarr", run_dir / "activations.zarr")
    assert [p.name for p in own_checkpoints(run_dir)] == ["best.pt", "init.pt", "last.pt"]


def test_a_second_fresh_start_keeps_user_files(ref_run, tmp_path):
    """A run left with only epoch-0 bookkeeping starts afresh, leaving the user's files."""
    run_dir = tmp_path / "R"
    run(tiny_config(*CFG), run_dir)
    notes = run_dir / "checkpoints" / "notes.txt"
    notes.write_text("keep\n")
    for p in own_checkpoints(run_dir):
        p.write_bytes(b"")  # no usable checkpoint and no epoch stored: starts afresh
    shutil.rmtree(run_dir / "activations.zarr")
    (run_dir / "progress.json").unlink()
    run(tiny_config(*CFG), run_dir)
    assert notes.read_text() == "keep\n"
    assert_stores_equal(ref_run / "activations.zarr", run_dir / "activations.zarr")


def test_user_file_in_the_store_folder_stops_naming_it(tmp_path):
    run_dir = tmp_path / "R"
    (run_dir / "activations.zarr").mkdir(parents=True)
    notes = run_dir / "activations.zarr" / "notes.txt"
    notes.write_text("keep\n")
    with pytest.raises(ForeignFileError, match=r"notes.txt was not written by the trainer"):
        run(tiny_config(*CFG), run_dir)
    assert notes.read_text() == "keep\n"


def test_store_files_are_recognised(ref_run):
    assert foreign_in_store(ref_run / "activations.zarr") == []
