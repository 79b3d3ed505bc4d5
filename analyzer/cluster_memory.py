"""Worker memory on a dask.distributed cluster: one line naming the setting to change.

A worker whose memory limit is smaller than one epoch task either cannot start it (already
near its limit: checked before any work, :func:`preflight`) or is killed by its nanny while
running it and restarted, until the scheduler gives the task up (``KilledWorker`` after
the scheduler's ``distributed.scheduler.allowed-failures`` + 1 tries: :func:`killed_message`). Both become one
line naming ``dask worker --memory-limit`` (dask-jobqueue: ``SLURMCluster(memory=...)``).
"""

from __future__ import annotations

from pathlib import Path

import dask

FIX = (
    "give each worker more memory: `dask worker --memory-limit` "
    "(dask-jobqueue: SLURMCluster(memory=...)), or fewer threads per worker (`--nthreads`)"
)


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


def worker_memory(client) -> list[tuple[str, int, int]]:
    """(address, memory limit in bytes (0: none), bytes in use) of every worker."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return [
        (addr, int(w.get("memory_limit") or 0), int(w.get("metrics", {}).get("memory", 0)))
        for addr, w in sorted(workers.items())
    ]


def task_bytes(store: str | Path) -> int:
    """A lower bound of one epoch task's memory (bytes): the values of the store's widest
    layer for one epoch (samples x channels x stored item size); 0 where unreadable."""
    from analyzer.activations import StoreError, layers_of, open_activations

    try:
        ds = open_activations(store, allow_running=True, lazy=True)
        widest = max(layer.channels for layer in layers_of(ds))
        return ds.sizes["sample"] * widest * ds["activation"].dtype.itemsize
    except (StoreError, KeyError, ValueError, OSError):
        return 0  # the analysis itself reports the store's problem


def preflight(workers: list[tuple[str, int, int]], store: str | Path) -> str | None:
    """The problem of a worker (of :func:`worker_memory`) that cannot hold one epoch task beside
    what it already uses (its nanny kills it at ``distributed.worker.memory.terminate`` of its
    limit), else None."""
    need = task_bytes(store)
    terminate = dask.config.get("distributed.worker.memory.terminate", 0.95) or 1.0
    for addr, limit, used in workers:
        if limit and used + need > terminate * limit:
            return (
                f"dask worker {addr} has a memory limit of {mib(limit)} and uses {mib(used)}; "
                f"one epoch task of {store} needs at least {mib(need)} more: {FIX}"
            )
    return None


def killed_message(
    error: BaseException, workers: list[tuple[str, int, int]], store: str | Path
) -> str | None:
    """One line for a ``KilledWorker`` (workers died running an epoch task), else None.
    ``workers``: :func:`worker_memory` before the run (the dying ones are gone by now)."""
    if type(error).__name__ != "KilledWorker":
        return None
    limits = sorted({limit for _, limit, _ in workers if limit})
    now = f"now {', '.join(mib(b) for b in limits)}" if limits else "no limit reported"
    return (
        f"dask workers died running an epoch task of {store} (every try killed its worker; "
        f"a worker memory limit smaller than one epoch task does this, {now}): {FIX}"
    )
