"""Edits of a site's output, applied one batch at a time.

Every edit maps a batch of site outputs ``h`` (B, C, H, W) to a new tensor of the same
shape, given a :class:`BatchContext` with what an edit needs beyond the batch itself:

* ``Zero``: the channels set to 0; ``energy=True`` rescales the rest so that each sample's
  norm at the site (over channels and positions) equals the unedited one;
* ``Shuffle``: the channels' maps replaced by those of another sample, sample i taking
  sample ``perm[i]``'s, with one permutation of the whole validation set per (layer, draw)
  (the batch's permuted partner rows come in the context);
* ``Noise``: Gaussian noise of ``level`` x the channel's standard deviation over all
  validation samples and positions (from a first pass), drawn from a numpy generator
  consumed in sample order, so the result does not depend on the batch size or device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class BatchContext:
    """Per-batch inputs of edits: permuted partner outputs per shuffle draw, channel sd (C,)."""

    permuted: dict[int, torch.Tensor] = field(default_factory=dict)
    channel_sd: torch.Tensor | None = None

    def rows(self, index: torch.Tensor) -> BatchContext:
        return BatchContext({d: p[index] for d, p in self.permuted.items()}, self.channel_sd)


def _index(channels, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(channels), dtype=torch.long, device=device)


@dataclass
class Zero:
    channels: np.ndarray
    energy: bool = False

    def __call__(self, h: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        out = h.clone()
        out[:, _index(self.channels, h.device)] = 0
        if self.energy:
            before = h.flatten(1).norm(dim=1)
            after = out.flatten(1).norm(dim=1)
            scale = torch.where(after > 0, before / after.clamp_min(1e-12), torch.ones_like(after))
            out = out * scale.view(-1, *([1] * (h.dim() - 1)))
        return out


@dataclass
class Shuffle:
    channels: np.ndarray
    draw: int  # which permutation (the context holds its partner rows)

    def __call__(self, h: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        idx = _index(self.channels, h.device)
        out = h.clone()
        out[:, idx] = ctx.permuted[self.draw][:, idx]
        return out


@dataclass
class Noise:
    channels: np.ndarray
    level: float  # noise sd in units of the channel's sd
    rng: np.random.Generator  # consumed batch after batch, in sample order

    def __call__(self, h: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        idx = _index(self.channels, h.device)
        shape = (h.shape[0], len(idx), *h.shape[2:])
        z = torch.from_numpy(self.rng.standard_normal(shape, dtype=np.float32)).to(h)
        sd = ctx.channel_sd[idx].to(h).view(1, -1, *([1] * (h.dim() - 2)))
        out = h.clone()
        out[:, idx] = h[:, idx] + self.level * sd * z
        return out


def permutation(n: int, rng: np.random.Generator) -> np.ndarray:
    """The shuffle partner of each sample: sample i takes sample ``perm[i]``'s maps."""
    return rng.permutation(n)
