"""The training loop: train, evaluate, dump GAP activations every epoch, resume after a kill.

Flat on purpose (after torchvision's references/classification): ``train_one_epoch``,
``evaluate`` and ``run`` read top to bottom. Run directory layout::

    <run_dir>/activations.zarr      the activation store (trainer.store)
    <run_dir>/checkpoints/          init.pt, best.pt, last.pt (+ epoch-NNN.pt if configured)
    <run_dir>/progress.json         epochs complete, best epoch (atomic; resume reads it)
    <run_dir>/done.json             written last: the run finished (workflow target)
    <run_dir>/train.log             one line per epoch
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from latent_mi import contract as C
from latent_mi import outputs, parent_watch
from trainer import resume, run_files, store
from trainer.config import config_json
from trainer.data import INPUT_FEATURES, load_dataset
from trainer.epoch import DivergedError, evaluate, train_one_epoch
from trainer.loaders import cap_threads, granted_cores, make_loaders, resolve_workers, usable_cores
from trainer.precision import resolve_precision
from trainer.sites import Site, find_sites
from trainer.zoo import model_from_config

log = logging.getLogger("trainer")


LOCK_WAIT_SECONDS = 30  # how long a workflow-started trainer waits for the run's lock

__all__ = ["DivergedError", "Runtime", "evaluate", "run", "train_one_epoch"]


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` via a temp sibling and rename; a failed write is one OutputError line
    (e.g. ``no space left on DEVICE writing PATH``) and leaves the old file in place."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise outputs.OutputError(outputs.write_error(e, path)) from None


def atomic_write_json(path: Path, obj: dict) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def atomic_torch_save(obj, path: Path) -> None:
    # serialized in memory first: torch's own file writer reports a full disk as
    # "unexpected pos" instead of the OSError
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def hsic_weights(cfg: dict, sites: list[Site]) -> dict[str, float]:
    """Per-site HSIC weight w_l: a scalar for every site of the configured kinds, or a map."""
    weights = cfg["hsic"]["weights"]
    chosen = [s.name for s in sites if s.kind in cfg["hsic"]["site_kinds"]]
    if isinstance(weights, dict):
        unknown = sorted(set(weights) - {s.name for s in sites})
        if unknown:
            raise ValueError(f"hsic.weights names unknown sites: {', '.join(unknown)}")
        return {name: float(w) for name, w in weights.items() if w}
    if not chosen:  # e.g. torchvision:<name> sites are of kind block / act
        kinds = sorted({s.kind for s in sites})
        raise ValueError(
            f"hsic.site_kinds selects no site of this model (its kinds: {', '.join(kinds)})"
        )
    return {name: float(weights) for name in chosen}


def _rng_state() -> dict:
    """Global RNG states (dropout); data order and augmentation are seeded per epoch."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


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
    cap_threads(granted_cores(runtime.cores))  # never more threads than usable cores (26.1)
    if "live" in cfg.get("train", {}):  # how this process runs, not part of the run's identity
        live = bool(cfg["train"]["live"])
        cfg = {**cfg, "train": {k: v for k, v in cfg["train"].items() if k != "live"}}
        runtime = replace(runtime, live=runtime.live or live)
    # started by the workflow: end with it (a kill -9 of Snakemake orphans no trainer), and
    # wait for an orphan of a killed workflow to release the run directory
    watched = parent_watch.exit_with_workflow("trainer")
    with outputs.dir_lock(run_dir, wait=LOCK_WAIT_SECONDS if watched else 0):
        if (
            cfg["arch"] == "twelve_bit_mlp"
        ):  # many cheap epochs, dumps on an epoch grid: its own loop
            from trainer.twelve_bit.train import run as run_twelve_bit

            return run_twelve_bit(cfg, run_dir)
        return _run_locked(cfg, run_dir, runtime)


