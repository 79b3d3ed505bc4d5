"""DataLoaders that keep a device fed and a run reproducible with any number of workers.

Reproducibility does not rest on worker seeds: the training sampler draws, for each epoch,
the sample order *and one augmentation seed per sample* from a generator seeded by
``(seed, epoch)`` only, and :class:`SeededSamples` runs each sample's transform under its
own seed. Epoch ``e`` thus sees the same images with the same crops and flips whether it
runs with 0 or 16 workers, in an uninterrupted run or after a resume, and the loaders never
draw from the global RNG that the model (dropout) uses.

Workers (``train.num_workers``): an integer, or ``auto``: 0 for datasets held in memory as
tensors (digits, synthetic: nothing to decode), else all granted cores on CUDA (the main
process mostly waits on the device) and half of them on CPU (the rest compute). The granted
cores are the CPU slots ``python -m trainer --cores N`` leases (latent_mi/cpu_slots.py; the
workflow passes Snakemake's ``threads``), else the process's CPU affinity.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trainer.data import DataBundle, TensorImages

PREFETCH_FACTOR = 4  # batches each worker keeps ready
MAX_DROPPED = 0.01  # the last partial batch is dropped only when it is at most this fraction
VAL_BATCH = 256
log = logging.getLogger("trainer.loaders")  # propagates to the run's train.log


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed mixed from (run seed, epoch) (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


class EpochSampler(Sampler):
    """Yields ``(index, sample_seed)``: order and seeds a pure function of (seed, epoch)."""

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=g)
        return zip(order.tolist(), seeds.tolist(), strict=True)


class SeededSamples(Dataset):
    """``dataset[i]`` computed with torch's CPU generator seeded by the sample's own seed.

    The generator's previous state is restored afterwards, so the main process's RNG stream
    (used by dropout) is the same with 0 workers as with many.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        gen = torch.random.default_generator
        state = gen.get_state()
        gen.manual_seed(seed)
        try:
            return self.dataset[index]
        finally:
            gen.set_state(state)


class ImageError(ValueError):
    """An image file that cannot be decoded; one line naming it, also when raised in a
    DataLoader worker (torch re-raises it with the worker's traceback in the message)."""

    def __str__(self) -> str:
        text = super().__str__().strip()
        last = text.splitlines()[-1] if text else text
        return re.sub(r"^(?:[\w.]+\.)?ImageError: ", "", last)


def open_image(path: str):
    """The RGB image at ``path`` (the ImageFolder loader); a damaged file is an ImageError."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as e:  # PIL.UnidentifiedImageError is an OSError
        why = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise ImageError(
            f"image {path} cannot be read ({type(e).__name__}: {why}): replace or remove it"
        ) from None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; the CPU count off Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def granted_cores(cores: int | None = None) -> int:
    """Cores this process may use: ``cores`` if given, never more than its CPU affinity
    (``--cores 8`` on a 2-core machine grants 2)."""
    usable = usable_cores()
    return min(cores, usable) if cores else usable


def cap_threads(cores: int, exact: bool = False) -> int:
    """At most ``cores`` intra-op threads for torch (exactly ``cores`` with ``exact``: the
    slots a CLI run leased, whatever ``MKL_NUM_THREADS`` the shell exported), and for the
    loader workers it spawns (``OMP_NUM_THREADS``); returns the thread count now in use."""
    if torch.get_num_threads() > cores or (exact and torch.get_num_threads() != cores):
        torch.set_num_threads(cores)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if not omp.isdigit() or int(omp) > cores:
        os.environ["OMP_NUM_THREADS"] = str(cores)
    return torch.get_num_threads()


def resolve_workers(setting: int | str, dataset: Dataset, device: torch.device, cores: int) -> int:
    """DataLoader worker count for ``train.num_workers`` (an int, or ``auto``; module doc)."""
    if setting != "auto":
        return int(setting)
    if isinstance(dataset, TensorImages):
        return 0
    return cores if device.type == "cuda" else max(1, cores // 2)


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    sampler: EpochSampler
    workers: int
    images_per_epoch: int  # training images used per epoch (drops_last_batch)


def _loader(dataset, batch_size, workers, pin, **kwargs) -> DataLoader:
    # spawned, not forked: a forked worker inherits the run directory's lock (flock) and,
    # orphaned by a kill -9, would hold it for seconds against the restarted trainer
    extra = (
        {
            "persistent_workers": True,
            "prefetch_factor": PREFETCH_FACTOR,
            "multiprocessing_context": "spawn",
        }
        if workers
        else {}
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=pin,
        generator=torch.Generator().manual_seed(0),  # worker base seeds: never the global RNG
        **extra,
        **kwargs,
    )


def make_loaders(
    data: DataBundle, batch_size: int, seed: int, workers: int, device: torch.device
) -> Loaders:
    """Training loader (seeded per epoch: call ``sampler.set_epoch``) and the fixed-order
    validation loader of the dump, both with ``workers`` persistent workers."""
    pin = device.type == "cuda"
    n = len(data.train)
    sampler = EpochSampler(n, seed)
    drop = drops_last_batch(n, batch_size)
    train = _loader(
        SeededSamples(data.train), batch_size, workers, pin, sampler=sampler, drop_last=drop
    )
    used = n - (n % batch_size if drop else 0)
    why = "BatchNorm cannot train on 1 image" if n - used == 1 else f"<= {MAX_DROPPED:.0%}"
    dropped = f"; the last partial batch of {n - used} dropped: {why}" if drop else ""
    log.info(
        "training on %d of %d images per epoch (%d batches of up to %d%s)",
        used,
        n,
        len(train),
        batch_size,
        dropped,
    )
    val = _loader(data.val, max(VAL_BATCH, batch_size), workers, pin, shuffle=False)
    return Loaders(train, val, sampler, workers, used)


def drops_last_batch(n: int, batch_size: int) -> bool:
    """Drop the last partial training batch only when it is a single image (BatchNorm cannot
    normalize one sample) or holds at most MAX_DROPPED of the ``n`` images (a tiny, noisy
    step); on a small folder (90 images, batches of 64) every image trains every epoch."""
    rest = n % batch_size
    return n > batch_size and rest > 0 and (rest == 1 or rest <= MAX_DROPPED * n)
