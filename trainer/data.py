"""Datasets: Imagenette2 (the paper's), scikit-learn digits (offline default), synthetic (tests).

Every dataset yields ``(image, label)`` with image a float tensor (3, H, W), normalized.
Validation sets keep one fixed order, so sample ``i`` is the same image at every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from trainer.config import DATASETS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
THUMBNAIL = 4  # input summary thumbnail is THUMBNAIL x THUMBNAIL (area-pooled grayscale)


@dataclass
class DataBundle:
    train: Dataset
    val: Dataset
    classes: list[str]
    image_size: int

    @property
    def n_classes(self) -> int:
        return len(self.classes)


class TensorImages(Dataset):
    """In-memory images (N, 3, H, W) with labels; optional random-shift augmentation."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, shift: int = 0):
        self.images, self.labels, self.shift = images, labels, shift

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        img = self.images[i]
        if self.shift:
            s = self.shift
            padded = F.pad(img, (s, s, s, s))
            dy, dx = torch.randint(0, 2 * s + 1, (2,)).tolist()
            img = padded[:, dy : dy + img.shape[1], dx : dx + img.shape[2]]
        return img, int(self.labels[i])


def _stratified_split(labels: np.ndarray, val_fraction: float, seed: int):
    """Indices (train, val) with the same class proportions; val sorted for a fixed order."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_val = max(1, int(round(len(idx) * val_fraction)))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train)), np.sort(np.array(val))


def _to_tensor_images(gray: np.ndarray, image_size: int) -> torch.Tensor:
    """(N, h, w) grayscale in [0, 1] -> (N, 3, S, S), bilinear upscaling, standardized."""
    x = torch.from_numpy(gray.astype(np.float32))[:, None]
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = (x - 0.5) / 0.5
    return x.repeat(1, 3, 1, 1).contiguous()


def load_digits_bundle(
    image_size: int, val_fraction: float, split_seed: int, shift: int
) -> DataBundle:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = _to_tensor_images(digits.images / 16.0, image_size)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    tr, va = _stratified_split(digits.target, val_fraction, split_seed)
    return DataBundle(
        TensorImages(images[tr], labels[tr], shift=shift),
        TensorImages(images[va], labels[va]),
        [str(k) for k in range(10)],
        image_size,
    )


def load_synthetic_bundle(
    image_size: int, n_classes: int, n_train: int, n_val: int, noise: float, split_seed: int
) -> DataBundle:
    """Class prototypes (smooth random patterns) plus Gaussian noise: learnable in a few epochs."""
    g = torch.Generator().manual_seed(split_seed)
    coarse = torch.randn(n_classes, 3, 4, 4, generator=g)
    protos = F.interpolate(
        coarse, size=(image_size, image_size), mode="bilinear", align_corners=False
    )

    def make(n):
        y = torch.arange(n) % n_classes
        x = protos[y] + noise * torch.randn(n, 3, image_size, image_size, generator=g)
        return TensorImages(x.contiguous(), y)

    return DataBundle(
        make(n_train), make(n_val), [f"class{k}" for k in range(n_classes)], image_size
    )


def load_imagenette_bundle(root: str, size: str, image_size: int, download: bool) -> DataBundle:
    """Imagenette2 through torchvision, with the paper's transforms (its §3.2)."""
    from torchvision import datasets
    from torchvision import transforms as T

    size_dir = {"full": "imagenette2", "320px": "imagenette2-320", "160px": "imagenette2-160"}
    if size not in size_dir:
        raise ValueError(f"dataset.size {size!r}: choose one of {', '.join(size_dir)}")
    if not download and not (Path(root) / size_dir[size]).is_dir():
        raise FileNotFoundError(
            f"Imagenette not found at {Path(root) / size_dir[size]} (set dataset.download: true or dataset.root)"
        )
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = T.Compose(
        [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(), normalize]
    )
    val_tf = T.Compose(
        [
            T.Resize(int(round(image_size * 256 / 224))),
            T.CenterCrop(image_size),
            T.ToTensor(),
            normalize,
        ]
    )
    from trainer.loaders import open_image  # a damaged image: one line naming it

    train = datasets.Imagenette(
        root, split="train", size=size, download=download, transform=train_tf, loader=open_image
    )
    val = datasets.Imagenette(
        root, split="val", size=size, download=False, transform=val_tf, loader=open_image
    )
    classes = [names[0] for names in train.classes]
    return DataBundle(train, val, classes, image_size)


def load_dataset(cfg: dict) -> DataBundle:
    """Build the dataset described by the ``dataset`` section of a run config."""
    name = cfg["name"]
    if name == "digits":
        return load_digits_bundle(
            cfg["image_size"], cfg["val_fraction"], cfg["split_seed"], cfg["shift"]
        )
    if name == "synthetic":
        return load_synthetic_bundle(
            cfg["image_size"],
            cfg["n_classes"],
            cfg["n_train"],
            cfg["n_val"],
            cfg["noise"],
            cfg["split_seed"],
        )
    if name == "twelve_bit":
        from trainer.twelve_bit.data import load_twelve_bit_bundle

        return load_twelve_bit_bundle(cfg["train_fraction"], cfg["split_seed"])
    if name == "imagenette":
        return load_imagenette_bundle(cfg["root"], cfg["size"], cfg["image_size"], cfg["download"])
    from trainer.datasets_extra import load_extra  # imagefolder, cifar10

    if (bundle := load_extra(cfg)) is not None:
        return bundle
    raise ValueError(f"unknown dataset.name {name!r}: choose one of {', '.join(DATASETS)}")


INPUT_FEATURES = (
    [f"mean_rgb{c}" for c in range(3)]
    + [f"std_rgb{c}" for c in range(3)]
    + [f"thumb_{i}_{j}" for i in range(THUMBNAIL) for j in range(THUMBNAIL)]
)


def input_summary(images: torch.Tensor) -> torch.Tensor:
    """(batch, 3, H, W) normalized images -> (batch, 22): per-channel mean, std, 4x4 gray thumbnail."""
    mean = images.mean(dim=(2, 3))
    std = images.std(dim=(2, 3))
    thumb = F.adaptive_avg_pool2d(images.mean(dim=1, keepdim=True), THUMBNAIL).flatten(1)
    return torch.cat([mean, std, thumb], dim=1)
