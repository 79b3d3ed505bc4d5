"""Imagenette2 (the paper's), a user's image folder and CIFAR-10, through torchvision's classes.

* ``imagenette``: ``torchvision.datasets.Imagenette`` under ``dataset.root`` (size ``full``,
  ``320px`` or ``160px``), downloaded when ``dataset.download`` is true, the paper's
  transforms (below);
* ``imagefolder``: ``dataset.root`` holds ``train/<class>/*`` and ``val/<class>/*``
  (``torchvision.datasets.ImageFolder``; classes are the sorted folder names, which must
  agree between the splits). The paper's transforms (its §3.2, Datasets and Training Setup): training
  RandomResizedCrop(S) + horizontal flip, validation Resize(S * 256 / 224) + CenterCrop(S),
  ImageNet normalization. Validation order is ImageFolder's (class, then file name): fixed.
* ``cifar10``: ``torchvision.datasets.CIFAR10`` under ``dataset.root``
  (``cifar-10-batches-py/``), downloaded when ``dataset.download`` is true; the test batch is
  the validation set (10,000 images, file order). Training: RandomCrop(32, padding=4) + flip;
  both splits resized to ``dataset.image_size`` when it is not 32; CIFAR-10 normalization.
"""

from __future__ import annotations

from pathlib import Path

from trainer.data import IMAGENET_MEAN, IMAGENET_STD, DataBundle

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def paper_transforms(image_size: int):
    """(train, val) transforms of the paper for natural images of any size."""
    from torchvision import transforms as T

    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train = T.Compose(
        [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(), normalize]
    )
    val = T.Compose(
        [
            T.Resize(int(round(image_size * 256 / 224))),
            T.CenterCrop(image_size),
            T.ToTensor(),
            normalize,
        ]
    )
    return train, val


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


def load_imagefolder_bundle(root: str, image_size: int) -> DataBundle:
    """``root/train`` and ``root/val`` class folders as a :class:`DataBundle`."""
    from torchvision import datasets

    for split in ("train", "val"):
        if not (Path(root) / split).is_dir():
            raise FileNotFoundError(
                f"imagefolder: {Path(root) / split} not found (dataset.root must hold train/ and val/)"
            )
    train_tf, val_tf = paper_transforms(image_size)
    from trainer.loaders import open_image  # a damaged image: one line naming it

    train = datasets.ImageFolder(str(Path(root) / "train"), transform=train_tf, loader=open_image)
    val = datasets.ImageFolder(str(Path(root) / "val"), transform=val_tf, loader=open_image)
    if train.classes != val.classes:
        only = sorted(set(train.classes) ^ set(val.classes))
        raise ValueError(
            f"imagefolder {root}: train/ and val/ class folders differ: {', '.join(only)}"
        )
    return DataBundle(train, val, list(train.classes), image_size)


def load_cifar10_bundle(root: str, image_size: int, download: bool) -> DataBundle:
    """CIFAR-10 train / test batches as a :class:`DataBundle` (test = validation)."""
    from torchvision import datasets
    from torchvision import transforms as T

    resize = [T.Resize(image_size)] if image_size != 32 else []
    normalize = T.Normalize(CIFAR10_MEAN, CIFAR10_STD)
    train_tf = T.Compose(
        [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), *resize, T.ToTensor(), normalize]
    )
    val_tf = T.Compose([*resize, T.ToTensor(), normalize])
    try:
        train = datasets.CIFAR10(root, train=True, transform=train_tf, download=download)
        val = datasets.CIFAR10(root, train=False, transform=val_tf, download=False)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted. ..."
        where = Path(root) / datasets.CIFAR10.base_folder
        raise FileNotFoundError(
            f"CIFAR-10 not found or corrupted at {where} ({e}; set dataset.download: true or dataset.root)"
        ) from None
    return DataBundle(train, val, list(train.classes), image_size)


def load_extra(cfg: dict) -> DataBundle | None:
    """The bundle of a ``dataset`` section naming a dataset of this module, else None."""
    if cfg["name"] == "imagenette":
        return load_imagenette_bundle(cfg["root"], cfg["size"], cfg["image_size"], cfg["download"])
    if cfg["name"] == "imagefolder":
        return load_imagefolder_bundle(cfg["root"], cfg["image_size"])
    if cfg["name"] == "cifar10":
        return load_cifar10_bundle(cfg["root"], cfg["image_size"], cfg["download"])
    return None
