"""The seed-003 network: fully connected 12-10-7-5-4-3-2, tanh (or relu) hidden, softmax output.

Initialization as in the seed-003 code: weights from a normal truncated at 2 sd with sd
1/sqrt(fan_in), biases 0. With ``beta > 0`` (the noisy networks of Goldfeld et al.) every hidden unit gets
N(0, beta^2) added after its activation, in training and in evaluation, unless ``noisy(False)``
is in effect (the dump records the deterministic S). The measurement sites are the activation
modules of the hidden layers (their output is S, before the noise), whole layers, no pooling.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from trainer.sites import Site

TWELVE_BIT_WIDTHS = (12, 10, 7, 5, 4, 3, 2)


class TwelveBitMLP(nn.Module):
    """``widths[0]`` inputs, hidden layers ``widths[1:-1]``, ``widths[-1]`` logits."""

    def __init__(self, activation: str = "tanh", beta: float = 0.0, widths=TWELVE_BIT_WIDTHS):
        super().__init__()
        if activation not in ("tanh", "relu"):
            raise ValueError(f"twelve_bit_mlp activation must be tanh or relu, got {activation!r}")
        if beta < 0:
            raise ValueError(f"noise.beta must be >= 0, got {beta}")
        self.activation, self.beta, self.widths = activation, float(beta), tuple(widths)
        self.linears = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(self.widths[:-1], self.widths[1:], strict=True)
        )
        self.acts = nn.ModuleList(
            nn.Tanh() if activation == "tanh" else nn.ReLU() for _ in self.widths[1:-1]
        )
        self.noise_on = True
        self.generator: torch.Generator | None = None  # for evaluation noise (reproducible)
        for lin in self.linears:
            sd = 1.0 / math.sqrt(lin.in_features)
            nn.init.trunc_normal_(lin.weight, 0.0, sd, -2 * sd, 2 * sd)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for lin, act in zip(self.linears[:-1], self.acts, strict=True):
            h = act(lin(h))
            if self.beta > 0 and self.noise_on:
                noise = torch.randn(h.shape, generator=self.generator, device=h.device)
                h = h + self.beta * noise
        return self.linears[-1](h)

    @contextlib.contextmanager
    def noisy(self, on: bool):
        """Within the block, hidden noise is on (``True``) or off (``False``)."""
        before, self.noise_on = self.noise_on, on
        try:
            yield
        finally:
            self.noise_on = before

    def measurement_sites(self) -> list[Site]:
        """Every hidden layer, whole (its activation module's output S, before the noise)."""
        kind = f"fc-{self.activation}"
        return [
            Site(f"fc{i + 1}", kind, lin.out_features, act)
            for i, (lin, act) in enumerate(zip(self.linears[:-1], self.acts, strict=True))
        ]
