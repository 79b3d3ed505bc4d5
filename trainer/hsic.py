"""HSIC dependence regularizer (seeds/001 §3.5).

``HSIC(Z, Y) = tr(K H L H) / (m - 1)^2`` (biased estimator) with K an RBF kernel on the
pooled features Z (m, C), L the delta kernel on labels (``L_ij = 1[y_i = y_j]``) and
``H = I - 11^T / m``. The label kernel is centred once per batch in O(m^2) (row, column and
grand means; no m x m matrix product): ``tr(K H L H) = sum_ij K_ij (HLH)_ij``.
The training loss is ``CE - lambda * sum_l w_l HSIC(GAP(T_l), Y)``.

All layers go through one autograd node (:class:`BatchedHsic`) whose backward is the
analytic gradient: with ``W = K o HLH`` (elementwise) and sigma^2 a constant,
``d sum_ij W_ij / d z_i = -(2 / sigma^2) sum_j W_ij (z_i - z_j)``, i.e.
``-(2 / sigma^2) (diag(W 1) - W) Z``: one batched product instead of the backward of every
distance / kernel operation.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.autograd.function import once_differentiable


@functools.lru_cache(maxsize=8)
def _pair_index(m: int, device: torch.device) -> torch.Tensor:
    """Flat indices of the pairs i < j of an (m, m) matrix (cached per m, device)."""
    return (
        torch.triu(torch.ones(m, m, dtype=torch.bool, device=device), 1).flatten().nonzero()[:, 0]
    )


def median_pair_distance(d2: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Lower median of the pair entries ``pairs`` (flat i < j) of each (m, m) slice of d2.

    Equal to torch's median of all off-diagonal entries (each pair counted twice). On CPU a
    numpy partition (several times faster than torch's median there), else torch's median.
    """
    flat = d2.detach().flatten(1)
    if flat.device.type != "cpu":
        return flat.index_select(1, pairs).median(dim=1).values
    values = np.take(flat.numpy(), pairs.numpy(), axis=1)
    k = (values.shape[1] - 1) // 2
    return torch.from_numpy(np.partition(values, k, axis=1)[:, k].copy())


def centred_label_kernel(y: torch.Tensor) -> torch.Tensor:
    """``H L H`` (m, m) float32 for the delta kernel ``L_ij = 1[y_i = y_j]``."""
    same = (y[:, None] == y[None, :]).float()
    return same - same.mean(dim=0, keepdim=True) - same.mean(dim=1, keepdim=True) + same.mean()


def _runs(widths: list[int]) -> list[tuple[int, int]]:
    """[start, stop) ranges of consecutive layers of equal width."""
    starts = [i for i in range(len(widths)) if i == 0 or widths[i] != widths[i - 1]]
    return list(zip(starts, [*starts[1:], len(widths)], strict=True))


class BatchedHsic(torch.autograd.Function):
    """``sum_ij K_ij (HLH)_ij`` of each layer: (L,) float32, one autograd node for all layers.

    forward(centred (m, m), bandwidth, *features (m, C_l)); sigma^2 is a constant (the
    median is taken without gradient). Consecutive layers of equal width share one batched
    Gram product (no zero padding); distances, kernel and contraction run on the stacked
    (L, m, m) tensors.
    """

    @staticmethod
    def forward(ctx, centred, bandwidth, *features):
        m, runs = features[0].shape[0], _runs([f.shape[1] for f in features])
        gram = torch.empty((len(features), m, m), dtype=torch.float32, device=centred.device)
        zs = []
        for a, b in runs:
            z = torch.stack([f.to(torch.float32) for f in features[a:b]])  # (b - a, m, C)
            torch.bmm(z, z.transpose(1, 2), out=gram[a:b])
            zs.append(z)
        sq = gram.diagonal(dim1=1, dim2=2)  # (L, m) squared norms: d2's diagonal is exactly 0
        d2 = torch.add(sq[:, :, None], sq[:, None, :]).sub_(gram, alpha=2.0).clamp_min_(0.0)
        if bandwidth == "median":
            sigma2 = median_pair_distance(d2, _pair_index(m, d2.device)).clamp_min_(1e-12)
        else:
            sigma2 = torch.full((len(features),), float(bandwidth) ** 2, device=d2.device)
        w = d2.mul_((-0.5 / sigma2)[:, None, None]).exp_().mul_(centred)  # K o HLH, in place
        ctx.save_for_backward(w, sigma2, *zs)
        ctx.runs, ctx.dtypes = runs, [f.dtype for f in features]
        return w.sum(dim=(1, 2))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        w, sigma2, *zs = ctx.saved_tensors
        rowsum = w.sum(dim=2, keepdim=True)
        scale = (grad * (-2.0 / sigma2))[:, None, None]
        grads = []
        for (a, b), z in zip(ctx.runs, zs, strict=True):
            # -(2 / sigma^2) (diag(W 1) Z - W Z), times each layer's incoming gradient
            lap = torch.baddbmm(z * rowsum[a:b], w[a:b], z, alpha=-1.0).mul_(scale[a:b])
            grads.extend(lap.unbind(0))
        return (None, None, *(g.to(d) for g, d in zip(grads, ctx.dtypes, strict=True)))


def batched_hsic(
    features: list[torch.Tensor], y: torch.Tensor, bandwidth: float | str = "median"
) -> torch.Tensor:
    """Biased HSIC of each feature matrix (m, C_l) with labels y (m,): a (L,) float32 tensor.

    All L kernels are stacked into one (L, m, m) tensor, so distances, exponential and label
    contraction run as single batched operations; the label kernel is centred once per batch
    (``tr(K H L H) = sum_ij K_ij (HLH)_ij``) instead of centring every K. Always float32,
    with autocast off. ``bandwidth="median"``: sigma^2 is the median of the squared
    distances of the pairs i < j of each layer (torch's median: the lower middle value,
    equal to that of all off-diagonal pairs; a constant, no gradient through it); a number
    gives sigma.
    """
    m = len(y)
    with torch.autocast(y.device.type, enabled=False):
        if m < 2:
            return torch.stack([f.float().sum() * 0.0 for f in features])
        total = BatchedHsic.apply(centred_label_kernel(y), bandwidth, *features)
        return total / (m - 1) ** 2


def hsic(z: torch.Tensor, y: torch.Tensor, bandwidth: float | str = "median") -> torch.Tensor:
    """Biased HSIC between features z (m, C) and integer labels y (m,); a scalar tensor."""
    return batched_hsic([z], y, bandwidth)[0]


def hsic_penalty(
    pooled: dict[str, torch.Tensor],
    y: torch.Tensor,
    weights: dict[str, float],
    bandwidth: float | str = "median",
) -> torch.Tensor:
    """``sum_l w_l HSIC(pooled[l], y)`` over the sites named in ``weights``."""
    if not weights:
        raise ValueError("HSIC regularizer has no sites: check hsic.site_kinds / hsic.weights")
    names = list(weights)
    w = torch.tensor([weights[n] for n in names], device=y.device)
    return (w * batched_hsic([pooled[n] for n in names], y, bandwidth)).sum()
