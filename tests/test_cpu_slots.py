"""CPU slot leases (latent_mi/cpu_slots.py, issue 26.1): real processes, no mocks."""

import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr

from tests.helpers import TINY

ROOT = Path(__file__).resolve().parents[1]
LEASED = re.compile(r"CPU slots ([\d,]+) leased at (\S+): (\d+) threads")
RELEASED = re.compile(r"CPU slots ([\d,]+) released at (\S+)")
needs_taskset = pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset")
TWO_CORES = sorted(os.sched_getaffinity(0))[:2]
needs_two = pytest.mark.skipif(len(TWO_CORES) < 2, reason="needs 2 usable cores")
HOLD = (
    "import time; from latent_mi import cpu_slots\n"
    "with cpu_slots.lease({n}) as held:\n"
    "    print('holding', held.cores, flush=True); time.sleep({sleep})\n"
)


def slot_env(tmp_path: Path, **extra: str) -> dict:
    """A private slot folder: other processes of this user never meet the test's."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "LATENT_MI_CPU_SLOTS_DIR": str(tmp_path / "slots"),
        **extra,
    }


def intervals(text: str) -> list[tuple[float, float, set[int], int]]:
    """(lease time, release time, core ids, threads) of each lease a log reports."""
    parse = lambda s: datetime.datetime.fromisoformat(s).timestamp()  # noqa: E731
    leases = [
        (parse(m[2]), {int(c) for c in m[1].split(",")}, int(m[3])) for m in LEASED.finditer(text)
    ]
    releases = [parse(m[2]) for m in RELEASED.finditer(text)]
    assert len(leases) == len(releases), text[-2000:]
    return [(t0, t1, cores, n) for (t0, cores, n), t1 in zip(leases, releases, strict=True)]


def assert_never_oversubscribed(spans, usable: int) -> None:
    """At every lease start, the slots held then (by all processes) fit the usable cores and
    no core id is held twice."""
    for start, _, _, _ in spans:
        live = [s for s in spans if s[0] <= start < s[1]]
        assert sum(s[3] for s in live) <= usable, live
        cores = [c for s in live for c in s[2]]
        assert len(cores) == len(set(cores)), live


def store_arrays(run: Path) -> dict:
    group = zarr.open_group(str(run / "activations.zarr"), mode="r")
    return {k: a[...] for k, a in group.arrays() if k != "epoch_seconds"}  # timing differs


def trainer_cmd(out: Path, cores: str) -> list[str]:
    cmd = ["taskset", "-c", cores, sys.executable, "-m", "trainer", "--cores", "2"]
    return cmd + ["--out", str(out), *TINY, "train.epochs=2"]


@pytest.mark.slow  # 5 tiny trainings, 4 of them at once: ~40 s on 2 cores
@needs_taskset
@needs_two
def test_four_trainers_on_two_cores_share_them_and_match_a_run_alone(tmp_path):
    cores = ",".join(map(str, TWO_CORES))
    env = slot_env(tmp_path, OMP_NUM_THREADS="2")  # as the workflow's train rule sets
    alone = subprocess.run(
        trainer_cmd(tmp_path / "alone", cores), capture_output=True, text=True, env=env
    )
    assert alone.returncode == 0, alone.stderr[-2000:]
    procs = [
        subprocess.Popen(
            trainer_cmd(tmp_path / f"r{i}", cores), stderr=subprocess.PIPE, text=True, env=env
        )
        for i in range(4)
    ]
    logs = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-1500:] for log in logs)
    spans = [span for log in logs for span in intervals(log)]
    assert len(spans) == 4 and all(s[3] == 2 for s in spans)  # exact: 2 threads each
    assert_never_oversubscribed(spans, usable=2)
    assert sum("waiting for 2 free CPU slots" in log for log in logs) >= 3
    threads = [line for log in logs for line in log.splitlines() if "torch threads" in line]
    assert all("torch threads 2 (2 cores granted, 2 usable)" in t for t in threads), threads
    assert len(threads) == 4, "\n".join(log[-1500:] for log in logs)
    reference = store_arrays(tmp_path / "alone")
    for i in range(4):  # same thread count as alone: bit-identical stores
        got = store_arrays(tmp_path / f"r{i}")
        assert got.keys() == reference.keys()
        for name, values in reference.items():
            assert np.array_equal(got[name], values, equal_nan=values.dtype.kind == "f"), name


@needs_two
def test_kill_9_of_a_holder_hands_its_slots_to_a_waiting_process(tmp_path):
    env = slot_env(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(n=64, sleep=600)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().startswith("holding")
        waiter = subprocess.Popen(
            [sys.executable, "-c", HOLD.format(n=1, sleep=0)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        time.sleep(2.0)
        assert waiter.poll() is None  # still waiting: every usable core is held
        os.kill(holder.pid, signal.SIGKILL)
        out, err = waiter.communicate(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert waiter.returncode == 0, err
    assert f"(PIDs {holder.pid};" in err  # the waiting line names the holder
    assert "waiting for 1 free CPU slot" in err and out.startswith("holding")


@needs_two
def test_flexible_lease_takes_what_is_free_and_exact_waits_for_all(tmp_path):
    env = slot_env(tmp_path)
    one = f"import os; os.sched_setaffinity(0, {{{TWO_CORES[0]}}})\n"  # the holder keeps one core
    holder = subprocess.Popen(
        [sys.executable, "-c", one + HOLD.format(n=1, sleep=600)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().startswith("holding")
        flexible = subprocess.run(
            [sys.executable, "-c", HOLD.format(n=2, sleep=0)],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert flexible.stdout.startswith(f"holding ({TWO_CORES[1]},)"), flexible.stderr
        exact = "from latent_mi import cpu_slots; cpu_slots.acquire(2, print, exact=True)"
        waiting = subprocess.Popen(
            [sys.executable, "-c", exact], stdout=subprocess.PIPE, text=True, env=env
        )
        assert "waiting for 2 free CPU slots" in waiting.stdout.readline()
        holder.kill()
        assert "2 threads" in waiting.communicate(timeout=30)[0]
    finally:
        holder.kill()
        holder.wait()


def test_switch_off_and_a_bad_switch_value(tmp_path):
    code = HOLD.format(n=1, sleep=0)
    off = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=slot_env(tmp_path, LATENT_MI_CPU_SLOTS="off"),
    )
    assert (
        off.returncode == 0
        and off.stdout.startswith("holding ()")
        and "CPU slots" not in off.stderr
    )
    assert not (tmp_path / "slots").exists()
    env = slot_env(tmp_path, LATENT_MI_CPU_SLOTS="maybe")
    cmd = [sys.executable, "-m", "trainer", "--out", str(tmp_path / "run"), *TINY]
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "trainer: error: LATENT_MI_CPU_SLOTS='maybe': use on or off"
    ]


@pytest.mark.slow  # Snakemake + 4 tiny trainings: ~60 s on 2 cores
@needs_taskset
@needs_two
def test_snakemake_cores_8_on_two_cores_never_overlaps_slots(tmp_path):
    config = {
        "dataset": {"name": "synthetic", "image_size": 16, "n_train": 96, "n_val": 48},
        "width": 0.125,
        "grid": {
            "arch": ["resnet18"],
            "activation": ["relu"],
            "regularizer": ["none"],
            "seed": [0, 1, 2, 3],
        },
        "train": {"epochs": 2, "lr": 0.02, "progress": False},
        "interventions": {"enabled": False},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = [
        "taskset",
        "-c",
        ",".join(map(str, TWO_CORES)),
        snakemake,
        "--snakefile",
        str(ROOT / "Snakefile"),
    ]
    cmd += [
        "--directory",
        str(tmp_path),
        "--cores",
        "8",
        "train",
        "--configfile",
        str(tmp_path / "tiny.yaml"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=slot_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = [p.read_text() for p in tmp_path.rglob("*.log") if LEASED.search(p.read_text())]
    assert len(logs) == 4, proc.stderr[-3000:]
    spans = [span for log in logs for span in intervals(log)]
    assert len(spans) == 4 and all(s[3] == 2 for s in spans)
    assert_never_oversubscribed(spans, usable=2)
    assert sum("waiting for 2 free CPU slots" in log for log in logs) >= 2  # started together


def test_a_fork_child_never_keeps_a_killed_holders_slots(tmp_path):
    env = slot_env(tmp_path)
    code = (
        "import os, time; from latent_mi import cpu_slots\n"
        "with cpu_slots.lease(64):\n"
        "    child = os.fork()\n"
        "    if child == 0:\n"
        "        time.sleep(60); os._exit(0)\n"
        "    print(child, flush=True); time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    child = int(holder.stdout.readline())
    try:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        after = subprocess.run(
            [sys.executable, "-c", HOLD.format(n=64, sleep=0)],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        os.kill(child, 0)  # raises if the fork child is gone: it must still be alive here
        assert "waiting" not in after.stderr, after.stderr  # its slots were free at once
        assert after.stdout.startswith(
            f"holding ({', '.join(map(str, sorted(os.sched_getaffinity(0))))}"
        )
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
