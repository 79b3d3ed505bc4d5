"""The live analyzer's monitor: starts ``python -m analyzer.live RUN_DIR`` beside training.

Training never waits for it: the process polls the store on its own (nice 19, one thread,
skipping to the newest epoch when it falls behind: analyzer/live.py); the trainer only
checks, once per epoch, whether it died, and logs one line if so (training goes on).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("trainer")
REPO_ROOT = Path(__file__).resolve().parents[1]


class LiveMonitor:
    """One live analyzer process for ``run_dir``; ``check()`` once per epoch, ``close()`` at the end."""

    def __init__(
        self,
        run_dir: Path,
        bins: int = 20,
        store: Path | None = None,
        extra: list[str] | None = None,
    ):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
        env.update(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")  # one core (it nices itself)
        self.log_path = Path(run_dir) / "live.log"
        self._log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "analyzer.live", str(run_dir), "--bins", str(bins)]
        cmd += ["--store", str(store)] if store is not None else []
        self.proc = subprocess.Popen(
            cmd + (extra or []), env=env, stdout=self._log, stderr=self._log
        )
        self.reported = False

    def check(self) -> None:
        """Log one line (once) if the live process has died with an error."""
        rc = self.proc.poll()
        if rc not in (None, 0) and not self.reported:
            self.reported = True
            log.warning(
                "live analyzer (pid %d) exited with %d; training continues (see %s)",
                self.proc.pid,
                rc,
                self.log_path,
            )

    def close(self, timeout: float = 600.0, finished: bool = True) -> None:
        """Let the process log the last epochs (it exits when the store is finalized);
        ``finished`` False (the store is left running): stop it now."""
        if not finished:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.check()
        self._log.close()
