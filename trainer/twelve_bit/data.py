"""The seed-003 dataset ``twelve_bit``: 4,096 distinct 12-bit patterns, binary labels.

``var_u.mat`` (1 KB, from the MIT-licensed code of Shwartz-Ziv & Tishby, github.com/ravidziv/IDNNs,
``data/var_u.mat``) is shipped inside this package, so no network is needed. It holds ``F``
(4096, 12) uint8 bits and ``y`` (1, 4096) uint8 labels. Training uses a seeded fraction of the
patterns (seed 003: 85%; also 5% and 45%); the validation metrics use the rest; the dump (the
analysis set) is all 4,096 patterns in file order, so X is uniform over them as in both seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from trainer.data import DataBundle, TensorImages

VAR_U = "var_u.mat"
N_PATTERNS, N_BITS = 4096, 12


def var_u_path() -> Path:
    """Path of the shipped ``var_u.mat``."""
    return Path(str(resources.files("trainer.twelve_bit").joinpath(VAR_U)))


def load_var_u(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(X (4096, 12) float32 in {0, 1}, y (4096,) int64 in {0, 1}) read with ``scipy.io.loadmat``."""
    from scipy.io import loadmat

    path = Path(path) if path is not None else var_u_path()
    if not path.is_file():
        raise FileNotFoundError(f"twelve_bit data file {path} does not exist")
    mat = loadmat(path)
    if "F" not in mat or "y" not in mat:
        raise ValueError(f"{path} is not the seed-003 var_u.mat (needs variables F and y)")
    x = np.asarray(mat["F"], dtype=np.float32)
    y = np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 2 or x.shape[0] != len(y):
        raise ValueError(f"{path}: F has shape {x.shape} but y has {len(y)} labels")
    return x, y


def split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) indices: a seeded random ``train_fraction`` of 0..n-1 trains."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"dataset.train_fraction must be in (0, 1), got {train_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = min(n - 1, max(1, int(round(n * train_fraction))))
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


@dataclass
class TwelveBitBundle(DataBundle):
    """A :class:`DataBundle` plus ``analysis``: every pattern in file order (the dump)."""

    analysis: Dataset | None = None
    train_index: np.ndarray | None = None


def load_twelve_bit_bundle(
    train_fraction: float, split_seed: int, path: str | None = None
) -> TwelveBitBundle:
    x, y = load_var_u(path)
    tr, va = split_indices(len(y), train_fraction, split_seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    return TwelveBitBundle(
        train=TensorImages(xt[tr], yt[tr]),
        val=TensorImages(xt[va], yt[va]),
        classes=["0", "1"],
        image_size=x.shape[1],
        analysis=TensorImages(xt, yt),
        train_index=tr,
    )
