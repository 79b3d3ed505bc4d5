"""Machine-wide CPU slots: this project's compute processes never oversubscribe the cores together.

Issue 26.1: ``snakemake --cores 8`` on a 2-core machine starts 4 jobs of 2 threads; each job
capping its threads at its CPU affinity is not enough, the jobs together still run 8 threads on
2 cores (a training epoch 5-10x slower). Snakemake cannot be capped at parse time (the executor
is not known then, and a cluster's nodes have their own cores), so the processes share the cores
themselves, whoever started them (Snakemake's local or SLURM executor, a shell, a notebook):

* slot ``k`` is an exclusive ``fcntl.flock`` on the file ``<folder>/core-<k>``, for a core id
  ``k`` of the process's CPU affinity; ``folder`` is ``/tmp/latent-mi-<uid>/cpu-slots``
  (``LATENT_MI_CPU_SLOTS_DIR`` overrides it; node-local, so SLURM jobs on different nodes never
  meet, and jobs bound to disjoint cores never wait for each other);
* a process asking for ``n`` threads takes up to ``n`` free slots and runs as many threads as
  it holds; with none free it waits, polling every POLL_SECONDS and holding nothing meanwhile
  (no deadlock), and says so in one line. Torch processes (trainer, interventions) lease
  ``exact``-ly: all ``n`` or wait, since torch's results change with its thread count (a
  digits run on 1 thread differs from one on 2 by ~4e-4 in the activations after 2 epochs),
  so a run's numbers never depend on the load; the analyzer's do not depend on its threads;
* the kernel drops the locks when the process exits or is killed (``kill -9`` too); a fork
  child closes its copies (they never keep a dead holder's slots).

``LATENT_MI_CPU_SLOTS=off`` turns leasing off (threads are then only capped at the affinity).
Threads never grow after the start: a job that found one slot free keeps one thread.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no leases
    fcntl = None

SWITCH = "LATENT_MI_CPU_SLOTS"  # on (default) / off
FOLDER = "LATENT_MI_CPU_SLOTS_DIR"
POLL_SECONDS = 0.2
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_OFF, _ON = {"off", "0", "false", "no"}, {"on", "1", "true", "yes", ""}


class SlotError(ValueError):
    """A bad LATENT_MI_CPU_SLOTS value or an unusable slot folder (one line)."""


def usable_cores() -> list[int]:
    """Core ids this process may run on (its CPU affinity; 0..cpu_count-1 off Linux)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def enabled() -> bool:
    """Whether leases are on (``LATENT_MI_CPU_SLOTS``, default on; always off without fcntl)."""
    value = os.environ.get(SWITCH, "").strip().lower()
    if value not in _ON | _OFF:
        raise SlotError(f"{SWITCH}={os.environ[SWITCH]!r}: use on or off")
    return fcntl is not None and value in _ON


def slot_folder() -> Path:
    """The per-user slot folder, created 0700; refused if it is not a folder this user owns."""
    default = Path("/tmp") / f"latent-mi-{os.getuid()}" / "cpu-slots"
    folder = Path(os.environ.get(FOLDER) or default)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as e:
        raise SlotError(f"CPU slot folder {folder}: {e.strerror} (set {FOLDER})") from None
    if not os.path.isdir(folder) or os.path.islink(folder) or info.st_uid != os.getuid():
        raise SlotError(f"CPU slot folder {folder} is not a folder of this user (set {FOLDER})")
    return folder


@dataclass
class Lease:
    """The slots one process holds: ``cores`` (their core ids), ``threads`` to run."""

    threads: int
    cores: tuple[int, ...] = ()
    waited_s: float = 0.0
    _fds: list[int] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)  # closing the last copy drops the lock
        self._fds.clear()


_HELD: list[Lease] = []  # this process's leases (their descriptors close in fork children)


