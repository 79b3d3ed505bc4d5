"""The analyzer CLI on a real dask cluster: a `dask scheduler` and two `dask worker` processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from analyzer import cluster_memory
from tests.test_analyzer_scale import WIDTHS, make_store

pytest.importorskip("distributed")
DASK = Path(sys.executable).parent / "dask"
ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def _analyze(store, out, *extra):
    """Run `python -m analyzer STORE` with small options; returns the finished process."""
    cmd = [sys.executable, "-m", "analyzer", str(store), "--bins", "8", "--out", str(out)]
    cmd += ["--pair-samples", "6", "--no-progress", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)


def _start_cluster(tmp_path, memory_limit="1GB", scheduler_env=()):
    """Scheduler + two 1-thread workers on 127.0.0.1; returns (processes, scheduler address)."""
    sched_file = tmp_path / "scheduler.json"
    procs = [
        subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0"]
            + ["--no-dashboard", "--scheduler-file", str(sched_file)],
            env={**ENV, **dict(scheduler_env)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [str(DASK), "worker", "--scheduler-file", str(sched_file), "--nthreads", "1"]
                + ["--memory-limit", memory_limit, "--host", "127.0.0.1", "--no-dashboard"],
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    from distributed import Client

    deadline = time.time() + 60
    while not sched_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    with Client(scheduler_file=str(sched_file), timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        address = client.scheduler.address
    return procs, address


def _busy_worker_pid(address, run):
    """The process id of a worker that is running one of the analyzer's tasks right now
    (polled on the scheduler, so the kill lands mid-task however fast the machine is)."""
    from distributed import Client

    with Client(address, timeout=60) as client:
        pids = client.run(os.getpid)  # worker address -> pid
        deadline = time.time() + 120
        while time.time() < deadline:
            assert run.poll() is None, "the run ended before a worker could be killed mid-task"
            busy = [worker for worker, tasks in client.processing().items() if tasks]
            if busy:
                return pids[busy[0]]
            time.sleep(0.02)
    raise AssertionError("no worker received a task within 120 s")


def _stop(procs):
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.mark.slow
def test_analyzer_on_real_dask_cluster_is_bit_identical_also_after_a_worker_kill(tmp_path):
    store = tmp_path / "run" / "activations.zarr"
    make_store(store, 5)
    local = _analyze(store, tmp_path / "local.zarr", "--threads", "2")
    assert local.returncode == 0, local.stderr
    expected = xr.open_zarr(tmp_path / "local.zarr").load().drop_attrs()
    procs, address = _start_cluster(tmp_path)
    try:
        ok = _analyze(store, tmp_path / "dist.zarr", "--scheduler", address)
        assert ok.returncode == 0, ok.stderr
        got = xr.open_zarr(tmp_path / "dist.zarr").load().drop_attrs()
        xr.testing.assert_identical(expected, got)
        # a worker killed with SIGKILL mid-run: the scheduler reruns its tasks on the other
        cmd = [sys.executable, "-m", "analyzer", str(store), "--bins", "8"]
        cmd += ["--out", str(tmp_path / "killed.zarr"), "--pair-samples", "6", "--no-progress"]
        run = subprocess.Popen(
            cmd + ["--scheduler", address], env=ENV, cwd=ROOT, stderr=subprocess.PIPE, text=True
        )
        os.kill(_busy_worker_pid(address, run), signal.SIGKILL)
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        got = xr.open_zarr(tmp_path / "killed.zarr").load().drop_attrs()
        xr.testing.assert_identical(expected, got)
    finally:
        _stop(procs)


class FakeClient:
    """What cluster_memory reads of a distributed.Client: scheduler_info()'s workers."""

    def __init__(self, workers):
        self.workers = workers

    def scheduler_info(self, n_workers=-1):
        return {"workers": self.workers}


def _worker(limit, used):
    return {"memory_limit": limit, "metrics": {"memory": used}}


def test_preflight_names_the_worker_and_the_memory_limit_setting(tmp_path):
    store = tmp_path / "run" / "activations.zarr"
    make_store(store, 2)
    need = 240 * max(WIDTHS) * 4  # samples x widest layer x float32: make_store's store
    assert cluster_memory.task_bytes(store) == need
    roomy = {"tcp://a:1": _worker(2**30, 2**27), "tcp://b:1": _worker(0, 2**29)}  # 0: no limit
    workers = cluster_memory.worker_memory(FakeClient(roomy))
    assert workers == [("tcp://a:1", 2**30, 2**27), ("tcp://b:1", 0, 2**29)]
    assert cluster_memory.preflight(workers, store) is None
    full = {**roomy, "tcp://c:1": _worker(2**27, int(0.95 * 2**27) - need + 1)}
    problem = cluster_memory.preflight(cluster_memory.worker_memory(FakeClient(full)), store)
    assert problem.startswith("dask worker tcp://c:1 has a memory limit of 128 MiB")
    assert "`dask worker --memory-limit`" in problem and "\n" not in problem
    assert cluster_memory.task_bytes(tmp_path / "missing.zarr") == 0


def test_killed_worker_becomes_one_line_naming_the_memory_limit():
    from distributed.scheduler import KilledWorker

    client = cluster_memory.worker_memory(FakeClient({"tcp://a:1": _worker(150 * 2**20, 9)}))
    error = KilledWorker("analyze_epoch-1", "tcp://a:1", allowed_failures=3)
    message = cluster_memory.killed_message(error, client, "S.zarr")
    assert "epoch task of S.zarr" in message and "now 150 MiB" in message
    assert "`dask worker --memory-limit`" in message
    assert cluster_memory.killed_message(ValueError("x"), client, "S.zarr") is None


@pytest.mark.slow
def test_worker_memory_limit_below_one_epoch_task_gives_one_clear_line(tmp_path):
    """150 MB: a worker starts (~65 MB) but dies importing and running an epoch task."""
    store = tmp_path / "run" / "activations.zarr"
    make_store(store, 2)
    fail_fast = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    procs, address = _start_cluster(tmp_path, "150MB", fail_fast)
    try:
        run = _analyze(store, tmp_path / "out.zarr", "--scheduler", address)
    finally:
        _stop(procs)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("analyzer: error: dask workers died running an epoch task"), last
    assert "`dask worker --memory-limit`" in last and "now 143 MiB" in last, last
    assert "Traceback" not in run.stderr and not (tmp_path / "out.zarr").exists()
