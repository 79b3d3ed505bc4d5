"""The training loader uses every image of a small folder (issue 26 item 7): the last
partial batch is dropped only when it is one image or at most 1%, and the log says how many
images train per epoch."""

import logging

import pytest
import torch

from tests.helpers import tiny_config
from trainer.datasets import load_dataset
from trainer.loaders import drops_last_batch, make_loaders


@pytest.mark.parametrize(
    ("n", "batch", "drop"),
    [
        (90, 64, False),  # a small folder: 26 of 90 images were dropped every epoch
        (1438, 64, False),  # digits' training split: 30 images (2.1%) train too
        (65, 64, True),  # a last batch of 1 image: BatchNorm cannot train on it
        (50000, 64, True),  # CIFAR-10: 16 images (0.03%) dropped, as before
        (128, 64, False),  # no partial batch
        (10, 64, False),  # one partial batch: the whole set
    ],
)
def test_drops_last_batch_only_one_image_or_at_most_one_percent(n, batch, drop):
    assert drops_last_batch(n, batch) is drop


@pytest.mark.parametrize(("n", "used"), [(90, 90), (65, 64)])
def test_an_epoch_trains_on_the_images_the_log_names(n, used, caplog):
    data = load_dataset(tiny_config("dataset.name=digits", "dataset.image_size=8")["dataset"])
    data.train = torch.utils.data.Subset(data.train, range(n))
    with caplog.at_level(logging.INFO, logger="trainer"):
        loaders = make_loaders(data, 64, seed=0, workers=0, device=torch.device("cpu"))
    loaders.sampler.set_epoch(1)
    seen = sum(len(y) for _, y in loaders.train)  # every batch of one epoch
    assert seen == used == loaders.images_per_epoch
    assert min(len(y) for _, y in loaders.train) > 1  # never a lone image (BatchNorm)
    text = caplog.text
    assert f"training on {used} of {n} images per epoch" in text
    assert ("dropped" in text) == (used < n)
