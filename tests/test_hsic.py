import numpy as np
import pytest
import torch

from trainer.hsic import hsic, hsic_penalty
from trainer.models import build_model
from trainer.sites import capture_gap, capture_sums, find_sites, gap


def brute_force_hsic(z, y, sigma2):
    m = len(y)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    K = np.exp(-d2 / (2 * sigma2))
    L = (y[:, None] == y[None, :]).astype(float)
    H = np.eye(m) - np.ones((m, m)) / m
    return np.trace(K @ H @ L @ H) / (m - 1) ** 2


def test_hsic_matches_brute_force_numpy():
    rng = np.random.default_rng(0)
    for _ in range(5):
        z = rng.normal(size=(17, 5))
        y = rng.integers(0, 3, 17)
        got = hsic(torch.tensor(z), torch.tensor(y), bandwidth=1.3).item()
        np.testing.assert_allclose(
            got, brute_force_hsic(z, y, 1.3**2), rtol=1e-5
        )  # hsic computes in float32
        d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
        positive = np.sort(d2[~np.eye(len(z), dtype=bool)])
        med = positive[(len(positive) - 1) // 2]  # off-diagonal; torch.median: lower middle
        got = hsic(torch.tensor(z), torch.tensor(y)).item()
        np.testing.assert_allclose(
            got, brute_force_hsic(z, y, med), rtol=1e-5
        )  # hsic computes in float32


def test_hsic_higher_for_label_dependent_features():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 64)
    dependent = np.eye(4)[y] * 3 + rng.normal(size=(64, 4)) * 0.1
    independent = rng.normal(size=(64, 4))
    yt = torch.tensor(y)
    assert hsic(torch.tensor(dependent), yt) > 5 * hsic(torch.tensor(independent), yt)


def test_hsic_gradients_reach_the_backbone():
    torch.manual_seed(0)
    net = build_model("resnet18", 4, width=0.125)
    sites = [s for s in find_sites(net) if s.kind == "post-add"]
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8) % 4
    with capture_gap(sites, detach=False) as pooled:
        net(x)
    penalty = hsic_penalty(pooled, y, {s.name: 1.0 for s in sites})
    penalty.backward()
    assert net.conv1.weight.grad is not None
    assert net.conv1.weight.grad.abs().sum() > 0
    assert net.fc.weight.grad is None  # the head is not on the HSIC path


def test_batched_penalty_equals_sum_of_single_layer_hsic():
    rng = np.random.default_rng(2)
    y = torch.tensor(rng.integers(0, 3, 20))
    pooled = {
        "a": torch.tensor(rng.normal(size=(20, 4))),
        "b": torch.tensor(rng.normal(size=(20, 9))),
    }
    got = hsic_penalty(pooled, y, {"a": 0.5, "b": 2.0})
    want = 0.5 * hsic(pooled["a"], y) + 2.0 * hsic(pooled["b"], y)
    torch.testing.assert_close(got, want)


def brute_force_penalty_torch(features, y, weights, bandwidth="median"):
    """sum_l w_l tr(K_l H L H) / (m - 1)^2 in float64, one layer at a time, explicit matrices;
    sigma^2 (the lower median of the off-diagonal squared distances) without gradient."""
    m = len(y)
    H = torch.eye(m, dtype=torch.float64) - 1.0 / m
    L = (y[:, None] == y[None, :]).double()
    total = 0.0
    for z, w in zip(features, weights, strict=True):
        d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
        if bandwidth == "median":
            off = d2.detach()[~torch.eye(m, dtype=torch.bool)]
            sigma2 = off.sort().values[(len(off) - 1) // 2]
        else:
            sigma2 = bandwidth**2
        K = torch.exp(-d2 / (2 * sigma2))
        total = total + w * torch.trace(K @ H @ L @ H) / (m - 1) ** 2
    return total


@pytest.mark.parametrize("bandwidth", ["median", 2.5])
def test_penalty_value_and_gradient_match_brute_force(bandwidth):
    """The analytic backward of the batched node equals autograd through the explicit
    per-layer H K H L formula (float64), for layers of unequal widths."""
    gen = torch.Generator().manual_seed(3)
    m, widths, w = 40, [3, 8, 8, 16, 5], [1.0, 0.5, 2.0, 1.5, 0.25]
    y = torch.randint(0, 4, (m,), generator=gen)
    base = [torch.randn(m, c, generator=gen, dtype=torch.float64) for c in widths]
    base[1] = base[1] + 2.0 * torch.nn.functional.one_hot(y, 8)  # one label-dependent layer
    ours = [b.float().requires_grad_() for b in base]
    ref = [b.clone().requires_grad_() for b in base]
    names = [f"s{i}" for i in range(len(widths))]
    pooled = dict(zip(names, ours, strict=True))
    got = hsic_penalty(pooled, y, dict(zip(names, w, strict=True)), bandwidth)
    want = brute_force_penalty_torch(ref, y, w, bandwidth)
    got.backward()
    want.backward()
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
    for a, b in zip(ours, ref, strict=True):
        scale = b.grad.abs().max().item()
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5 * scale)


def test_gradient_keeps_each_input_dtype():
    y = torch.arange(12) % 3
    a = torch.randn(12, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, 6, dtype=torch.bfloat16, requires_grad=True)
    hsic_penalty({"a": a, "b": b}, y, {"a": 1.0, "b": 1.0}).backward()
    assert a.grad.dtype == torch.float64 and a.grad.shape == a.shape
    assert b.grad.dtype == torch.bfloat16 and b.grad.shape == b.shape
    assert a.grad.abs().sum() > 0


def test_single_sample_batch_gives_zero_with_a_graph():
    z = torch.randn(1, 5, requires_grad=True)
    value = hsic(z, torch.tensor([2]))
    value.backward()
    assert value.item() == 0.0 and torch.equal(z.grad, torch.zeros_like(z))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "bf16"])
def test_gap_equals_mean_and_its_gradient(layout):
    """gap (sum / n, whose backward is a broadcast view) equals mean in value and gradient."""
    x = torch.randn(5, 3, 4, 6)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    if layout == "bf16":
        x = x.bfloat16()
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    got, want = gap(a), b.mean(dim=(2, 3), dtype=torch.float32)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)  # bitwise: mean is sum then division on CPU
    g = torch.randn(5, 3)
    got.backward(g)
    want.backward(g)
    torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_penalty_on_spatial_sums_equals_penalty_on_gap():
    """capture_sums + the division inside the HSIC node == capture_gap (values, gradients)."""
    torch.manual_seed(1)
    net = build_model("resnet18", 4, width=0.125)
    sites = [s for s in find_sites(net) if s.kind in ("post-add", "branch")]
    weights = {s.name: 0.5 + i for i, s in enumerate(sites)}
    x, y = torch.randn(12, 3, 32, 32), torch.arange(12) % 4
    grads, values = [], []
    for capture in (lambda: capture_gap(sites, detach=False), lambda: capture_sums(sites)):
        net.zero_grad()
        with capture() as pooled:
            net(x)
        value = hsic_penalty(pooled, y, weights)
        value.backward()
        values.append(value.item())
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)
