"""HSIC dependence regularizer (seeds/001 §3.5).

``HSIC(Z, Y) = tr(K H L H) / (m - 1)^2`` (biased estimator) with K an RBF kernel on the
pooled features Z (m, C), L the delta kernel on labels (``L_ij = 1[y_i = y_j]``) and
``H = I - 11^T / m``. The label kernel is centred once per batch in O(m^2) (row, column and
grand means; no m x m matrix product): ``tr(K H L H) = sum_ij K_ij (HLH)_ij``.
The training loss is ``CE - lambda * sum_l w_l HSIC(GAP(T_l), Y)``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=8)
def _pair_index(m: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, m) diagonal mask and the flat indices of the pairs i < j (cached per m, device)."""
    eye = torch.eye(m, dtype=torch.bool, device=device)
    return eye, torch.triu(~eye, 1).flatten().nonzero()[:, 0]


def median_pair_distance(d2: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Lower median of the pair entries ``pairs`` (flat i < j) of each (m, m) slice of d2.

    Equal to torch's median of all off-diagonal entries (each pair counted twice). On CPU a
    numpy partition (several times faster than torch's median there), else torch's median.
    """
    flat = d2.detach().flatten(1)
    if flat.device.type != "cpu":
        return flat.index_select(1, pairs).median(dim=1).values
    values = flat.numpy()[:, pairs.numpy()]
    k = (values.shape[1] - 1) // 2
    return torch.from_numpy(np.partition(values, k, axis=1)[:, k].copy())


def centred_label_kernel(y: torch.Tensor) -> torch.Tensor:
    """``H L H`` (m, m) float32 for the delta kernel ``L_ij = 1[y_i = y_j]``."""
    same = (y[:, None] == y[None, :]).float()
    return same - same.mean(dim=0, keepdim=True) - same.mean(dim=1, keepdim=True) + same.mean()


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
        width = max(f.shape[1] for f in features)  # zero-padding columns keeps distances
        z = torch.stack([F.pad(f.float(), (0, width - f.shape[1])) for f in features])
        if m < 2:
            return z.sum(dim=(1, 2)) * 0.0
        gram = z @ z.transpose(1, 2)  # (L, m, m)
        sq = (z * z).sum(dim=2)
        d2 = (sq[:, :, None] + sq[:, None, :] - 2.0 * gram).clamp_min(0.0)
        diagonal, pairs = _pair_index(m, z.device)
        d2 = d2.masked_fill(diagonal, 0.0)
        if bandwidth == "median":
            sigma2 = median_pair_distance(d2, pairs).clamp_min(1e-12)
        else:
            sigma2 = torch.full((len(features),), float(bandwidth) ** 2, device=z.device)
        k = torch.exp(d2 * (-0.5 / sigma2)[:, None, None])
        return k.flatten(1) @ centred_label_kernel(y).flatten() / (m - 1) ** 2


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
