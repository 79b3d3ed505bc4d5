"""HSIC dependence regularizer (seeds/001 §3.5).

``HSIC(Z, Y) = tr(K H L H) / (m - 1)^2`` (biased estimator) with K an RBF kernel on the
pooled features Z (m, C), L the delta kernel on labels (``L_ij = 1[y_i = y_j]``) and
``H = I - 11^T / m``. Centring is done in O(m^2) by subtracting row, column and grand
means of K (no m x m matrix product): ``tr(K H L H) = sum_ij (HKH)_ij L_ij``.
The training loss is ``CE - lambda * sum_l w_l HSIC(GAP(T_l), Y)``.
"""

from __future__ import annotations

import torch


def rbf_kernel(z: torch.Tensor, bandwidth: float | str = "median") -> torch.Tensor:
    """(m, C) -> (m, m) with ``exp(-|z_i - z_j|^2 / (2 sigma^2))``.

    ``bandwidth="median"``: sigma^2 is the median of the positive pairwise squared
    distances (torch's median: the lower middle value; a constant, no gradient
    through it); a number gives sigma.
    """
    sq = (z * z).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)
    d2 = d2.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), 0.0)  # exact zeros
    if bandwidth == "median":
        with torch.no_grad():
            positive = d2[d2 > 0]
            sigma2 = positive.median() if positive.numel() else torch.ones((), device=z.device)
    else:
        sigma2 = torch.as_tensor(float(bandwidth) ** 2, device=z.device)
    return torch.exp(-d2 / (2.0 * sigma2))


def hsic(z: torch.Tensor, y: torch.Tensor, bandwidth: float | str = "median") -> torch.Tensor:
    """Biased HSIC between features z (m, C) and integer labels y (m,); a scalar tensor."""
    m = z.shape[0]
    if m < 2:
        return z.sum() * 0.0
    k = rbf_kernel(z.float(), bandwidth)
    kc = k - k.mean(dim=0, keepdim=True) - k.mean(dim=1, keepdim=True) + k.mean()
    same = (y[:, None] == y[None, :]).to(kc.dtype)
    return (kc * same).sum() / (m - 1) ** 2


def hsic_penalty(
    pooled: dict[str, torch.Tensor],
    y: torch.Tensor,
    weights: dict[str, float],
    bandwidth: float | str = "median",
) -> torch.Tensor:
    """``sum_l w_l HSIC(pooled[l], y)`` over the sites named in ``weights``."""
    total = None
    for name, w in weights.items():
        term = w * hsic(pooled[name], y, bandwidth)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("HSIC regularizer has no sites: check hsic.site_kinds / hsic.weights")
    return total
