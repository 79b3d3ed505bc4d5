"""Parallel trainers on few cores with CPU slot leases on / off, side by side in one run.

What ``snakemake --cores 8 train`` does on a 2-core machine (issue 26.1): ``--jobs`` trainers
(``python -m trainer``, the embedded default's ResNet-18 at width 1/4 on digits) start at once,
each asking for ``--threads`` threads (``--cores`` and ``OMP_NUM_THREADS``, as the train rule
passes them), all restricted to ``--cpus`` with ``taskset``. ``on``: CPU slot leases
(latent_mi/cpu_slots.py), ``off``: ``LATENT_MI_CPU_SLOTS=off`` (each trainer only capped at its
affinity, as before). The two modes alternate ``--reps`` times; printed: the wall time of each
batch of jobs and the median training-epoch time (the store's ``epoch_seconds``, epochs >= 1),
with the ratios off / on.

    python benchmarks/bench_cpu_slots.py                 # 4 jobs x 2 threads on cores 0,1
    python benchmarks/bench_cpu_slots.py --jobs 4 --threads 2 --cpus 0,1 --epochs 3 --reps 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ["--config", str(ROOT / "config" / "config.yaml"), "arch=resnet18", "seed=0"]


def batch(mode: str, args, folder: Path) -> tuple[float, list[float]]:
    """Wall seconds of ``args.jobs`` trainers started at once, and their epochs' seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    env.update(LATENT_MI_CPU_SLOTS=mode, LATENT_MI_CPU_SLOTS_DIR=str(folder / "slots"))
    runs = [folder / f"{mode}-{i}" for i in range(args.jobs)]
    t0 = time.perf_counter()
    procs = []
    for run in runs:
        cmd = ["taskset", "-c", args.cpus, sys.executable, "-m", "trainer"]
        cmd += ["--cores", str(args.threads), "--out", str(run), *CONFIG]
        cmd += [f"train.epochs={args.epochs}", "train.progress=false"]
        log = (folder / f"{run.name}.log").open("w")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    for proc, run in zip(procs, runs, strict=True):
        if proc.wait() != 0:
            sys.exit(f"trainer {run} failed: see {folder / (run.name + '.log')}")
    wall = time.perf_counter() - t0
    epochs = []
    for run in runs:
        seconds = zarr.open_group(str(run / "activations.zarr"), mode="r")["epoch_seconds"][...]
        epochs += [float(s) for s in seconds[1:]]  # epoch 0 is the evaluation of the init
    return wall, epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpus", default="0,1", help="taskset core list of every trainer")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--reps", type=int, default=2)
    args = p.parse_args()
    rows: dict[str, list[tuple[float, list[float]]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for mode in ("off", "on") if rep % 2 else ("on", "off"):
                folder = Path(tmp) / f"{mode}{rep}"
                folder.mkdir()
                rows[mode].append(batch(mode, args, folder))
                wall, ep = rows[mode][-1]
                print(
                    f"rep {rep} leases {mode}: batch {wall:.1f} s, epoch median {np.median(ep):.2f} s",
                    flush=True,
                )
    print(
        f"\n{args.jobs} trainers at once, {args.threads} threads asked each, cores {args.cpus}, "
        f"{args.epochs} epochs (ResNet-18 width 1/4, digits), {args.reps} reps per mode:"
    )
    print("| leases | batch wall s (each rep) | epoch s median [min, max] |")
    print("|---|---|---|")
    for mode in ("on", "off"):
        walls = ", ".join(f"{w:.1f}" for w, _ in rows[mode])
        ep = [e for _, es in rows[mode] for e in es]
        print(f"| {mode} | {walls} | {np.median(ep):.2f} [{min(ep):.2f}, {max(ep):.2f}] |")
    wall = {m: np.median([w for w, _ in rows[m]]) for m in rows}
    epoch = {m: np.median([e for _, es in rows[m] for e in es]) for m in rows}
    print(f"  batch wall time off / on: {wall['off'] / wall['on']:.2f}")
    print(f"  median epoch time off / on: {epoch['off'] / epoch['on']:.2f}")


if __name__ == "__main__":
    main()
