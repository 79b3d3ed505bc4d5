"""``kill -9`` of Snakemake orphans no trainer; a rerun waits for the run's lock (issue 27.9)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latent_mi import outputs
from tests.helpers import TINY

ROOT = Path(__file__).resolve().parents[1]
LONG = [*TINY, "train.epochs=100000", "train.early_stop_patience=100000", "dataset.n_train=64"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.skipif(
    shutil.which("snakemake") is None and not Path(sys.executable).with_name("snakemake").exists(),
    reason="needs snakemake",
)
@pytest.mark.slow  # a real Snakemake and trainer: ~20 s
def test_trainer_dies_with_a_killed_snakemake(tmp_path):
    run_dir = tmp_path / "run"
    overrides = " ".join(LONG)
    (tmp_path / "Snakefile").write_text(
        'rule train:\n    output: "done.json"\n    shell:\n'
        f'        "LATENT_MI_EXIT_WITH=$PPID OMP_NUM_THREADS=1 {sys.executable} -m trainer '
        f'--out {run_dir} {overrides} > train.out 2>&1"\n'
    )
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workflow = subprocess.Popen([snakemake, "--cores", "1", "-q"], cwd=tmp_path, env=env)
    trainer = None
    try:
        lock = run_dir / outputs.LOCK_NAME
        assert _wait_for(lambda: (run_dir / "progress.json").exists(), 120), "no training"
        trainer = int(lock.read_text().split()[0])
        assert _alive(trainer)
        workflow.send_signal(signal.SIGKILL)
        workflow.wait()
        assert _wait_for(lambda: not _alive(trainer), 15), "the trainer runs on, orphaned"
        log = (tmp_path / "train.out").read_text()
        assert f"the workflow (process {workflow.pid}) that started this trainer has ended" in log
    finally:
        workflow.kill()
        if trainer is not None and _alive(trainer):
            os.kill(trainer, signal.SIGKILL)


def test_without_the_variable_nothing_is_watched(monkeypatch):
    from latent_mi import parent_watch

    monkeypatch.delenv(parent_watch.ENV, raising=False)
    assert parent_watch.exit_with_workflow() is None
    monkeypatch.setenv(parent_watch.ENV, "999999999")  # no such process: nothing to watch
    assert parent_watch.exit_with_workflow() is None
    assert parent_watch.start_time(os.getpid()) is not None


def test_a_rerun_waits_for_the_lock_of_an_ending_orphan_else_names_its_pid(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from latent_mi.outputs import dir_lock\n"
            f"with dir_lock({str(run_dir)!r}):\n    print('held', flush=True); time.sleep(2)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(outputs.LockError, match=f"process {holder.pid}"):
            with outputs.dir_lock(run_dir):
                pass
        started = time.monotonic()
        with outputs.dir_lock(run_dir, wait=30):  # the holder ends within 2 s
            waited = time.monotonic() - started
        assert 0.5 < waited < 30
    finally:
        holder.kill()
        holder.wait()
