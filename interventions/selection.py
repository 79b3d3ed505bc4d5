"""Channel selections at MI mass q, and the one plan of (q, selection, draw) slots (torch-free).

A layer's ranking is its channels' label MI (nats). Channels whose MI is not finite (NaN
from a constant channel or a failed estimate) are never selected: they are excluded from
every set and counted (``n_nonfinite``). Over the finite channels:

* ``top``: the fewest highest-MI channels whose share of the layer's MI reaches q;
* ``bottom``: as many of the lowest-MI channels;
* ``random``: as many channels drawn uniformly without replacement, from a generator seeded
  by (seed, layer index, selection, q, draw[, class]) so that a draw does not depend on
  which other layers or q levels were requested.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

SELECTIONS = ("top", "random", "bottom")
Q_SCALE = 1_000_000  # q enters random seeds as round(q * Q_SCALE)


def draw_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator fixed by (seed, keys): random controls are reproducible from their seed."""
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


def q_key(q: float) -> int:
    """q as an integer seed key."""
    return int(round(float(q) * Q_SCALE))


def mass_prefix(mi: np.ndarray, q: float) -> int:
    """Smallest m such that the m largest (finite) values hold at least a fraction q of the total.

    Negative values count as 0. If the total is 0, ceil(q * n) channels (at least 1).
    """
    p = np.asarray(mi, dtype=np.float64)
    p = np.sort(np.clip(p[np.isfinite(p)], 0, None))[::-1]
    if len(p) == 0:
        return 0
    total = p.sum()
    if total <= 0:
        return max(1, math.ceil(q * len(p)))
    return int(min(len(p), np.searchsorted(np.cumsum(p) / total, q - 1e-12) + 1))


@dataclass(frozen=True)
class Ranking:
    """One layer's ranking: the finite channels (layer indices) and their MI."""

    channels: np.ndarray  # (n_finite,) int indices into the layer's channels
    mi: np.ndarray  # (n_finite,) float64 MI of those channels, nat
    n_nonfinite: int  # channels left out because their MI is NaN or infinite

    @classmethod
    def of(cls, mi: np.ndarray) -> Ranking:
        mi = np.asarray(mi, dtype=np.float64)
        ok = np.isfinite(mi)
        return cls(np.flatnonzero(ok), mi[ok], int((~ok).sum()))

    def select(self, q: float, kind: str, rng: np.random.Generator | None = None) -> np.ndarray:
        """Sorted layer indices of the ``kind`` set at mass q (size of the top set)."""
        m = mass_prefix(self.mi, q)
        order = np.argsort(-self.mi, kind="stable")
        if kind == "top":
            picked = order[:m]
        elif kind == "bottom":
            picked = order[::-1][:m]
        elif kind == "random":
            picked = rng.choice(len(self.mi), m, replace=False)
        else:
            raise ValueError(f"unknown selection {kind!r}: use one of {', '.join(SELECTIONS)}")
        return np.sort(self.channels[picked])


def select_channels(
    mi: np.ndarray, q: float, kind: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Indices of a top-MI set reaching mass q, or a size-matched bottom-MI / random set."""
    return Ranking.of(mi).select(q, kind, rng)


@dataclass(frozen=True)
class Slot:
    """One (q, selection, draw) cell of an experiment; ``qi``/``si`` index the output dims."""

    qi: int
    q: float
    si: int
    selection: str
    draw: int


def plan(qs: Sequence[float], draws: int) -> list[Slot]:
    """Every (q, selection, draw) slot: random sets get ``draws`` draws, top/bottom draw 0 only.

    The one loop over the experiment grid; top and bottom are deterministic, so their later
    draws stay NaN in the outputs.
    """
    return [
        Slot(qi, float(q), si, kind, d)
        for qi, q in enumerate(qs)
        for si, kind in enumerate(SELECTIONS)
        for d in range(draws if kind == "random" else 1)
    ]


@dataclass(frozen=True)
class Choice:
    """A slot and the channels it selects in one layer."""

    slot: Slot
    channels: np.ndarray


def choose(
    ranking: Ranking, slots: Sequence[Slot], seed: int, layer_index: int, *keys: int
) -> Iterator[Choice]:
    """The channel set of each slot; random draws seeded by (seed, layer, selection, q, draw, keys)."""
    for s in slots:
        rng = draw_rng(seed, layer_index, s.si, q_key(s.q), s.draw, *keys)
        yield Choice(s, ranking.select(s.q, s.selection, rng))


def redundant_set(mi: np.ndarray, pair_mi: np.ndarray, cover: np.ndarray, q: float) -> np.ndarray:
    """Channels outside ``cover``, most redundant with it first (largest MI with any cover
    channel), taken until their share of the layer's label MI reaches q (or none are left).

    Channels with non-finite label MI are never taken.
    """
    mi = np.asarray(mi, dtype=np.float64)
    outside = np.setdiff1d(np.flatnonzero(np.isfinite(mi)), cover)
    if len(outside) == 0 or len(cover) == 0:
        return outside
    redundancy = np.nan_to_num(pair_mi[np.ix_(outside, cover)], nan=-np.inf).max(axis=1)
    order = outside[np.argsort(-redundancy, kind="stable")]
    mass = max(np.clip(mi[np.isfinite(mi)], 0, None).sum(), 1e-300)
    share = np.cumsum(np.clip(mi[order], 0, None)) / mass
    return np.sort(order[: int(min(len(order), np.searchsorted(share, q - 1e-12) + 1))])
