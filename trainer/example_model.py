"""A user's own model and data, for the README's "Your own model" example (and its test).

Part of the installed ``trainer`` package, so the README's snippet runs from any folder.

``make_model(config)`` and ``val_data(config)`` are the ``model_factory`` / ``data_factory``
hooks that let ``python -m interventions`` rebuild a run recorded by ``trainer.Recorder``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


class Block(nn.Module):
    """A residual block: relu(x + bn(conv(relu(bn(conv(x))))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(h)))


class SmallNet(nn.Module):
    def __init__(self, n_classes: int = 4, channels: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.act = nn.ReLU()
        self.block1 = Block(channels)
        self.block2 = Block(channels)
        self.head = nn.Linear(channels, n_classes)

    def forward(self, x):
        h = self.block2(self.block1(self.act(self.stem(x))))
        return self.head(h.mean(dim=(2, 3)))


def make_model(config: dict) -> nn.Module:
    """model_factory: a fresh SmallNet (the config's n_classes / channels, if given)."""
    return SmallNet(config.get("n_classes", 4), config.get("channels", 8))


def make_data(
    n_train: int = 128, n_val: int = 64, n_classes: int = 4, size: int = 16, seed: int = 0
):
    """Class prototypes plus noise: (train set, validation set, class names)."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.nn.functional.interpolate(
        torch.randn(n_classes, 3, 4, 4, generator=g), size=size
    )

    def split(n):
        y = torch.arange(n) % n_classes
        return TensorDataset(protos[y] + 0.5 * torch.randn(n, 3, size, size, generator=g), y)

    return split(n_train), split(n_val), [f"class{k}" for k in range(n_classes)]


def val_data(config: dict):
    """data_factory: the validation set, in the order it was recorded."""
    return make_data()[1]