def _close_in_child() -> None:
    for lease in _HELD:
        for fd in lease._fds:
            try:
                os.close(fd)  # the parent's lock stays: it holds its own copy
            except OSError:
                pass
        lease._fds = []
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def _try_slots(folder: Path, cores: list[int], wanted: int) -> dict[int, int]:
    """Non-blocking: lock up to ``wanted`` free slots of ``cores``; core id -> descriptor."""
    held: dict[int, int] = {}
    for core in cores:
        if len(held) == wanted:
            break
        fd = os.open(folder / f"core-{core}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for the waiting line
        held[core] = fd
    return held


def _holders(folder: Path, cores: list[int]) -> list[str]:
    pids = set()
    for core in cores:
        try:
            pids.add((folder / f"core-{core}").read_text().strip())
        except OSError:
            pass
    return sorted(p for p in pids if p.isdigit())


def stamp() -> str:
    """Local wall-clock time to the millisecond (the slot lines: tests order them)."""
    return datetime.datetime.now().isoformat(timespec="milliseconds")


def _release_fds(held: dict[int, int]) -> dict[int, int]:
    for fd in held.values():
        os.close(fd)
    return {}


def _silent(line: str) -> None:
    pass


def acquire(
    wanted: int, say: Callable[[str], None], exact: bool = False, verbose: bool = True
) -> Lease:
    """Lease up to ``wanted`` (at least 1, at most the usable cores) slots, or exactly
    ``wanted`` with ``exact`` (a torch process: its numbers depend on its thread count);
    waits, holding none, while too few are free, and says so; the leased line only
    ``verbose`` or after a wait. With leases off: ``min(wanted, usable)``
    threads and no slots."""
    cores = usable_cores()
    wanted = max(1, min(int(wanted), len(cores)))
    if not enabled():
        return Lease(threads=wanted)
    folder = slot_folder()
    need = wanted if exact else 1
    t0 = time.monotonic()
    held = _try_slots(folder, cores, wanted)
    waited = len(held) < need
    if waited:
        held = _release_fds(held)
        pids = ", ".join(_holders(folder, cores)) or "unknown"
        why = " (its numbers depend on its thread count)" if exact and need > 1 else ""
        say(
            f"waiting for {need} free CPU slot{'s' * (need > 1)}{why}: the {len(cores)} usable "
            f"cores are leased by other latent-mi processes (PIDs {pids}; {SWITCH}=off turns "
            "leases off)"
        )
    while len(held) < need:
        time.sleep(POLL_SECONDS)
        held = _try_slots(folder, cores, wanted)
        if len(held) < need:
            held = _release_fds(held)
    waited_s = time.monotonic() - t0 if waited else 0.0
    lease = Lease(len(held), tuple(held), waited_s, list(held.values()))
    _HELD.append(lease)
    after = f", after waiting {lease.waited_s:.1f} s" if waited else ""
    (say if verbose or waited else _silent)(
        f"CPU slots {','.join(map(str, lease.cores))} leased at {stamp()}: {lease.threads} "
        f"threads ({wanted} asked, {len(cores)} usable{after})"
    )
    return lease


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def asked_threads(threads: int | None) -> int:
    """Threads a process asks for: ``threads`` if given, else its usable cores; never more
    than ``OMP_NUM_THREADS`` when that is set (the workflow's training jobs set it)."""
    usable = len(usable_cores())
    asked = threads or usable
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return min(asked, int(omp)) if omp.isdigit() and int(omp) > 0 else asked


@contextmanager
def lease(
    threads: int | None,
    say: Callable[[str], None] = _stderr,
    numba_too: bool = False,
    exact: bool = False,
    verbose: bool = False,
) -> Iterator[Lease]:
    """Hold CPU slots for ``threads`` threads (None: the usable cores) while inside; sets the
    BLAS/OpenMP thread variables (and numba's threads of this thread with ``numba_too``) to
    the slots held, and restores them after. Torch and dask thread counts are the
    caller's: set them to ``lease.threads``. ``exact``: all asked threads or wait (module doc);
    ``verbose``: the leased and released lines also when it did not wait."""
    held = acquire(asked_threads(threads), say, exact, verbose)
    previous = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    for name in THREAD_VARIABLES:
        os.environ[name] = str(held.threads)
    numba_before = _set_numba_threads(held.threads) if numba_too else None
    try:
        yield held
    finally:
        if numba_before is not None:
            _set_numba_threads(numba_before)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if held.cores:  # the line first: a log's interval lies inside the lock's
            (say if verbose or held.waited_s else _silent)(
                f"CPU slots {','.join(map(str, held.cores))} released at {stamp()}"
            )
            held.release()
            if held in _HELD:
                _HELD.remove(held)


def _set_numba_threads(threads: int) -> int:
    """Set numba's threads of this thread (thread-local; never NUMBA_NUM_THREADS: numba
    refuses a change of it once its pool runs); returns the previous count."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return previous
