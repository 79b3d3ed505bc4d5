"""Trainer faults (issue 8): concurrent trainers, exact resume, resume policy, damage, messages."""

import json
import os
import subprocess
import sys
import time

import pytest
import xarray as xr

from latent_mi.outputs import LockError
from tests.helpers import TINY, tiny_config
from trainer.train import run


def test_second_trainer_on_a_run_directory_stops_naming_the_first(tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "trainer", *TINY, "train.epochs=30", "--out", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run_dir / "progress.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(LockError, match=rf"{run_dir} is being written by process {first.pid}"):
            run(tiny_config("train.epochs=30"), run_dir)
        second = subprocess.run(args, env=env, capture_output=True, text=True)
        assert second.returncode == 1
        assert f"being written by process {first.pid}" in second.stderr.strip().splitlines()[-1]
    finally:
        first.kill()
        first.wait()
    assert (run_dir / ".latent-mi.lock").exists()  # left by the killed trainer: stale
    progress = json.loads((run_dir / "progress.json").read_text())
    cfg = tiny_config(f"train.epochs={progress['epochs_complete'] + 1}")
    done = run(cfg, run_dir)  # takes the stale lock over (and, today, resumes)
    assert done["status"] == "complete"
    epochs = xr.open_zarr(run_dir / "activations.zarr").epoch.values
    assert list(epochs) == list(range(len(epochs)))
