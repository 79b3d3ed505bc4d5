"""What a run trains: a :class:`Task` (data, model, optimizer, one training epoch, the
measurement that feeds the dump, the dump schedule), and the image task of the CNN runs.

The loop of :mod:`trainer.train` is the same for every task; a task says how to train one
epoch and how to measure the network. The image task (every arch but ``twelve_bit_mlp``)
trains through the seeded DataLoaders of :mod:`trainer.loaders`, steps a ReduceLROnPlateau
scheduler on the validation accuracy, stops early, and is dumped every epoch. The 12-bit
task is :func:`trainer.twelve_bit.task.twelve_bit_task`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from trainer.data import INPUT_FEATURES
from trainer.datasets import load_dataset
from trainer.epoch import Evaluation, TrainStats, evaluate, train_one_epoch
from trainer.loaders import make_loaders, resolve_workers, usable_cores
from trainer.precision import resolve_precision
from trainer.sites import Site, find_sites
from trainer.zoo import model_from_config

log = logging.getLogger("trainer")

EPOCH_0 = "network at initialization, before any update"  # the store's epoch_0 attr


@dataclass
class Task:
    """A run's network and data, and how the loop trains and measures it."""

    model: torch.nn.Module
    sites: list[Site]  # measurement sites in depth order
    optimizer: torch.optim.Optimizer
    classes: list[str]
    dump_epochs: list[int]  # epochs dumped to the store, ascending: 0 first, the last epoch last
    train_epoch: Callable[[int], TrainStats]  # trains epoch e; raises DivergedError
    measure: Callable[[int, bool], Evaluation]  # (epoch, with input summary) -> Evaluation
    input_features: list[str]  # names of the input summary's columns
    attrs: dict = field(default_factory=dict)  # task-specific store attrs
    scheduler: object | None = None  # stepped with val_acc after each dump; None: constant lr
    scaler: object | None = None  # AMP grad scaler (checkpointed), or None
    early_stop_patience: int | None = None  # dumps without improvement; None: never stops
    generators: dict[str, torch.Generator] = field(default_factory=dict)  # checkpointed RNGs


def dump_schedule(epochs: int, mode: str, count: int) -> list[int]:
    """The dumped epochs: every epoch 0..epochs (``all``), or 0 plus ~``count`` log-spaced
    epochs up to ``epochs`` (``log``; every epoch when ``epochs <= count``)."""
    if mode == "all" or epochs <= count:
        return list(range(epochs + 1))
    grid: np.ndarray = np.array([0])
    k = count
    while len(grid) < count + 1 and k < 100 * count:
        grid = np.unique(np.concatenate([[0], np.round(np.geomspace(1, epochs, k)).astype(int)]))
        k += 1
    return [int(e) for e in grid]


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


def image_task(cfg: dict, device: torch.device, workers_setting, cores: int) -> Task:
    """The CNN task: ``cfg``'s dataset through seeded loaders, SGD with ReduceLROnPlateau,
    early stopping, every epoch dumped. ``workers_setting``: DataLoader workers (int or
    ``auto``); ``cores``: the cores granted to this process."""
    tcfg = cfg["train"]
    prec = resolve_precision(tcfg, device)
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
    workers = resolve_workers(workers_setting, data.train, device, cores)
    loaders = make_loaders(data, tcfg["batch_size"], cfg["seed"], workers, device)
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

    def train_epoch(epoch: int) -> TrainStats:
        loaders.sampler.set_epoch(epoch)
        desc = f"epoch {epoch}/{tcfg['epochs']}"
        return train_one_epoch(
            model,
            loaders.train,
            optimizer,
            prec,
            sites,
            cfg["hsic"],
            weights,
            tcfg["progress"],
            desc,
        )

    def measure(epoch: int, with_summary: bool) -> Evaluation:
        return evaluate(model, loaders.val, prec, sites, with_summary=with_summary)

    return Task(
        model=model,
        sites=sites,
        optimizer=optimizer,
        classes=data.classes,
        dump_epochs=list(range(tcfg["epochs"] + 1)),
        train_epoch=train_epoch,
        measure=measure,
        input_features=list(INPUT_FEATURES),
        attrs={"precision": json.dumps(prec.describe())},
        scheduler=scheduler,
        scaler=prec.scaler,
        early_stop_patience=tcfg["early_stop_patience"],
    )
