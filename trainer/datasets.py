"""The dataset a run config names: :func:`load_dataset` (one place that knows every loader).

In memory (:mod:`trainer.data`): digits, synthetic; the 12-bit patterns
(:mod:`trainer.twelve_bit.data`); through torchvision (:mod:`trainer.datasets_extra`):
imagenette, imagefolder, cifar10.
"""

from __future__ import annotations

from trainer.config import DATASETS
from trainer.data import DataBundle, load_digits_bundle, load_synthetic_bundle


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
    from trainer.datasets_extra import load_extra  # imagenette, imagefolder, cifar10

    if (bundle := load_extra(cfg)) is not None:
        return bundle
    raise ValueError(f"unknown dataset.name {name!r}: choose one of {', '.join(DATASETS)}")
