"""One pass over the data: a training epoch, and the validation pass that feeds the dump.

Neither syncs the host per batch: loss, accuracy and HSIC sums accumulate on the device
and are read once per epoch; the divergence check reads the accumulated sums every
``CHECK_EVERY`` batches and at the end (a non-finite loss makes its sum non-finite). The
validation pass pools each site's GAP values in float32 on the device and copies them
into one host buffer per batch (pinned, asynchronously, on CUDA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from trainer.data import input_summary
from trainer.hsic import hsic_penalty
from trainer.precision import Precision
from trainer.sites import Site, capture_gap, capture_sums

CHECK_EVERY = 50  # batches between divergence checks (one host sync each)


class DivergedError(RuntimeError):
    """Training produced a non-finite loss."""


@dataclass
class TrainStats:
    loss: float  # mean cross-entropy, nats
    acc: float  # fraction of training samples classified correctly
    hsic: float  # mean sum_l w_l HSIC_l per sample; NaN without the regularizer


@dataclass
class Evaluation:
    loss: float  # mean validation cross-entropy, nats
    acc: float
    activation: np.ndarray  # (sample, unit) float32 GAP values, sites in depth order
    labels: np.ndarray  # (sample,) int64
    summary: np.ndarray | None  # (sample, input_feature) float32, when asked for


def _check_finite(sums: torch.Tensor) -> None:
    finite = torch.isfinite(sums).tolist()
    if not all(finite):
        which = ", ".join(
            n for n, ok in zip(("cross-entropy", "", "HSIC"), finite, strict=True) if not ok
        )
        raise DivergedError(f"non-finite training loss ({which})")


def train_one_epoch(
    model, loader, optimizer, prec: Precision, sites, hsic_cfg, weights, progress=False, desc=""
) -> TrainStats:
    """One pass over the training set (the sampler's epoch must be set by the caller)."""
    model.train()
    use_hsic = bool(weights) and hsic_cfg["lambda"] > 0
    hsic_sites = [s for s in sites if s.name in weights] if use_hsic else []
    sums = torch.zeros(3, dtype=torch.float64, device=prec.device)  # ce, correct, hsic
    zero = torch.zeros((), device=prec.device)
    total = 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress)
    for step, (images, labels) in enumerate(bar, start=1):
        images, labels = prec.inputs(images, labels)
        with prec.autocast(), capture_sums(hsic_sites) as pooled:
            logits = model(images)
        ce = F.cross_entropy(logits.float(), labels)
        dependence = (
            hsic_penalty(pooled, labels, weights, hsic_cfg["bandwidth"]) if use_hsic else zero
        )
        prec.backward_step(ce - hsic_cfg["lambda"] * dependence if use_hsic else ce, optimizer)
        n = len(labels)
        correct = (logits.detach().argmax(1) == labels).sum()
        sums += torch.stack([ce.detach() * n, correct.float(), dependence.detach() * n]).double()
        total += n
        if step % CHECK_EVERY == 0:
            _check_finite(sums)
    _check_finite(sums)
    ce_sum, correct, hsic_sum = sums.tolist()
    return TrainStats(ce_sum / total, correct / total, hsic_sum / total if use_hsic else math.nan)


@torch.no_grad()
def evaluate(
    model, loader, prec: Precision, sites: list[Site], with_summary: bool = False
) -> Evaluation:
    """Validation pass in the loader's fixed sample order, capturing every site's GAP values."""
    model.eval()
    n, units = len(loader.dataset), sum(s.channels for s in sites)
    cuda = prec.device.type == "cuda"
    host = torch.empty((n, units), dtype=torch.float32, pin_memory=cuda)
    sums = torch.zeros(2, dtype=torch.float64, device=prec.device)  # loss, correct
    labels_all, summaries, start = [], [], 0
    with capture_gap(sites) as pooled:
        for images, labels in loader:
            images, labels = prec.inputs(images, labels)
            with prec.autocast():
                logits = model(images).float()
            loss = F.cross_entropy(logits, labels, reduction="sum")
            sums += torch.stack([loss, (logits.argmax(1) == labels).sum().float()]).double()
            stop = start + len(labels)
            host[start:stop].copy_(torch.cat([pooled[s.name] for s in sites], 1), non_blocking=cuda)
            start = stop
            labels_all.append(labels)
            if with_summary:
                summaries.append(input_summary(images.float()))
    if cuda:
        torch.cuda.current_stream(prec.device).synchronize()  # the async copies have landed
    if start != n:
        raise RuntimeError(f"validation loader gave {start} samples, its dataset has {n}")
    loss_sum, correct = sums.tolist()
    summary = torch.cat(summaries).float().cpu().numpy() if with_summary else None
    labels = torch.cat(labels_all).cpu().numpy()
    return Evaluation(loss_sum / n, correct / n, host.numpy(), labels, summary)
