"""Trainer faults (issue 8): concurrent trainers, exact resume, resume policy, damage, messages."""

import errno
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import xarray as xr
import zarr

from latent_mi import outputs
from latent_mi.outputs import LockError
from tests.helpers import TINY, tiny_config
from tests.test_trainer_run import assert_stores_equal
from trainer import cli, store, train
from trainer.config import resolve_config
from trainer.resume import ResumeError
from trainer.train import run


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions run far faster single-threaded on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


REF = ("train.epochs=3", "dataset.noise=0.3")


@pytest.fixture(scope="module")
def ref_run(tmp_path_factory):
    """A finished 3-epoch tiny run, trained single-threaded like the resumes below."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("ref") / "run"
        run(tiny_config(*REF), run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir


def test_second_trainer_on_a_run_directory_stops_naming_the_first(tmp_path):
    run_dir = tmp_path / "run"
    long = ["train.epochs=1000000", "train.early_stop_patience=1000000"]  # outlives the test
    args = [sys.executable, "-m", "trainer", *TINY, *long, "--out", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run_dir / "progress.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(LockError, match=rf"{run_dir} is being written by process {first.pid}"):
            run(tiny_config(*long), run_dir)
        second = subprocess.run(args, env=env, capture_output=True, text=True)
        assert second.returncode == 1
        assert f"being written by process {first.pid}" in second.stderr.strip().splitlines()[-1]
    finally:
        first.kill()
        first.wait()
    assert (run_dir / ".latent-mi.lock").exists()  # left by the killed trainer: stale
    with outputs.dir_lock(run_dir):  # a stale lock of a dead process is taken over
        pass
    epochs = zarr.open_group(run_dir / "activations.zarr", mode="r")["epoch"][:]
    assert list(epochs) == list(range(len(epochs)))  # one writer: no duplicated epochs


def _store(run_dir):
    return run_dir / "activations.zarr"


def _copy_run(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".latent-mi.lock"))
    return dst


DIGITS = [
    "dataset.name=digits",
    "dataset.image_size=8",
    "dataset.shift=1",  # the random-shift augmentation draws from the global torch RNG
    "dataset.val_fraction=0.9",
    "width=0.125",
    "train.batch_size=32",
    "train.progress=false",
    "train.epochs=4",
]


def test_kill_between_checkpoint_and_dump_on_digits_resumes_exactly(tmp_path, monkeypatch):
    cfg = resolve_config(None, DIGITS)
    run(cfg, tmp_path / "ref")
    real_append = store.append_epoch

    def lost_append(path, epoch, *args, **kwargs):
        if epoch == 2:  # epoch 2's checkpoint is saved, its dump never lands
            raise KeyboardInterrupt
        real_append(path, epoch, *args, **kwargs)

    monkeypatch.setattr(train.store, "append_epoch", lost_append)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "killed")
    monkeypatch.setattr(train.store, "append_epoch", real_append)
    assert store.complete_epochs(_store(tmp_path / "killed")) == 2
    assert (
        torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=False)["epoch"]
        == 2
    )
    run(cfg, tmp_path / "killed")
    assert_stores_equal(_store(tmp_path / "ref"), _store(tmp_path / "killed"))


def _chunk_mtimes(run_dir):
    return {p: p.stat().st_mtime_ns for p in (_store(run_dir) / "activation" / "c").rglob("*")}


def test_display_and_hardware_changes_resume_without_retraining(ref_run, tmp_path, caplog):
    run_dir = _copy_run(ref_run, tmp_path / "run")
    before = _chunk_mtimes(run_dir)
    cfg = tiny_config(*REF, "train.progress=true", "train.device=cpu")
    with caplog.at_level(logging.INFO, logger="trainer"):
        done = run(cfg, run_dir)
    assert done["epochs"] == 4 and "resuming" in caplog.text
    assert "starting" not in caplog.text and _chunk_mtimes(run_dir) == before  # nothing redone


def test_real_config_change_stops_naming_the_key_and_deletes_nothing(ref_run, tmp_path):
    run_dir = _copy_run(ref_run, tmp_path / "run")
    before = _chunk_mtimes(run_dir)
    with pytest.raises(ResumeError, match=r"config key train.lr: 0.02 -> 0.05") as err:
        run(tiny_config(*REF, "train.lr=0.05"), run_dir)
    assert "\n" not in str(err.value) and "nothing was deleted" in str(err.value)
    assert _chunk_mtimes(run_dir) == before and (run_dir / "checkpoints" / "last.pt").exists()
    assert xr.open_zarr(_store(run_dir)).sizes["epoch"] == 4


@pytest.mark.parametrize("damage", ["missing", "empty", "truncated", "garbage"])
def test_damaged_last_checkpoint_falls_back_and_resumes_exactly(ref_run, tmp_path, damage, caplog):
    run_dir = _copy_run(ref_run, tmp_path / "run")
    last = run_dir / "checkpoints" / "last.pt"
    (run_dir / "done.json").unlink()
    if damage == "missing":
        last.unlink()
    else:
        data = {"empty": b"", "garbage": b"\x00garbage" * 10}.get(damage, last.read_bytes()[:500])
        last.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        done = run(tiny_config(*REF), run_dir)
    assert done["status"] == "complete"
    assert re.search(r"last\.pt (missing|unreadable).*resuming from (best|init)\.pt", caplog.text)
    assert_stores_equal(_store(ref_run), _store(run_dir))


def test_no_usable_checkpoint_stops_and_deletes_nothing(ref_run, tmp_path):
    run_dir = _copy_run(ref_run, tmp_path / "run")
    for p in (run_dir / "checkpoints").glob("*.pt"):
        p.write_bytes(b"")
    with pytest.raises(ResumeError, match=r"cannot resume .*no usable checkpoint \(last.pt unread"):
        run(tiny_config(*REF), run_dir)
    assert xr.open_zarr(_store(run_dir)).sizes["epoch"] == 4


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_damaged_chunk_is_redumped_on_resume(ref_run, tmp_path, damage, caplog):
    run_dir = _copy_run(ref_run, tmp_path / "run")
    chunk = _store(run_dir) / "activation" / "c" / "2" / "0" / "0"
    if damage == "deleted":
        chunk.unlink()
    else:
        chunk.write_bytes(chunk.read_bytes()[:30])
    with caplog.at_level(logging.WARNING, logger="trainer"):
        run(tiny_config(*REF), run_dir)
    assert "chunk of 'activation' at epoch 2 is" in caplog.text
    assert_stores_equal(_store(ref_run), _store(run_dir))
    assert xr.open_zarr(_store(run_dir)).attrs["status"] == "complete"


@pytest.mark.parametrize("text", ["{garbage", "[1, 2]", ""])
def test_damaged_progress_file_is_named_and_resume_uses_checkpoints(
    ref_run, tmp_path, text, caplog
):
    run_dir = _copy_run(ref_run, tmp_path / "run")
    (run_dir / "progress.json").write_text(text)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        done = run(tiny_config(*REF), run_dir)
    assert f"ignoring damaged {run_dir / 'progress.json'}" in caplog.text
    assert done["epochs"] == 4
    assert_stores_equal(_store(ref_run), _store(run_dir))


def test_disk_full_is_one_line_naming_device_and_path(tmp_path, monkeypatch, capsys):
    real = Path.write_bytes

    def full(self, data):
        if self.name.startswith("init.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "run"
    assert cli.main([*TINY, "train.epochs=1", "--out", str(out)]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("trainer: error: no space left on ")
    assert f"writing {out / 'checkpoints' / 'init.pt'}" in line
    assert not list((out / "checkpoints").glob("*.tmp"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--config-json", '{"train": 5}', "train.epochs=3"],
            "config key train: 5 is not a mapping",
        ),
        (["--config-json", "[1]"], "--config-json must be a JSON object, got list"),
        (["--config-json", "{bad"], "--config-json is not valid JSON: Expecting property name"),
        (["train.lr=[1"], "override 'train.lr=[1': the value is not valid YAML (expected ','"),
        (["train=5", "train.epochs=3"], "config key train: 5 is not a mapping (in override"),
    ],
)
def test_bad_config_inputs_are_one_line(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--out", str(tmp_path / "r"), "--print-config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"trainer: error: {message}")


def test_malformed_yaml_file_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: 0.1\n  epochs: [1\n")
    assert cli.main(["--config", str(bad), "--out", str(tmp_path / "r"), "--print-config"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"trainer: error: config file {bad} is not valid YAML: ")
    assert "line 4" in line and "\n" not in line


def test_intervene_refuses_activation_store_and_damaged_checkpoint(ref_run, tmp_path, capsys):
    from interventions import cli as intervene

    argv = [str(ref_run), "--out", str(tmp_path / "iv.zarr")]
    assert intervene.main([*argv, "--mi", str(ref_run / "activations.zarr")]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is not an analyzer MI Dataset (it is an activation store" in line
    run_dir = _copy_run(ref_run, tmp_path / "run")
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"\x00garbage")
    import interventions as iv

    with pytest.raises(ValueError, match=r"checkpoint .*best.pt is unreadable \(Unpickling"):
        iv.load_checkpoint(run_dir)


def test_intervene_out_at_a_folder_with_other_files_is_refused(ref_run, tmp_path, capsys):
    from interventions import cli as intervene

    out = tmp_path / "interventions" / "bins-20"  # the run name forgotten
    out.mkdir(parents=True)
    (out / "other.zarr").mkdir()
    argv = [str(ref_run), "--mi", str(tmp_path / "mi.zarr"), "--out", str(out)]
    assert intervene.main(argv) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"intervene: error: {out} exists and is not a interventions output")
    assert (out / "other.zarr").is_dir()