def _run_locked(cfg: dict, run_dir: Path, runtime: Runtime) -> dict:
    _add_file_log(run_dir / "train.log")
    cfg_json = config_json(cfg)
    tcfg, dcfg = cfg["train"], cfg["dump"]
    device = pick_device(tcfg["device"])
    prec = resolve_precision(tcfg, device)

    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    random.seed(cfg["seed"])
    data = load_dataset(cfg["dataset"])
    if data.n_classes < 2:
        raise ValueError(
            f"dataset {cfg['dataset'].get('root') or cfg['dataset']['name']} has "
            f"{data.n_classes} class ({', '.join(data.classes)}): a classifier needs at least 2"
        )
    model = prec.model(model_from_config(cfg, data.n_classes))
    sites = find_sites(model)
    weights = hsic_weights(cfg, sites) if cfg["regularizer"] == "hsic" else {}
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=tcfg["lr"],
        momentum=tcfg["momentum"],
        weight_decay=tcfg["weight_decay"],
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=tcfg["lr_factor"], patience=tcfg["lr_patience"]
    )
    setting = tcfg["num_workers"] if runtime.workers is None else runtime.workers
    cores = granted_cores(runtime.cores)
    workers = resolve_workers(setting, data.train, device, cores)
    loaders = make_loaders(data, tcfg["batch_size"], cfg["seed"], workers, device)
    train_loader, val_loader = loaders.train, loaders.val
    log.info(
        "device %s, %d loader workers, amp %s, channels_last %s, torch threads %d (%d cores "
        "granted, %d usable)",
        device,
        workers,
        prec.amp,
        prec.channels_last,
        torch.get_num_threads(),
        cores,
        usable_cores(),
    )
    store_path = run_dir / C.STORE
    ckpt = run_dir / C.CHECKPOINTS
    dtype = dcfg["dtype"]

    def checkpoint(epoch: int, progress: dict) -> dict:
        return {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(),
            "scaler": prec.scaler.state_dict() if prec.scaler is not None else None,
            "progress": progress,
            "config": cfg_json,
            "sites": [s.describe() for s in sites],
            "classes": data.classes,
        }

    point = resume.find_resume_point(run_dir, cfg, device)
    if point is not None and point.epoch == 0 and point.intact == 0:
        point = None  # nothing stored yet: a fresh start recomputes epoch 0 identically
    if point is None:
        run_files.clear_run(run_dir)
    ckpt.mkdir(exist_ok=True)
    if point is None:
        t0 = time.perf_counter()
        ev = evaluate(model, val_loader, prec, sites, with_summary=True)
        val_loss, val_acc = ev.loss, ev.acc
        metrics = {
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": tcfg["lr"],
            "epoch_seconds": time.perf_counter() - t0,
        }
        store.create_store(
            store_path,
            activation=ev.activation,
            metrics=metrics,
            labels=ev.labels,
            input_summary=ev.summary,
            input_features=INPUT_FEATURES,
            sites=[s.describe() for s in sites],
            attrs={
                "dataset": cfg["dataset"]["name"],
                "arch": cfg["arch"],
                "activation": cfg["activation"],
                "regularizer": cfg["regularizer"],
                "seed": cfg["seed"],
                "width": cfg["width"],
                "config": cfg_json,
                "classes": json.dumps(data.classes),
                "epoch_0": "network at initialization, before any update",
                "precision": json.dumps(prec.describe()),
            },
            dtype=dtype,
            unit_chunk=dcfg["unit_chunk"],
            clevel=dcfg["clevel"],
        )
        progress = {
            "config": cfg_json,
            "last_metrics": metrics,
            "epochs_complete": 1,
            "best_epoch": 0,
            "best_val_acc": val_acc,
            "epochs_since_best": 0,
        }
        state = checkpoint(0, progress)
        atomic_torch_save(state, ckpt / C.INIT_CKPT)
        atomic_torch_save(state, ckpt / C.BEST_CKPT)
        atomic_torch_save(state, ckpt / C.LAST_CKPT)
        atomic_write_json(run_dir / C.PROGRESS, progress)
        log.info("epoch 0 (initialization) val_acc %.4f val_loss %.4f", val_acc, val_loss)
    else:
        state = point.state
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        if prec.scaler is not None and state.get("scaler"):
            prec.scaler.load_state_dict(state["scaler"])
        progress = state["progress"]
        last = progress["epochs_complete"] - 1
        store.reopen_store(store_path)
        if point.intact <= last:
            # the checkpointed epoch's data did not land (killed while the background writer
            # stored it) or is damaged: redo its dump
            store.truncate_epochs(store_path, last)
            act = evaluate(model, val_loader, prec, sites).activation
            _set_rng_state(state["rng"])  # the dump must leave the run's RNG as checkpointed
            store.append_epoch(store_path, last, act, progress["last_metrics"], dtype)
        store.truncate_epochs(store_path, last + 1)
        resume.check_best(ckpt, state, device, lambda: atomic_torch_save(state, ckpt / C.BEST_CKPT))
        if point.path.name != C.LAST_CKPT:  # last.pt was damaged or stale: the newest good state
            atomic_torch_save(state, ckpt / C.LAST_CKPT)
        atomic_write_json(run_dir / C.PROGRESS, progress)  # a kill may have left it stale
        run_files.remove_stale_temps(run_dir)
        log.info("resuming %s after epoch %d", run_dir, last)

    status = "complete"
    start = progress["epochs_complete"]
    # The store append of epoch e runs in the background while epoch e + 1 trains. A
    # checkpoint may thus be saved before its epoch's data lands; resume redoes that dump.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
    pending = None
    live = None
    if runtime.live:
        from trainer.live import LiveMonitor

        live = LiveMonitor(run_dir)
    for epoch in range(start, tcfg["epochs"] + 1):
        if live is not None:
            live.check()
        if progress["epochs_since_best"] >= tcfg["early_stop_patience"]:
            log.info("early stopping: %d epochs without improvement", progress["epochs_since_best"])
            break
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        loaders.sampler.set_epoch(epoch)
        try:
            stats = train_one_epoch(
                model,
                train_loader,
                optimizer,
                prec,
                sites,
                cfg["hsic"],
                weights,
                tcfg["progress"],
                f"epoch {epoch}/{tcfg['epochs']}",
            )
        except DivergedError:
            status = "diverged"
            log.error(
                "training diverged at epoch %d (non-finite loss); store keeps epochs 0-%d",
                epoch,
                epoch - 1,
            )
            break
        ev = evaluate(model, val_loader, prec, sites)
        val_loss, val_acc, act = ev.loss, ev.acc, ev.activation
        scheduler.step(val_acc)
        metrics = {
            "train_loss": stats.loss,
            "train_acc": stats.acc,
            "train_hsic": stats.hsic,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": lr,
            "epoch_seconds": time.perf_counter() - t0,
        }
        if pending is not None:
            pending.result()  # at most one epoch in flight
        pending = writer.submit(store.append_epoch, store_path, epoch, act, metrics, dtype)
        improved = C.improves(val_acc, progress["best_val_acc"])
        progress = {
            **progress,
            "last_metrics": metrics,
            "epochs_complete": epoch + 1,
            "epochs_since_best": 0 if improved else progress["epochs_since_best"] + 1,
        }
        if improved:
            progress.update(best_epoch=epoch, best_val_acc=val_acc)
        state = checkpoint(epoch, progress)
        if improved:
            atomic_torch_save(state, ckpt / C.BEST_CKPT)
        if dcfg["checkpoint_every_epoch"]:
            atomic_torch_save(state, ckpt / f"epoch-{epoch:03d}.pt")
        atomic_torch_save(state, ckpt / C.LAST_CKPT)
        atomic_write_json(run_dir / C.PROGRESS, progress)
        log.info(
            "epoch %d train_loss %.4f train_acc %.4f val_loss %.4f val_acc %.4f lr %.3g %.1fs",
            epoch,
            stats.loss,
            stats.acc,
            val_loss,
            val_acc,
            lr,
            metrics["epoch_seconds"],
        )

    if pending is not None:
        pending.result()
    writer.shutdown()
    store.truncate_epochs(store_path, progress["epochs_complete"])
    store.finalize_store(store_path, status, progress["epochs_complete"])
    if live is not None:
        live.close()
    done = {
        "status": status,
        "epochs": progress["epochs_complete"],
        "best_epoch": progress["best_epoch"],
        "best_val_acc": progress["best_val_acc"],
        "store": C.STORE,
    }
    atomic_write_json(run_dir / C.DONE, done)
    if status == "diverged":
        raise DivergedError(
            f"run {run_dir} diverged at epoch {progress['epochs_complete']} (non-finite loss)"
        )
    return done


def _add_file_log(path: Path) -> None:
    path = path.resolve()
    for h in log.handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path:
            return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
