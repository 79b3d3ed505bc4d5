"""Trainer epoch time with ``train.live`` on against off, interleaved in one run (issue 23).

Each repetition trains the same config twice through ``trainer.train.run`` (live off and on,
the order alternating between repetitions; loader workers 0, so the only child process is
the live analyzer). Epoch time: the mean of the store's ``epoch_seconds`` over the trained
epochs (s); the ratio on / off per pair, its median and spread (min, max) over the pairs; the
live process's CPU time: this process's children's user + system CPU during the live run
(s). Target: on / off <= 1.05.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np
import zarr

from trainer.config import resolve_config
from trainer.train import run


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _one(cfg: dict, run_dir: Path) -> tuple[float, float, float]:
    """(mean epoch seconds, wall seconds, children CPU seconds) of one trainer run."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    run(cfg, run_dir)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    secs = zarr.open_group(run_dir / "activations.zarr", mode="r")["epoch_seconds"][1:]
    return float(np.mean(secs)), wall, cpu


def _summary(values: list[float]) -> str:
    """``median [min, max]`` of ``values``."""
    return f"{np.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def bench_live(width: float, epochs: int, reps: int, tmp: Path) -> None:
    """Print epoch time with live off / on side by side (median and spread over ``reps``
    interleaved pairs, the order alternating) and the live process's CPU time."""
    base = [
        "dataset.name=digits",
        f"width={width}",
        f"train.epochs={epochs}",
        "train.progress=false",
        "train.num_workers=0",
        "train.device=cpu",
    ]
    rows = {"off": [], "on": []}
    for rep in range(reps):
        for mode in ("off", "on") if rep % 2 == 0 else ("on", "off"):
            cfg = resolve_config(None, [*base, f"train.live={'true' if mode == 'on' else 'false'}"])
            rows[mode].append(_one(cfg, tmp / f"live-{mode}-{rep}"))
    ratios = [on[0] / off[0] for on, off in zip(rows["on"], rows["off"], strict=True)]
    print(f"\nlive analyzer (digits, width {width}, {epochs} epochs, {reps} interleaved pairs):")
    print("| live | epoch s median [min, max] | run wall s median | children CPU s median |")
    print("|---|---|---|---|")
    for mode in ("off", "on"):
        r = rows[mode]
        wall, cpu = np.median([x[1] for x in r]), np.median([x[2] for x in r])
        print(f"| {mode} | {_summary([x[0] for x in r])} | {wall:.1f} | {cpu:.1f} |")
    cpu = [x[2] for x in rows["on"]]
    print(
        f"  epoch time live on / off, per pair: {_summary(ratios)} (median [min, max]; "
        "target <= 1.05)"
    )
    print(
        f"  live process CPU: {_summary(cpu)} s per run, "
        f"{np.median(cpu) / (epochs + 1):.2f} s per stored epoch (niced, one thread)"
    )
