"""The ``arch: twelve_bit_mlp`` task (Shwartz-Ziv & Tishby) for the loop of :mod:`trainer.train`.

~10^4 cheap epochs of a 12-10-7-5-4-3-2 MLP: the data live in two tensors on the device,
batches are index slices of a permutation drawn from the task's own seeded generator
(``order``, checkpointed), and the network is measured, dumped and checkpointed only at the
epochs of the dump schedule (``dump.epochs: all`` or ``log``: ``dump.log_count`` log-spaced
epochs, 0 and the last included; the store's ``epoch`` coordinate holds those epoch
numbers). Adam or SGD at a constant learning rate, no early stopping: seed 003 trains for a
fixed number of epochs.

With ``noise.beta > 0`` the network is noisy in training and in the validation metrics (an
evaluation-noise generator seeded ``seed + epoch``); the dump is the deterministic S of every
hidden layer (noise off) for all 4,096 patterns, and ``noise_beta`` is recorded in the attrs.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch
import torch.nn.functional as F

from trainer.epoch import DivergedError, Evaluation, TrainStats
from trainer.sites import capture_gap
from trainer.task import Task, dump_schedule
from trainer.twelve_bit.data import load_twelve_bit_bundle
from trainer.twelve_bit.model import TwelveBitMLP

SAMPLES_NOTE = "all 4096 patterns of var_u.mat in file order (X uniform)"
ACTIVATION_NOTE = (
    "deterministic S of each hidden layer (noise off), whole layer (no pooling); "
    "noise_beta is the training noise sd"
)


def make_optimizer(tcfg: dict, params) -> torch.optim.Optimizer:
    """``train.optimizer``: adam or sgd (momentum), with ``train.lr`` and weight decay."""
    if tcfg["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])
    return torch.optim.SGD(
        params, lr=tcfg["lr"], momentum=tcfg["momentum"], weight_decay=tcfg["weight_decay"]
    )


@torch.no_grad()
def measure_patterns(model: TwelveBitMLP, x_val, y_val, x_all, sites, noise_seed: int):
    """(val_loss, val_acc, S of every site for all patterns (sample, unit) float32): the
    validation metrics with the training noise (seeded ``noise_seed``), S without it."""
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


def twelve_bit_task(cfg: dict, device: torch.device) -> Task:
    """The 12-bit task of ``cfg`` on ``device`` (the global RNGs seeded by the caller)."""
    tcfg, dcfg, beta = cfg["train"], cfg["dump"], float(cfg["noise"]["beta"])
    if cfg["dataset"]["name"] != "twelve_bit":
        raise ValueError(
            f"arch twelve_bit_mlp needs dataset.name: twelve_bit, got {cfg['dataset']['name']!r}"
        )
    if (
        device.type == "cpu"
    ):  # ~1 ms ops: extra threads only add synchronization (30x on a busy box)
        torch.set_num_threads(1)
    dataset = cfg["dataset"]
    data = load_twelve_bit_bundle(dataset["train_fraction"], dataset["split_seed"])
    model = TwelveBitMLP(cfg["activation"], beta).to(device)
    sites = model.measurement_sites()
    optimizer = make_optimizer(tcfg, model.parameters())
    x_tr, y_tr = data.train.images.to(device), data.train.labels.to(device)
    x_val, y_val = data.val.images.to(device), data.val.labels.to(device)
    x_all = data.analysis.images.to(device)
    labels_all = data.analysis.labels.numpy()
    grid = dump_schedule(tcfg["epochs"], dcfg["epochs"], dcfg["log_count"])
    order = torch.Generator().manual_seed(cfg["seed"])
    n, batch = len(y_tr), tcfg["batch_size"]

    def train_epoch(epoch: int) -> TrainStats:
        model.train()
        perm = torch.randperm(n, generator=order).to(device)
        loss_sum = correct = 0.0
        for b in range(0, n, batch):
            idx = perm[b : b + batch]
            logits = model(x_tr[idx])
            loss = F.cross_entropy(logits, y_tr[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == y_tr[idx]).sum()
        train_loss = float(loss_sum) / n
        if not np.isfinite(train_loss):
            raise DivergedError("non-finite training loss (cross-entropy)")
        return TrainStats(train_loss, float(correct) / n, math.nan)

    def measure(epoch: int, with_summary: bool) -> Evaluation:
        loss, acc, act = measure_patterns(model, x_val, y_val, x_all, sites, cfg["seed"] + epoch)
        summary = data.analysis.images.numpy() if with_summary else None
        return Evaluation(loss, acc, act, labels_all, summary)

    return Task(
        model=model,
        sites=sites,
        optimizer=optimizer,
        classes=data.classes,
        dump_epochs=grid,
        train_epoch=train_epoch,
        measure=measure,
        input_features=[f"bit{i}" for i in range(x_all.shape[1])],
        attrs={
            "noise_beta": beta,
            "dump_epochs": json.dumps(grid),
            "samples": SAMPLES_NOTE,
            "activation_note": ACTIVATION_NOTE,
        },
        generators={"order": order},
    )
