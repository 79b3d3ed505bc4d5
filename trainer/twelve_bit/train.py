"""Training loop of ``arch: twelve_bit_mlp`` (seeds/003): many cheap epochs, dumps on an epoch grid.

The generic loop (:mod:`trainer.train`) evaluates, checkpoints and dumps every epoch, which
would dominate ~10^4 epochs of a 12-10-7-5-4-3-2 MLP. Here the data live in two tensors on
the device, batches are index slices of a seeded permutation, and the work of an evaluation
(validation metrics, the dump of all 4,096 patterns, a checkpoint) is done only at the epochs
of the dump grid (``dump.epochs: all`` or ``log``: ``dump.log_count`` log-spaced epochs, 0 and
the last included). The learning rate is constant (no scheduler, no early stopping: seed 003
trains for a fixed number of epochs). Same run directory and store contract as the CNNs; the
store's ``epoch`` coordinate holds the actual epoch numbers of the grid.

With ``noise.beta > 0`` the network is noisy in training and in the validation metrics; the
dump is the deterministic S (noise off), and ``noise_beta`` is recorded in the store's attrs.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainer import resume, store
from trainer.config import config_json
from trainer.data import load_dataset
from trainer.sites import capture_gap
from trainer.twelve_bit.model import TwelveBitMLP

log = logging.getLogger("trainer")


def dump_epochs(epochs: int, mode: str, count: int) -> list[int]:
    """The dump grid: every epoch 0..epochs, or 0 plus ~``count`` log-spaced epochs up to ``epochs``."""
    if mode == "all" or epochs <= count:
        return list(range(epochs + 1))
    grid: np.ndarray = np.array([0])
    k = count
    while len(grid) < count + 1 and k < 100 * count:
        grid = np.unique(np.concatenate([[0], np.round(np.geomspace(1, epochs, k)).astype(int)]))
        k += 1
    return [int(e) for e in grid]


def make_optimizer(tcfg: dict, params) -> torch.optim.Optimizer:
    if tcfg["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])
    return torch.optim.SGD(
        params, lr=tcfg["lr"], momentum=tcfg["momentum"], weight_decay=tcfg["weight_decay"]
    )


@torch.no_grad()
def evaluate(model: TwelveBitMLP, x_val, y_val, x_all, sites, noise_seed: int):
    """(val_loss, val_acc, S of every site for all patterns (sample, unit) float32)."""
    model.eval()
    model.generator = torch.Generator(device=x_val.device).manual_seed(noise_seed)
    logits = model(x_val)  # noisy when beta > 0, as in training
    model.generator = None
    loss = F.cross_entropy(logits, y_val).item()
    acc = (logits.argmax(1) == y_val).float().mean().item()
    with model.noisy(False), capture_gap(sites) as pooled:
        model(x_all)
    act = torch.cat([pooled[s.name] for s in sites], dim=1).float().cpu().numpy()
    model.train()
    return loss, acc, act


def _save(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def run(cfg: dict, run_dir: str | Path) -> dict:
    """Train one twelve_bit_mlp run; returns the done manifest (as :func:`trainer.train.run`)."""
    from trainer.train import _add_file_log, atomic_write_json, pick_device

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _add_file_log(run_dir / "train.log")
    cfg_json = config_json(cfg)
    tcfg, dcfg, beta = cfg["train"], cfg["dump"], float(cfg["noise"]["beta"])
    if cfg["dataset"]["name"] != "twelve_bit":
        raise ValueError(
            f"arch twelve_bit_mlp needs dataset.name: twelve_bit, got {cfg['dataset']['name']!r}"
        )
    device = pick_device(tcfg["device"])
    if (
        device.type == "cpu"
    ):  # ~1 ms ops: extra threads only add synchronization (30x on a busy box)
        torch.set_num_threads(1)
    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    random.seed(cfg["seed"])
    data = load_dataset(cfg["dataset"])
    model = TwelveBitMLP(cfg["activation"], beta).to(device)
    sites = model.measurement_sites()
    optimizer = make_optimizer(tcfg, model.parameters())
    x_tr, y_tr = data.train.images.to(device), data.train.labels.to(device)
    x_val, y_val = data.val.images.to(device), data.val.labels.to(device)
    x_all = data.analysis.images.to(device)
    grid = dump_epochs(tcfg["epochs"], dcfg["epochs"], dcfg["log_count"])
    order = torch.Generator().manual_seed(cfg["seed"])
    store_path, ckpt = run_dir / "activations.zarr", run_dir / "checkpoints"
    progress_path = run_dir / "progress.json"

    def checkpoint(epoch: int, dumps: int) -> None:
        state = {
            "epoch": epoch,
            "dumps": dumps,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "order": order.get_state()},
            "config": cfg_json,
            "sites": [s.describe() for s in sites],
            "classes": data.classes,
        }
        _save(ckpt / "last.pt", state)
        atomic_write_json(progress_path, {"config": cfg_json, "epoch": epoch, "dumps": dumps})

    def dump(epoch: int, metrics: dict, first: bool) -> None:
        t0 = time.perf_counter()
        val_loss, val_acc, act = evaluate(model, x_val, y_val, x_all, sites, cfg["seed"] + epoch)
        metrics = {**metrics, "val_loss": val_loss, "val_acc": val_acc, "lr": tcfg["lr"]}
        metrics.setdefault("epoch_seconds", time.perf_counter() - t0)
        if first:
            store.create_store(
                store_path,
                activation=act,
                metrics=metrics,
                labels=data.analysis.labels.numpy(),
                input_summary=data.analysis.images.numpy(),
                input_features=[f"bit{i}" for i in range(x_all.shape[1])],
                sites=[s.describe() for s in sites],
                attrs={
                    "dataset": "twelve_bit",
                    "arch": cfg["arch"],
                    "activation": cfg["activation"],
                    "regularizer": cfg["regularizer"],
                    "seed": cfg["seed"],
                    "width": cfg["width"],
                    "noise_beta": beta,
                    "config": cfg_json,
                    "classes": json.dumps(data.classes),
                    "epoch_0": "network at initialization, before any update",
                    "dump_epochs": json.dumps(grid),
                    "samples": "all 4096 patterns of var_u.mat in file order (X uniform)",
                    "activation_note": "deterministic S of each hidden layer (noise off), "
                    "whole layer (no pooling); noise_beta is the training noise sd",
                },
                dtype=dcfg["dtype"],
                unit_chunk=dcfg["unit_chunk"],
                clevel=dcfg["clevel"],
            )
        else:
            store.append_epoch(store_path, epoch, act, metrics, dcfg["dtype"])

    ckpt.mkdir(exist_ok=True)
    progress = json.loads(progress_path.read_text()) if progress_path.is_file() else None
    if progress is not None:  # resume policy of trainer.resume: fixed keys may not change
        resume.check_config(progress["config"], cfg, run_dir)
        if not (ckpt / "last.pt").is_file():
            raise resume.ResumeError(
                f"{run_dir}: {progress_path.name} but no checkpoints/last.pt: cannot resume; "
                "delete the run directory to train it again (nothing was deleted)"
            )
        state = torch.load(ckpt / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        order.set_state(state["rng"]["order"])
        start, dumps = state["epoch"] + 1, state["dumps"]
        store.truncate_epochs(store_path, dumps)
        log.info("resuming %s after epoch %d (%d dumps)", run_dir, start - 1, dumps)
    else:
        dump(0, {}, first=True)
        start, dumps = 1, 1
        _save(ckpt / "init.pt", {"model": model.state_dict(), "config": cfg_json})
        checkpoint(0, dumps)

    grid_set, n, bs = set(grid), len(y_tr), tcfg["batch_size"]
    status, t_interval, last_dump = "complete", time.perf_counter(), start - 1
    loss_sum = correct = 0.0
    model.train()
    for epoch in range(start, tcfg["epochs"] + 1):
        perm = torch.randperm(n, generator=order).to(device)
        loss_sum = correct = 0.0
        for b in range(0, n, bs):
            idx = perm[b : b + bs]
            logits = model(x_tr[idx])
            loss = F.cross_entropy(logits, y_tr[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == y_tr[idx]).sum()
        if epoch not in grid_set:
            continue
        train_loss = float(loss_sum) / n
        if not np.isfinite(train_loss):
            status = "diverged"
            log.error("training diverged by epoch %d (non-finite loss)", epoch)
            break
        seconds = (time.perf_counter() - t_interval) / max(1, epoch - last_dump)
        dump(
            epoch,
            {"train_loss": train_loss, "train_acc": float(correct) / n, "epoch_seconds": seconds},
            first=False,
        )
        dumps += 1
        checkpoint(epoch, dumps)
        log.info("epoch %d train_loss %.4f (%d/%d dumps)", epoch, train_loss, dumps, len(grid))
        t_interval, last_dump = time.perf_counter(), epoch

    store.finalize_store(store_path, status, dumps)
    val_acc = store_val_acc(store_path)
    best = int(np.nanargmax(val_acc)) if np.isfinite(val_acc).any() else 0
    done = {
        "status": status,
        "epochs": dumps,
        "best_epoch": grid[best],
        "best_val_acc": float(val_acc[best]),
        "store": "activations.zarr",
    }
    atomic_write_json(run_dir / "done.json", done)
    if status == "diverged":
        from trainer.train import DivergedError

        raise DivergedError(f"run {run_dir} diverged (non-finite loss)")
    return done


def store_val_acc(path: Path) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_group(path, mode="r")["val_acc"][:])
