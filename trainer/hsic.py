"""HSIC dependence regularizer (seeds/001 §3.5).

``HSIC(Z, Y) = tr(K H L H) / (m - 1)^2`` (biased estimator) with K an RBF kernel on the
pooled features Z (m, C), L the delta kernel on labels (``L_ij = 1[y_i = y_j]``) and
``H = I - 11^T / m``. Centring is done in O(m^2) by subtracting row, column and grand
means of K (no m x m matrix product): ``tr(K H L H) = sum_ij (HKH)_ij L_ij``.
The training loss is ``CE - lambda * sum_l w_l HSIC(GAP(T_l), Y)``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=8)
def _diagonal_index(m: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, m) diagonal mask and the flat indices of the off-diagonal entries (cached per m)."""
    eye = torch.eye(m, dtype=torch.bool, device=device)
    return eye, torch.nonzero(~eye.flatten()).flatten()


def batched_hsic(
    features: list[torch.Tensor], y: torch.Tensor, bandwidth: float | str = "median"
) -> torch.Tensor:
    """Biased HSIC of each feature matrix (m, C_l) with labels y (m,): a (L,) tensor.

    All L kernels are stacked into one (L, m, m) tensor so the exponential, centring and
    label contraction run as single batched operations. ``bandwidth="median"``: sigma^2 is
    the median of the off-diagonal squared distances of each layer (torch's median: the
    lower middle value; a constant, no gradient through it); a number gives sigma.
    """
    m = len(y)
    width = max(z.shape[1] for z in features)  # zero-padding columns leaves distances unchanged
    z = torch.stack([F.pad(f.float(), (0, width - f.shape[1])) for f in features])  # (L, m, C)
    sq = (z * z).sum(dim=2)
    d2 = (sq[:, :, None] + sq[:, None, :] - 2.0 * (z @ z.transpose(1, 2))).clamp_min(0.0)
    diagonal, off_diagonal = _diagonal_index(m, d2.device)
    d2 = d2.masked_fill(diagonal, 0.0)
    if m < 2:
        return d2.sum(dim=(1, 2)) * 0.0
    if bandwidth == "median":
        with torch.no_grad():
            sigma2 = (
                d2.flatten(1).index_select(1, off_diagonal).median(dim=1).values.clamp_min(1e-12)
            )
    else:
        sigma2 = torch.full((len(features),), float(bandwidth) ** 2, device=d2.device)
    k = torch.exp(-d2 / (2.0 * sigma2[:, None, None]))
    kc = (
        k
        - k.mean(dim=1, keepdim=True)
        - k.mean(dim=2, keepdim=True)
        + k.mean(dim=(1, 2), keepdim=True)
    )
    same = (y[:, None] == y[None, :]).to(kc.dtype)
    return (kc * same).sum(dim=(1, 2)) / (m - 1) ** 2


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
