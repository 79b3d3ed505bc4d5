"""Stop a long job when the workflow that started it dies (``kill -9`` of Snakemake).

Torch-free, standard library only. Snakemake runs a job as ``bash -c CMD``: killed with
``kill -9``, it leaves the shell and the job running, orphaned, holding the run directory's
lock against the rerun. The workflow therefore starts jobs with ``LATENT_MI_EXIT_WITH=$PPID``
(the Snakemake process, seen from the job's shell); :func:`exit_with_workflow` then watches
that process from a daemon thread and ends this one, as a ``kill`` would (the trainer
resumes from there), once it is gone. On Linux the job also dies with its own parent
(``prctl(PR_SET_PDEATHSIG)``). Without the variable nothing is watched: a trainer started
by hand (``nohup``, a terminal) outlives its shell as before.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

ENV = "LATENT_MI_EXIT_WITH"
PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5

log = logging.getLogger("latent_mi")


def start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (``/proc/PID/stat`` field 22), None if it is gone.

    Tells a process apart from a later one that reuses its PID.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has ended
        return None
    return fields[19]


def watched_pid() -> int | None:
    """The PID named by ``LATENT_MI_EXIT_WITH`` if it is a live process here, else None."""
    value = os.environ.get(ENV, "")
    if not value.isdigit() or int(value) <= 1 or start_time(int(value)) is None:
        return None
    return int(value)


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _watch(pid: int, started: str, what: str) -> None:
    while start_time(pid) == started:
        time.sleep(POLL_SECONDS)
    log.error(
        "the workflow (process %d) that started this %s has ended: stopping it too (a rerun "
        "resumes it)",
        pid,
        what,
    )
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    os._exit(143)  # SIGTERM was caught somewhere: leave anyway


def exit_with_workflow(what: str = "job") -> int | None:
    """Watch the process named by ``LATENT_MI_EXIT_WITH`` (if any); returns its PID."""
    pid = watched_pid()
    if pid is None:
        return None
    _die_with_parent()
    started = start_time(pid)
    thread = threading.Thread(
        target=_watch, args=(pid, started, what), name="exit-with-workflow", daemon=True
    )
    thread.start()
    return pid
