"""Small shared helpers for the tests (tiny generated runs)."""

from trainer.config import resolve_config

TINY = [
    "dataset.name=synthetic",
    "dataset.image_size=16",
    "dataset.n_train=128",
    "dataset.n_val=64",
    "width=0.125",
    "train.progress=false",
    "train.lr=0.02",
]


def tiny_config(*overrides: str) -> dict:
    return resolve_config(None, [*TINY, *overrides])
