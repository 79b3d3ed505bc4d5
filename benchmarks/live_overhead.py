"""Trainer epoch time with ``train.live`` on against off, interleaved in one run (issue 23).

Each repetition trains the same config twice through ``trainer.train.run`` (live off, then on,
loader workers 0 so the only child process is the live analyzer). Epoch time: the mean of the
store's ``epoch_seconds`` over the trained epochs (s); the live process's CPU time: this
process's children's user + system CPU during the live run (s). Target: on / off <= 1.05.
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


def bench_live(width: float, epochs: int, reps: int, tmp: Path) -> None:
    """Print epoch time with live off / on side by side and the live process's CPU time."""
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
        for mode in ("off", "on"):
            cfg = resolve_config(None, [*base, f"train.live={'true' if mode == 'on' else 'false'}"])
            rows[mode].append(_one(cfg, tmp / f"live-{mode}-{rep}"))
    off = min(r[0] for r in rows["off"])
    on = min(r[0] for r in rows["on"])
    print(f"\nlive analyzer (digits, width {width}, {epochs} epochs, best of {reps}):")
    print("| live | epoch s (best) | run wall s (best) | live process CPU s |")
    print("|---|---|---|---|")
    for mode in ("off", "on"):
        r = rows[mode]
        cpu = np.mean([x[2] for x in r]) if mode == "on" else 0.0
        print(f"| {mode} | {min(x[0] for x in r):.3f} | {min(x[1] for x in r):.1f} | {cpu:.1f} |")
    print(f"  epoch time live on / off = {on / off:.3f} (target <= 1.05)")
