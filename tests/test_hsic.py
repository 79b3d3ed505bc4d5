import numpy as np
import torch

from trainer.hsic import hsic, hsic_penalty
from trainer.models import build_model
from trainer.sites import capture_gap, find_sites


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
