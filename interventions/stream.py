"""Streaming evaluation: validation samples in batches, one site at a time, counts accumulated.

Memory is bounded by one batch at one site (times the edits that share a suffix forward,
capped by ``edit_bytes``), never by the validation-set size or the number of sites.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from interventions.edits import BatchContext
from interventions.surgery import SiteOutput, Surgery
from trainer.sites import Site


@dataclass(frozen=True)
class Job:
    """One edit scored on the whole batch, or only on the samples of class ``label``."""

    edit: Callable[[torch.Tensor, BatchContext], torch.Tensor]
    label: int | None = None


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu`` or ``cuda[:i]``; one line if CUDA is missing."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r}: use auto, cpu or cuda[:i]") from None


@dataclass
class Streamer:
    """A model, its surgery and the validation set, evaluated batch by batch on ``device``."""

    surgery: Surgery
    dataset: Dataset  # yields (image (3, H, W), label)
    n_classes: int
    device: torch.device
    batch_size: int = 100
    workers: int = 0
    edit_bytes: int = 256 * 2**20  # cap on the site outputs of the edits sharing one forward

    @property
    def model(self):
        return self.surgery.model

    @property
    def n(self) -> int:
        return len(self.dataset)

    def loader(self, order: np.ndarray | None = None) -> DataLoader:
        data = self.dataset if order is None else Subset(self.dataset, order.tolist())
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
        )

    def _to(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device, non_blocking=True)

    @torch.no_grad()
    def class_counts(self, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """(correct, count) per class of the unedited model, each (n_classes,) int64."""
        correct = torch.zeros(n_classes, dtype=torch.long, device=self.device)
        count = torch.zeros(n_classes, dtype=torch.long, device=self.device)
        for x, y in self.loader():
            x, y = self._to(x), self._to(y)
            hit = (self.model(x).argmax(1) == y).long()
            correct.index_add_(0, y, hit)
            count.index_add_(0, y, torch.ones_like(y))
        return correct.cpu().numpy(), count.cpu().numpy()

    def accuracy(self) -> float:
        """Accuracy of the model as it is now (edited weights, hooks, ...)."""
        correct, count = self.class_counts(self.n_classes)
        return float(correct.sum() / max(count.sum(), 1))

    @torch.no_grad()
    def channel_sd(self, site: Site) -> torch.Tensor:
        """(C,) sd of each channel over all samples and positions (unbiased; batches merged
        with Chan's parallel update, float64)."""
        n, mean, m2 = 0, None, None
        for x, _ in self.loader():
            h = self.surgery.site_output(site, self._to(x)).h.double().transpose(0, 1).flatten(1)
            nb, mb = h.shape[1], h.mean(1)
            m2b = ((h - mb[:, None]) ** 2).sum(1)
            if mean is None:
                n, mean, m2 = nb, mb, m2b
            else:
                delta = mb - mean
                tot = n + nb
                mean = mean + delta * nb / tot
                m2 = m2 + m2b + delta**2 * n * nb / tot
                n = tot
        return (m2 / max(n - 1, 1)).sqrt().float()

    @torch.no_grad()
    def run_site(
        self,
        site: Site,
        jobs: Sequence[Job],
        perms: dict[int, np.ndarray] | None = None,
        channel_sd: torch.Tensor | None = None,
    ) -> np.ndarray:
        """Accuracy after each job at ``site``: one pass over the data, (len(jobs),) float64.

        ``perms``: shuffle draw -> permutation of the samples (partner rows streamed beside
        the batch); ``channel_sd``: what noise edits scale by.
        """
        perms = perms or {}
        correct = torch.zeros(len(jobs), dtype=torch.long, device=self.device)
        count = torch.zeros(len(jobs), dtype=torch.long, device=self.device)
        draws = list(perms)
        loaders = [self.loader(), *(self.loader(perms[d]) for d in draws)]
        for batches in zip(*loaders, strict=True):
            x, y = self._to(batches[0][0]), self._to(batches[0][1])
            out = self.surgery.site_output(site, x)
            partners = {
                d: self.surgery.site_output(site, self._to(b[0])).h
                for d, b in zip(draws, batches[1:], strict=True)
            }
            ctx = BatchContext(partners, channel_sd)
            self._score_batch(site, jobs, out, ctx, y, correct, count)
            del out, partners, ctx
        return (correct.cpu().numpy() / np.maximum(count.cpu().numpy(), 1)).astype(np.float64)

    def _score_batch(self, site, jobs, out: SiteOutput, ctx, y, correct, count) -> None:
        """Apply every job to the batch, many edits per suffix forward, and add up the hits."""
        rows: dict[int | None, torch.Tensor] = {None: torch.arange(len(y), device=y.device)}
        for label in {j.label for j in jobs if j.label is not None}:
            rows[label] = torch.nonzero(y == label).flatten()
        row_bytes = out.h[0].numel() * out.h.element_size()
        max_rows = max(len(y), self.edit_bytes // max(row_bytes, 1))
        group, n_rows = [], 0
        for j, job in enumerate(jobs):
            k = len(rows[job.label])
            if k == 0:
                continue
            if group and n_rows + k > max_rows:
                self._forward_group(site, jobs, group, rows, out, ctx, y, correct, count)
                group, n_rows = [], 0
            group.append(j)
            n_rows += k
        if group:
            self._forward_group(site, jobs, group, rows, out, ctx, y, correct, count)

    def _forward_group(self, site, jobs, group, rows, out, ctx, y, correct, count) -> None:
        hs, inputs, labels, owners = [], [], [], []
        for j in group:
            idx = rows[jobs[j].label]
            whole = jobs[j].label is None
            sub, sub_ctx = (out, ctx) if whole else (out.rows(idx), ctx.rows(idx))
            hs.append(jobs[j].edit(sub.h, sub_ctx))
            inputs.append(sub.block_input)
            labels.append(y[idx])
            owners.append(torch.full((len(idx),), j, dtype=torch.long, device=y.device))
        block_input = None if inputs[0] is None else torch.cat(inputs)
        logits = self.surgery.suffix(site, SiteOutput(torch.cat(hs), block_input))
        owner = torch.cat(owners)
        correct.index_add_(0, owner, (logits.argmax(1) == torch.cat(labels)).long())
        count.index_add_(0, owner, torch.ones_like(owner))
