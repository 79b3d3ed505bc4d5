"""Threads per trainer never exceed the cores it may use, whatever --cores says (issue 26.1)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY
from trainer.loaders import granted_cores, usable_cores

ROOT = Path(__file__).resolve().parents[1]


def test_granted_cores_never_exceed_the_affinity():
    assert granted_cores(10_000) == usable_cores() == len(os.sched_getaffinity(0))
    assert granted_cores(1) == 1 and granted_cores(None) == usable_cores()


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_cores_8_on_one_core_runs_one_torch_thread(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "8"}  # as the workflow sets
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "trainer", "--cores", "8"]
    cmd += ["--out", str(tmp_path / "run"), *TINY, "train.epochs=1", "dataset.n_train=64"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r"torch threads (\d+) \((\d+) cores granted, (\d+) usable\)", proc.stderr)
    assert found, proc.stderr[-2000:]
    assert found.groups() == ("1", "1", "1")
    log = (tmp_path / "run" / "train.log").read_text()
    assert "torch threads 1 (1 cores granted, 1 usable)" in log


@pytest.mark.slow  # a Snakemake dry run of the whole workflow: ~15 s
@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_workflow_train_jobs_get_at_most_the_usable_cores(tmp_path):
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = ["taskset", "-c", "0", snakemake, "-n", "-p", "--cores", "8", "train"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    train_jobs = proc.stdout.split("rule train_run:")[1:]
    assert train_jobs, proc.stdout[-2000:]
    for job in train_jobs:
        assert "threads:" not in job  # Snakemake prints threads only when more than 1
        assert "OMP_NUM_THREADS=1 " in job and "--cores 1 " in job
