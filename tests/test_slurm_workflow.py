"""The tiny workflow grid through the test SLURM cluster, every job by sbatch (issue 24).

One local run and one run with a copy of workflow/profiles/slurm fitted to this node (threads
and memory capped, nothing else changed): the SLURM run's training job of one run is cancelled
with `scancel` mid-run, Snakemake must stop naming it, and the rerun must resume that run from
its last complete epoch. Afterwards every store, MI Dataset, intervention result and the
findings equal the local run's bit for bit.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
import yaml

from tests.slurm_cluster import job_rows, start_or_skip
from tests.test_trainer_run import assert_stores_equal
from tests.test_workflow import CODE, ROOT, TINY_CONFIG
from trainer import store

pytest.importorskip(
    "snakemake_executor_plugin_slurm", reason="the SLURM executor: pip install -e '.[slurm]'"
)

pytestmark = pytest.mark.slow
PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
EPOCHS = 6  # a window to cancel a training job in, after two complete epochs
CONFIG = {
    **TINY_CONFIG,
    # 96 training images train an epoch in 0.05 s, faster than squeue + scancel can land:
    # 3,000 make an epoch take about a second (the validation set, hence the analysis, is unchanged)
    "dataset": {**TINY_CONFIG["dataset"], "n_train": 3000},
    "train": {**TINY_CONFIG["train"], "epochs": EPOCHS},
    "slurm": {"cpu_partition": "cpu", "gpu_partition": "gpu"},
}
KILLED = "resnet18-relu-none-s1"  # the run whose training job is cancelled


def fitted_profile(dest: Path, cpus: int = 1, mem_mb: int = 2000) -> Path:
    """workflow/profiles/slurm with threads <= cpus and memory <= mem_mb, else unchanged."""
    prof = yaml.safe_load(PROFILE.read_text())
    prof["set-threads"] = {rule: min(n, cpus) for rule, n in prof["set-threads"].items()}
    prof["max-threads"] = cpus
    for res in [prof["default-resources"], *prof["set-resources"].values()]:
        if "mem_mb" in res:
            res["mem_mb"] = min(res["mem_mb"], mem_mb)
    prof["slurm-init-seconds-before-status-checks"] = 5
    prof["seconds-between-status-checks"] = 2
    prof["retries"] = 0  # the profile's retry would resubmit the cancelled job at once
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(prof))
    return dest


def project(workdir: Path) -> Path:
    """The project as a user has it: code, config/config.yaml = the test grid."""
    workdir.mkdir(parents=True)
    for name in CODE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, workdir / name)
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return workdir


def start(workdir: Path, *args: str) -> subprocess.Popen:
    """`snakemake figures ARGS` in workdir, stdout and stderr to workdir/snakemake.log."""
    cmd = [sys.executable, "-m", "snakemake", "figures", "--cores", "2", *args]
    env = {**os.environ, "PYTHONPATH": str(workdir), "OMP_NUM_THREADS": "1"}
    log = open(workdir / "snakemake.log", "a")
    return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, workdir: Path, timeout: float = 3000) -> str:
    """Waits for snakemake (SIGTERM on a timeout: the plugin then scancels its jobs); its log."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=120)
    return (workdir / "snakemake.log").read_text()


def queued_jobs() -> dict[str, str]:
    """{job id: comment} of queued and running jobs (the plugin comments `rule_<name>_...`)."""
    q = subprocess.run(["squeue", "-h", "-o", "%i|%k"], capture_output=True, text=True)
    return dict(line.split("|", 1) for line in q.stdout.split())


