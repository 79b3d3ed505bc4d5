"""``python -m latent_mi.status [RESULTS_DIR]``: where is my run? Epoch, accuracy, ETA of each run.

Reads every ``progress.json`` under RESULTS_DIR (default ``results``): epochs complete of the
configured total, last and best validation accuracy, and an ETA (remaining epochs x the last
epoch's seconds). A run with ``done.json`` shows its final status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from latent_mi import contract as C


def run_status(run_dir: Path) -> dict:
    """One run's row: run, epoch (complete/total), val_acc, best_val_acc, status, eta_s (s)."""
    prog = json.loads((run_dir / C.PROGRESS).read_text())
    total = json.loads(prog.get("config", "{}")).get("train", {}).get("epochs")
    done_epochs = int(prog["epochs_complete"])  # epoch 0 (init) counts: a run has epochs + 1
    metrics = prog.get("last_metrics", {})
    status, eta = "running", None
    if (run_dir / "done.json").exists():
        status = json.loads((run_dir / "done.json").read_text()).get("status", "complete")
    elif total is not None and metrics.get("epoch_seconds") is not None:
        eta = max(int(total) + 1 - done_epochs, 0) * float(metrics["epoch_seconds"])
    return {
        "run": str(run_dir),
        "epoch": f"{done_epochs - 1}/{total if total is not None else '?'}",
        "val_acc": metrics.get(C.VAL_ACC),
        "best_val_acc": prog.get("best_val_acc"),
        "status": status,
        "eta_s": eta,
    }


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "-"
    m, s = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _fmt_acc(x) -> str:
    return "-" if x is None else f"{float(x):.4f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m latent_mi.status", description=__doc__.splitlines()[0]
    )
    p.add_argument("results", nargs="?", default="results", help="folder searched for runs")
    a = p.parse_args(argv)
    root = Path(a.results)
    if not root.is_dir():
        print(f"latent_mi.status: error: {root} is not a folder", file=sys.stderr)
        return 2
    rows = []
    for prog in sorted(root.rglob(C.PROGRESS)):
        try:
            rows.append(run_status(prog.parent))
        except (OSError, ValueError, KeyError) as e:
            print(f"latent_mi.status: skipping {prog}: {e}", file=sys.stderr)
    if not rows:
        print(f"no runs under {root}")
        return 0
    head = ("run", "epoch", "val_acc", "best", "status", "eta")
    table = [
        (
            r["run"],
            r["epoch"],
            _fmt_acc(r["val_acc"]),
            _fmt_acc(r["best_val_acc"]),
            r["status"],
            _fmt_eta(r["eta_s"]),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=False)]
    for line in (head, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
