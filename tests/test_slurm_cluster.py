"""The single-node test SLURM cluster (tests/cluster/slurm-up.sh): sbatch on both partitions."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

UP = Path(__file__).parent / "cluster" / "slurm-up.sh"


@pytest.fixture(scope="module")
def slurm():
    """Starts (or finds) the test cluster; skips with one reason where it cannot start."""
    if os.geteuid() != 0 and shutil.which("sinfo") is None:
        pytest.skip("SLURM test cluster: needs root (tests/cluster/slurm-up.sh installs slurm-wlm)")
    if shutil.which("apt-get") is None and shutil.which("sinfo") is None:
        pytest.skip("SLURM test cluster: needs apt-get to install slurm-wlm and munge")
    proc = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"SLURM test cluster did not start: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def _wait(job, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        q = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True)
        if not q.stdout.strip():
            return
        time.sleep(1)
    raise AssertionError(f"job {job} still queued after {timeout} s")


def test_slurm_runs_jobs_on_cpu_and_gpu_partitions(slurm, tmp_path):
    assert "slurm-wlm" in slurm or "slurm" in slurm
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