def cancel_training_mid_run(runs_root: Path, timeout: float = 1500) -> tuple[str, Path]:
    """scancel the train_run job of run KILLED (runs_root/KILLED-<identity hash>/) after two
    complete epochs; (its job id, its run folder)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = sorted(runs_root.glob(f"{KILLED}-*/activations.zarr"))
        try:
            if found and store.complete_epochs(found[0]) >= 2:
                run_dir = found[0].parent
                break
        except (FileNotFoundError, KeyError):  # the store is not (fully) created yet
            pass
        time.sleep(0.2)
    else:
        raise AssertionError(f"{runs_root}/{KILLED}-* never had two complete epochs")
    assert not (run_dir / "done.json").exists(), "training finished before it could be cancelled"
    job = next(
        j for j, c in queued_jobs().items() if c.startswith("rule_train_run") and KILLED in c
    )
    subprocess.run(["scancel", job], check=True)
    return job, run_dir


def count_jobs(log: str) -> int:
    """Jobs the plugin submitted (`Job N has been submitted with SLURM jobid M` lines)."""
    return len(re.findall(r"has been submitted with SLURM jobid \d+", log))


def result_files(results: Path) -> list[Path]:
    """Every MI Dataset, intervention result and findings file, relative to results/ (not the
    hidden provenance sidecars: they hold the time they were written)."""
    found = [*results.glob("mi/*/*.zarr"), *results.glob("interventions/*/*.zarr")]
    found += [*results.glob("twelve_bit/mi/*/*.zarr"), *results.glob("findings/*.json")]
    return sorted(p.relative_to(results) for p in found if not p.name.startswith("."))


def _rooted(attrs: dict, results: Path) -> dict:
    """attrs with the project folder (results/default/../..) written as ROOT."""
    root = str(results.parent.parent)
    return {k: v.replace(root, "ROOT") if isinstance(v, str) else v for k, v in attrs.items()}


def assert_results_equal(local: Path, remote: Path) -> None:
    names = result_files(local)
    assert names == result_files(remote) and len(names) >= 9, names
    for name in names:
        if name.suffix == ".json":
            assert json.loads((local / name).read_text()) == json.loads(
                (remote / name).read_text()
            ), name
        else:
            a, b = xr.open_zarr(local / name).load(), xr.open_zarr(remote / name).load()
            xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())  # values, bit for bit
            assert _rooted(a.attrs, local) == _rooted(b.attrs, remote), name  # paths differ
    for run in (local.parent / "runs").iterdir():  # the trained runs: results/runs/<run>-<hash>
        if (run / "activations.zarr").exists():
            assert_stores_equal(
                run / "activations.zarr", remote.parent / "runs" / run.name / "activations.zarr"
            )


def test_tiny_grid_through_slurm_equals_local_and_resumes_after_scancel(tmp_path):
    version = start_or_skip()
    local = project(tmp_path / "local")
    t0 = time.time()
    out = finish(start(local, "--max-threads", "1"), local)
    t_local = time.time() - t0
    assert "steps (100%) done" in out, out[-3000:]

    remote = project(tmp_path / "slurm")
    profile = fitted_profile(tmp_path / "profile")
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    t0 = time.time()
    first = start(remote, "--profile", str(profile))
    try:
        cancelled, run_dir = cancel_training_mid_run(remote / "results" / "runs")
    finally:
        log_first = finish(first, remote)
    assert first.returncode != 0, log_first[-3000:]
    error = log_first[log_first.index("Error in rule train_run") :][:1500]
    assert KILLED in error and cancelled in error, error
    done_before = store.complete_epochs(run_dir / "activations.zarr")
    assert 2 <= done_before < EPOCHS + 1

    rerun = start(remote, "--profile", str(profile))
    log = finish(rerun, remote)[len(log_first) :]
    t_slurm = time.time() - t0
    assert rerun.returncode == 0, log[-3000:]
    train_log = (remote / "results" / "runs" / "logs" / "train" / f"{run_dir.name}.log").read_text()
    resumed = re.search(r"resuming \S+ after epoch (\d+)", train_log)
    assert resumed and int(resumed.group(1)) >= done_before - 1 >= 1, train_log[-2000:]

    assert_results_equal(local / "results" / "default", remote / "results" / "default")
    rows = job_rows(since=since)
    states = [line.split()[2].rstrip("+") for line in rows.splitlines()[2:]]  # CANCELLED+
    assert states.count("CANCELLED") == 1 and set(states) == {"CANCELLED", "COMPLETED"}, rows
    assert len(states) == count_jobs(log_first + log), rows  # every job went through sbatch
    print(
        f"\n{version}; tiny grid ({EPOCHS} epochs): local {t_local:.0f} s, through SLURM "
        f"{t_slurm:.0f} s (including the cancelled job {cancelled} and the rerun)\n{rows}"
    )
