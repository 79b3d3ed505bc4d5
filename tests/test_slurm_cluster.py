"""The single-node test SLURM cluster (tests/cluster/slurm-up.sh): sbatch on both partitions."""

import subprocess
import time

import pytest

from tests.slurm_cluster import job_rows, start_or_skip


@pytest.fixture(scope="module")
def slurm():
    """Starts (or finds) the test cluster; skips with one reason where it cannot start."""
    return start_or_skip()


def _wait(job, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        q = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True)
        if not q.stdout.strip():
            return
        time.sleep(1)
    raise AssertionError(f"job {job} still queued after {timeout} s")


def test_slurm_runs_jobs_on_cpu_and_gpu_partitions(slurm, tmp_path):
    assert slurm.startswith("slurm")
    jobs = {}
    for part, extra in [("cpu", []), ("gpu", ["--gres=gpu:1"])]:
        out = tmp_path / f"{part}.out"
        cmd = ["sbatch", "--parsable", "-p", part, "-c", "1", "--mem", "100", "-o", str(out)]
        sub = subprocess.run(
            cmd + extra + ["--wrap", f"echo ran-on-{part}"], capture_output=True, text=True
        )
        assert sub.returncode == 0, sub.stderr
        jobs[part] = (sub.stdout.strip().split(";")[0], out)
    for part, (job, out) in jobs.items():
        _wait(job)
        assert out.read_text().strip() == f"ran-on-{part}"
    rows = job_rows([job for job, _ in jobs.values()])
    assert rows.count("COMPLETED") == 2 and "gres/gpu=1" in rows  # accounting saw both
