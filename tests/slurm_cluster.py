"""The single-node test SLURM cluster (tests/cluster/slurm-up.sh) for tests named *slurm*.

`start_or_skip()` starts it (or finds it running) and skips the calling test with one reason
where it cannot start: no root, no apt-get, or slurm-up.sh failing.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

UP = Path(__file__).parent / "cluster" / "slurm-up.sh"


def running() -> bool:
    """True when slurmctld answers, the node is usable and accounting (sacct) answers."""
    if shutil.which("sinfo") is None or shutil.which("sacct") is None:
        return False
    info = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    acct = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True)
    states = set(info.stdout.split())
    return info.returncode == 0 and acct.returncode == 0 and bool(states & {"idle", "mix", "alloc"})


def start_or_skip() -> str:
    """The SLURM version line (`slurm-wlm 22.05.8`); skips where the cluster cannot start."""
    if not running():
        if os.geteuid() != 0:
            pytest.skip(
                "SLURM test cluster: needs root (tests/cluster/slurm-up.sh installs slurm-wlm)"
            )
        if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
            pytest.skip("SLURM test cluster: needs apt-get to install slurm-wlm, slurmdbd, munge")
        proc = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            pytest.skip(f"SLURM test cluster did not start (tests/cluster/slurm-up.sh): {last}")
    version = subprocess.run(["sinfo", "--version"], capture_output=True, text=True)
    return version.stdout.strip()


FIELDS = "JobID,Partition,State,ExitCode,Elapsed,AllocTRES%42,Comment%60"


def job_rows(job_ids=(), since: str = "", fields: str = FIELDS) -> str:
    """`sacct` lines (header first) of the given job ids or of all jobs started since `since`
    (sacct time, e.g. 2026-12-05T09:00:00); allocations only (-X)."""
    cmd = ["sacct", "-X", f"--format={fields}"]
    cmd += ["-j", ",".join(job_ids)] if job_ids else ["-S", since, "-E", "now"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
