"""The training loop of every run: train, measure, dump GAP activations, resume after a kill.

One loop for every task (:mod:`trainer.task`: the CNNs, dumped every epoch;
:mod:`trainer.twelve_bit.task`: the 12-bit MLP, dumped on a log-spaced epoch schedule). After
torchvision's references/classification: :func:`run` locks the run directory,
:func:`start_fresh` or :func:`resume_from` gets the run to its latest dump,
:func:`train_and_dump` trains the remaining epochs and dumps, checkpoints and records
progress at each epoch of the task's dump schedule, :func:`finish_run` marks it done. A
checkpoint is a dict (:func:`checkpoint_state`). Run directory layout::

    <run_dir>/activations.zarr      the activation store (trainer.store)
    <run_dir>/checkpoints/          init.pt, best.pt, last.pt (+ epoch-NNN.pt if configured)
    <run_dir>/progress.json         dumps stored (epochs_complete), best epoch (atomic; resume reads it)
    <run_dir>/done.json             written last: the run finished (workflow target)
    <run_dir>/train.log             one line per epoch
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from latent_mi import contract as C
from latent_mi import outputs, parent_watch
from trainer import resume, run_files, store
from trainer.config import config_json
from trainer.epoch import DivergedError, evaluate, train_one_epoch
from trainer.loaders import cap_threads, granted_cores
from trainer.run_files import atomic_torch_save, atomic_write_json
from trainer.task import EPOCH_0, Task, hsic_weights, image_task

log = logging.getLogger("trainer")


LOCK_WAIT_SECONDS = 30  # how long a workflow-started trainer waits for the run's lock

__all__ = ["DivergedError", "Runtime", "evaluate", "hsic_weights", "run", "train_one_epoch"]


@dataclass
class Runtime:
    """How this process runs a config (not part of the run's identity): from the CLI."""

    workers: int | str | None = None  # DataLoader workers; None: train.num_workers
    cores: int | None = None  # cores granted (``auto`` workers); None: CPU affinity
    live: bool = False  # run the live analyzer beside training (trainer/live.py)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name} but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed the global RNGs (torch, numpy, random) a run's initialization draws from."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _rng_state(task: Task) -> dict:
    """Global RNG states (dropout, noise) and the task's own generators (the 12-bit batch
    order); the image loaders' order and augmentation are seeded per epoch."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "generators": {name: g.get_state() for name, g in task.generators.items()},
    }


def _set_rng_state(state: dict, task: Task) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for name, generator in task.generators.items():
        generator.set_state(state["generators"][name])


def run(cfg: dict, run_dir: str | Path, runtime: Runtime | None = None) -> dict:
    """Train one run described by a resolved config; returns the done manifest.

    The run directory is locked while training (``latent_mi.outputs.dir_lock``): a second
    trainer on it stops with a LockError naming the first one's PID. ``runtime``: how this
    process runs it (loader workers), not part of the run's identity.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out {run_dir} is a file, not a run directory: choose another --out")
    if int(cfg["train"]["epochs"]) < 1:
        raise ValueError(
            f"train.epochs={cfg['train']['epochs']}: a run trains at least 1 epoch "
            "(epoch 0 is the untrained network)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    runtime = runtime or Runtime()
    # never more threads than usable cores; the leased cores exactly when given (26.1)
    cap_threads(granted_cores(runtime.cores), exact=runtime.cores is not None)
    if "live" in cfg.get("train", {}):  # how this process runs, not part of the run's identity
        live = bool(cfg["train"]["live"])
        cfg = {**cfg, "train": {k: v for k, v in cfg["train"].items() if k != "live"}}
        runtime = replace(runtime, live=runtime.live or live)
    # started by the workflow: end with it (a kill -9 of Snakemake orphans no trainer), and
    # wait for an orphan of a killed workflow to release the run directory
    watched = parent_watch.exit_with_workflow("trainer")
    with outputs.dir_lock(run_dir, wait=LOCK_WAIT_SECONDS if watched else 0):
        return _run_locked(cfg, run_dir, runtime)


@dataclass
class RunContext:
    """One run being trained: its config, directory and task."""

    cfg: dict
    run_dir: Path
    task: Task
    device: torch.device
    cfg_json: str = field(init=False)

    def __post_init__(self) -> None:
        self.cfg_json = config_json(self.cfg)

    @property
    def store_path(self) -> Path:
        return self.run_dir / C.STORE

    @property
    def ckpt(self) -> Path:
        return self.run_dir / C.CHECKPOINTS

    @property
    def dtype(self) -> str:
        return self.cfg["dump"]["dtype"]


def build_task(cfg: dict, device: torch.device, runtime: Runtime) -> Task:
    """The task ``cfg`` trains (``arch: twelve_bit_mlp``: the 12-bit task, else the CNNs')."""
    if cfg["arch"] == "twelve_bit_mlp":
        from trainer.twelve_bit.task import twelve_bit_task  # its own data, model, schedule

        return twelve_bit_task(cfg, device)
    workers = cfg["train"]["num_workers"] if runtime.workers is None else runtime.workers
    return image_task(cfg, device, workers, granted_cores(runtime.cores))


def _run_locked(cfg: dict, run_dir: Path, runtime: Runtime) -> dict:
    _add_file_log(run_dir / "train.log")
    device = pick_device(cfg["train"]["device"])
    seed_everything(cfg["seed"])
    ctx = RunContext(cfg, run_dir, build_task(cfg, device, runtime), device)
    point = resume.find_resume_point(run_dir, cfg, device, ctx.task.dump_epochs)
    if point is not None and point.epoch == 0 and point.intact == 0:
        point = None  # nothing stored yet: a fresh start recomputes epoch 0 identically
    if point is None:
        run_files.clear_run(run_dir)
    ctx.ckpt.mkdir(exist_ok=True)
    progress = start_fresh(ctx) if point is None else resume_from(ctx, point)
    monitor = None
    if runtime.live:  # the live analyzer beside training
        from trainer.live import LiveMonitor

        monitor = LiveMonitor(run_dir)
    try:
        status, progress, reached = train_and_dump(ctx, progress, monitor)
    except BaseException:
        if monitor is not None:
            monitor.close(finished=False)
        raise
    return finish_run(ctx, status, progress, reached, monitor)


def checkpoint_state(ctx: RunContext, epoch: int, progress: dict) -> dict:
    """The checkpoint of ``epoch``: everything a resume needs, and what the readers need."""
    task = ctx.task
    return {
        "epoch": epoch,
        "model": task.model.state_dict(),
        "optimizer": task.optimizer.state_dict(),
        "scheduler": task.scheduler.state_dict() if task.scheduler is not None else None,
        "rng": _rng_state(task),
        "scaler": task.scaler.state_dict() if task.scaler is not None else None,
        "progress": progress,
        "config": ctx.cfg_json,
        "sites": [s.describe() for s in task.sites],
        "classes": task.classes,
    }


def start_fresh(ctx: RunContext) -> dict:
    """Measure the untrained network, create the store with it as epoch 0, save init.pt
    (also best.pt and last.pt) and progress.json; returns the progress record."""
    task, dcfg = ctx.task, ctx.cfg["dump"]
    t0 = time.perf_counter()
    ev = task.measure(0, True)
    metrics = {
        "val_loss": ev.loss,
        "val_acc": ev.acc,
        "lr": ctx.cfg["train"]["lr"],
        "epoch_seconds": time.perf_counter() - t0,
    }
    store.create_store(
        ctx.store_path,
        activation=ev.activation,
        metrics=metrics,
        labels=ev.labels,
        input_summary=ev.summary,
        input_features=task.input_features,
        sites=[s.describe() for s in task.sites],
        attrs=store.run_attrs(ctx.cfg, ctx.cfg_json, task.classes, EPOCH_0, **task.attrs),
        dtype=ctx.dtype,
        unit_chunk=dcfg["unit_chunk"],
        clevel=dcfg["clevel"],
    )
    progress = {
        "config": ctx.cfg_json,
        "last_metrics": metrics,
        "epochs_complete": 1,
        "best_epoch": 0,
        "best_val_acc": ev.acc,
        "epochs_since_best": 0,
    }
    state = checkpoint_state(ctx, 0, progress)
    for name in (C.INIT_CKPT, C.BEST_CKPT, C.LAST_CKPT):
        atomic_torch_save(state, ctx.ckpt / name)
    atomic_write_json(ctx.run_dir / C.PROGRESS, progress)
    log.info("epoch 0 (initialization) val_acc %.4f val_loss %.4f", ev.acc, ev.loss)
    return progress


def resume_from(ctx: RunContext, point: resume.ResumePoint) -> dict:
    """Load the checkpoint of ``point``, make the store hold exactly its dumps (re-dumping
    the checkpointed one if its data did not land), repair best.pt / last.pt / progress.json;
    returns the progress record."""
    task, state = ctx.task, point.state
    task.model.load_state_dict(state["model"])
    task.optimizer.load_state_dict(state["optimizer"])
    if task.scheduler is not None:
        task.scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"], task)
    if task.scaler is not None and state.get("scaler"):
        task.scaler.load_state_dict(state["scaler"])
    progress = state["progress"]
    last = progress["epochs_complete"] - 1  # the checkpointed dump's index in the store
    epoch = task.dump_epochs[last]
    store.reopen_store(ctx.store_path)
    if point.intact <= last:
        # the checkpointed dump's data did not land (killed while the background writer
        # stored it) or is damaged: redo it
        store.truncate_epochs(ctx.store_path, last)
        act = task.measure(epoch, False).activation
        _set_rng_state(state["rng"], task)  # the dump must leave the run's RNG as checkpointed
        store.append_epoch(ctx.store_path, epoch, act, progress["last_metrics"], ctx.dtype)
    store.truncate_epochs(ctx.store_path, last + 1)
    rewrite_best = lambda: atomic_torch_save(state, ctx.ckpt / C.BEST_CKPT)  # noqa: E731
    resume.check_best(ctx.ckpt, state, ctx.device, rewrite_best)
    if point.path.name != C.LAST_CKPT:  # last.pt was damaged or stale: the newest good state
        atomic_torch_save(state, ctx.ckpt / C.LAST_CKPT)
    atomic_write_json(ctx.run_dir / C.PROGRESS, progress)  # a kill may have left it stale
    run_files.remove_stale_temps(ctx.run_dir)
    log.info("resuming %s after epoch %d", ctx.run_dir, epoch)
    return progress


def record_dump(ctx: RunContext, epoch: int, progress: dict, metrics: dict) -> dict:
    """After the dump of ``epoch``: the new progress record, saved with the checkpoints
    (best.pt when the epoch improves on the best, per :func:`latent_mi.contract.improves`)."""
    improved = C.improves(metrics["val_acc"], progress["best_val_acc"])
    progress = {
        **progress,
        "last_metrics": metrics,
        "epochs_complete": progress["epochs_complete"] + 1,
        "epochs_since_best": 0 if improved else progress["epochs_since_best"] + 1,
    }
    if improved:
        progress.update(best_epoch=epoch, best_val_acc=metrics["val_acc"])
    state = checkpoint_state(ctx, epoch, progress)
    if ctx.cfg["dump"]["checkpoint_every_epoch"]:
        atomic_torch_save(state, ctx.ckpt / f"epoch-{epoch:03d}.pt")
    # last.pt before best.pt: a kill between the two leaves a last.pt whose best epoch is
    # itself (resume rewrites best.pt from it); the other order left a best.pt ahead of
    # every checkpoint, and the old best epoch's weights nowhere
    atomic_torch_save(state, ctx.ckpt / C.LAST_CKPT)
    if improved:
        atomic_torch_save(state, ctx.ckpt / C.BEST_CKPT)
    atomic_write_json(ctx.run_dir / C.PROGRESS, progress)
    return progress


def stops_early(task: Task, progress: dict) -> bool:
    """Whether the run has gone ``early_stop_patience`` dumps without improvement."""
    patience = task.early_stop_patience
    if patience is None or progress["epochs_since_best"] < patience:
        return False
    log.info("early stopping: %d epochs without improvement", progress["epochs_since_best"])
    return True


def train_and_dump(ctx: RunContext, progress: dict, monitor=None) -> tuple[str, dict, int]:
    """Train from the epoch after the last dump to ``train.epochs``, dumping each epoch of the
    task's schedule; returns (status ``complete`` or ``diverged``, progress, last epoch run).

    The store append of a dump runs in a background thread while training goes on (at most
    one in flight); a checkpoint may thus be saved before its data lands: resume redoes that
    dump. The thread is shut down however the loop ends. ``monitor``: a
    :class:`trainer.live.LiveMonitor` checked every epoch, or None.
    """
    task, tcfg = ctx.task, ctx.cfg["train"]
    schedule, dumped = task.dump_epochs, set(task.dump_epochs)
    start = schedule[progress["epochs_complete"] - 1] + 1
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
    pending, status, epoch = None, "complete", start - 1
    try:
        t0, since = None, start - 1  # when the epochs since the last dump began; that dump
        for epoch in range(start, tcfg["epochs"] + 1):
            if monitor is not None:
                monitor.check()
            if stops_early(task, progress):
                break
            t0 = time.perf_counter() if t0 is None else t0
            lr = task.optimizer.param_groups[0]["lr"]
            try:
                stats = task.train_epoch(epoch)
            except DivergedError:
                status = "diverged"
                log.error(
                    "training diverged at epoch %d (non-finite loss); store keeps epochs 0-%d",
                    epoch,
                    schedule[progress["epochs_complete"] - 1],
                )
                break
            if epoch not in dumped:
                continue
            ev = task.measure(epoch, False)
            if task.scheduler is not None:
                task.scheduler.step(ev.acc)
            metrics = {
                "train_loss": stats.loss,
                "train_acc": stats.acc,
                "train_hsic": stats.hsic,
                "val_loss": ev.loss,
                "val_acc": ev.acc,
                "lr": lr,
                "epoch_seconds": (time.perf_counter() - t0) / (epoch - since),
            }
            t0, since = None, epoch
            if pending is not None:
                pending.result()  # at most one dump in flight
            args = (ctx.store_path, epoch, ev.activation, metrics, ctx.dtype)
            pending = writer.submit(store.append_epoch, *args)
            progress = record_dump(ctx, epoch, progress, metrics)
            _log_dump(epoch, metrics)
        if pending is not None:
            pending.result()
    finally:
        writer.shutdown(wait=True)  # an append in flight lands (or fails) before anything else
    return status, progress, epoch


def _log_dump(epoch: int, metrics: dict) -> None:
    log.info(
        "epoch %d train_loss %.4f train_acc %.4f val_loss %.4f val_acc %.4f lr %.3g %.1fs",
        epoch,
        metrics["train_loss"],
        metrics["train_acc"],
        metrics["val_loss"],
        metrics["val_acc"],
        metrics["lr"],
        metrics["epoch_seconds"],
    )


def finish_run(ctx: RunContext, status: str, progress: dict, reached: int, monitor=None) -> dict:
    """Finalize the store, let the live monitor finish, write done.json (the workflow's
    target); a diverged run then raises DivergedError. Returns the done manifest."""
    n = progress["epochs_complete"]
    store.truncate_epochs(ctx.store_path, n)
    store.finalize_store(ctx.store_path, status, n)
    if monitor is not None:
        monitor.close()
    done = {
        "status": status,
        "epochs": n,
        "best_epoch": progress["best_epoch"],
        "best_val_acc": progress["best_val_acc"],
        "store": C.STORE,
    }
    atomic_write_json(ctx.run_dir / C.DONE, done)
    if status == "diverged":
        raise DivergedError(f"run {ctx.run_dir} diverged at epoch {reached} (non-finite loss)")
    return done


def _add_file_log(path: Path) -> None:
    path = path.resolve()
    for h in log.handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path:
            return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
