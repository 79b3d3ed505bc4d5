"""Seconds to ``--help`` of each command beside the cost of importing torch (issue 26.11).

    python benchmarks/cli_startup.py [--repeats 3]

A command whose --help imports torch takes at least the torch column; parsing must not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["analyzer", "interventions", "trainer", "analyzer.sweep"]


def seconds(args: list[str], repeats: int) -> float:
    """Best wall time of ``python args`` over ``repeats`` runs (s)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], capture_output=True, env=env, cwd=ROOT, check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch = seconds(["-c", "import torch"], args.repeats)
    print(f"{'command':<36} {'--help s':>9} {'import torch s':>15} {'ratio':>7}")
    for name in COMMANDS:
        t = seconds(["-m", name, "--help"], args.repeats)
        print(f"python -m {name + ' --help':<26} {t:9.2f} {torch:15.2f} {t / torch:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
