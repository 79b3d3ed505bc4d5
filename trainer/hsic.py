"""HSIC dependence regularizer (the paper's §3.5).

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
    """``coef_l * sum_ij K_ij (HLH)_ij`` of each layer l: (L,) float32, one autograd node.

    forward(centred (m, m), bandwidth, coef (L,), counts (L,) or None, *features (m, C_l)):
    layer l's points are ``features[l] / counts[l]`` (spatial sums in, GAP values used);
    sigma^2 is a constant (the median is taken without gradient). Consecutive layers of
    equal width share one batched Gram product (no zero padding); distances, kernel and
    contraction run on the stacked (L, m, m) tensors.
    """

    @staticmethod
    def forward(ctx, centred, bandwidth, coef, counts, *features):
        m, runs = features[0].shape[0], _runs([f.shape[1] for f in features])
        gram = torch.empty((len(features), m, m), dtype=torch.float32, device=centred.device)
        zs = []
        for a, b in runs:
            z = torch.stack([f.to(torch.float32) for f in features[a:b]])  # (b - a, m, C)
            if counts is not None:
                z.div_(counts[a:b, None, None])  # the GAP, bitwise sum / n
            torch.bmm(z, z.transpose(1, 2), out=gram[a:b])
            zs.append(z)
        sq = gram.diagonal(dim1=1, dim2=2)  # (L, m) squared norms: d2's diagonal is exactly 0
        d2 = torch.add(sq[:, :, None], sq[:, None, :]).sub_(gram, alpha=2.0).clamp_min_(0.0)
        if bandwidth == "median":
            sigma2 = median_pair_distance(d2, _pair_index(m, d2.device)).clamp_min_(1e-12)
        else:
            sigma2 = torch.full((len(features),), float(bandwidth) ** 2, device=d2.device)
        w = d2.mul_((-0.5 / sigma2)[:, None, None]).exp_().mul_(centred)  # K o HLH, in place
        # d value / d point = (-2 / sigma^2) coef (diag(W 1) Z - W Z); / counts: d point / d sum
        factor = coef * (-2.0 / sigma2) if counts is None else coef * (-2.0 / sigma2) / counts
        ctx.save_for_backward(w, factor, *zs)
        ctx.runs, ctx.dtypes = runs, [f.dtype for f in features]
        return w.sum(dim=(1, 2)).mul_(coef)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        w, factor, *zs = ctx.saved_tensors
        rowsum = w.sum(dim=2, keepdim=True)
        scale = (grad * factor)[:, None, None]
        grads = []
        for (a, b), z in zip(ctx.runs, zs, strict=True):
            lap = torch.baddbmm(z * rowsum[a:b], w[a:b], z, alpha=-1.0).mul_(scale[a:b])
            grads.extend(lap.unbind(0))
        return (None, None, None, None, *(g.to(d) for g, d in zip(grads, ctx.dtypes, strict=True)))


def _hsic_values(features, counts, coef: list[float], y, bandwidth) -> torch.Tensor:
    """(L,) ``coef_l * HSIC_l`` of the points ``features[l] / counts[l]`` (counts may be None)."""
    m = len(y)
    with torch.autocast(y.device.type, enabled=False):
        if m < 2:
            return torch.stack([f.float().sum() * 0.0 for f in features])
        scaled = torch.tensor(coef, device=y.device).div_((m - 1) ** 2)
        if counts is not None:
            counts = torch.tensor(counts, dtype=torch.float32, device=y.device)
        return BatchedHsic.apply(centred_label_kernel(y), bandwidth, scaled, counts, *features)


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
    return _hsic_values(features, None, [1.0] * len(features), y, bandwidth)


def hsic(z: torch.Tensor, y: torch.Tensor, bandwidth: float | str = "median") -> torch.Tensor:
    """Biased HSIC between features z (m, C) and integer labels y (m,); a scalar tensor."""
    return batched_hsic([z], y, bandwidth)[0]


def hsic_penalty(
    pooled: dict[str, torch.Tensor | tuple[torch.Tensor, int]],
    y: torch.Tensor,
    weights: dict[str, float],
    bandwidth: float | str = "median",
) -> torch.Tensor:
    """``sum_l w_l HSIC(pooled[l], y)`` over the sites named in ``weights``.

    ``pooled[l]``: the GAP values (m, C_l) (:func:`trainer.sites.capture_gap`), or
    ``(spatial sum, n)`` (:func:`trainer.sites.capture_sums`; the division by n then happens
    inside the HSIC node, one autograd node fewer per site).
    """
    if not weights:
        raise ValueError("HSIC regularizer has no sites: check hsic.site_kinds / hsic.weights")
    names = list(weights)
    values = [pooled[n] for n in names]
    if isinstance(values[0], tuple):
        features, counts = [v[0] for v in values], [v[1] for v in values]
    else:
        features, counts = values, None
    coef = [weights[n] for n in names]
    return _hsic_values(features, counts, coef, y, bandwidth).sum()
