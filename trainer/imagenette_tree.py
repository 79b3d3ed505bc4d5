"""Generate an Imagenette-layout tree of real JPEG files (tests, benchmarks, smoke runs).

Same layout as the downloaded archive, so ``torchvision.datasets.Imagenette`` reads it
unchanged: ``ROOT/imagenette2-160/{train,val}/<wnid>/<name>.JPEG`` for the 10 Imagenette
WordNet IDs, plus ``noisy_imagenette.csv``. Images have the archive's size rule (shorter
side 160 / 320 px, longer side drawn in [1, 1.5] x that) and are class-dependent smooth
colour patterns plus noise, so a net can learn them and decoding costs what it costs on
the real data. Counts per split are configurable (the archive: 9,469 train, 3,925 val).

    python -m trainer.imagenette_tree ROOT [--train 9469] [--val 3925] [--size 160px]
"""

from __future__ import annotations

import argparse
import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

WNIDS = (
    "n01440764",
    "n02102040",
    "n02979186",
    "n03000684",
    "n03028079",
    "n03394916",
    "n03417042",
    "n03425413",
    "n03445777",
    "n03888257",
)
SIZE_DIRS = {"full": "imagenette2", "320px": "imagenette2-320", "160px": "imagenette2-160"}
SHORT_SIDE = {"160px": 160, "320px": 320, "full": 375}
FULL_COUNTS = {"train": 9469, "val": 3925}


@dataclass
class Tree:
    root: Path  # pass as dataset.root
    size_dir: Path  # root / imagenette2-160
    counts: dict  # images per split


def _image(rng: np.random.Generator, proto: np.ndarray, short: int) -> Image.Image:
    """Class prototype (4x4x3 colours) upsampled to a random aspect, plus pixel noise."""
    long = int(short * rng.uniform(1.0, 1.5))
    h, w = (short, long) if rng.random() < 0.5 else (long, short)
    base = Image.fromarray(proto, "RGB").resize((w, h), Image.BILINEAR)
    pixels = np.asarray(base, dtype=np.int16) + rng.integers(-40, 41, (h, w, 3), dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def make_imagenette_tree(
    root: str | Path, n_train: int = 200, n_val: int = 100, size: str = "160px", seed: int = 0
) -> Tree:
    """Write ``n_train`` / ``n_val`` JPEGs (spread evenly over the 10 classes) under root.

    Refuses to write into an existing ``imagenette2-*`` folder (it may be the real one).
    """
    root = Path(root)
    size_dir = root / SIZE_DIRS[size]
    if size_dir.exists():
        raise FileExistsError(f"{size_dir} exists: generate into an empty root")
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 256, (len(WNIDS), 4, 4, 3), dtype=np.uint8)
    tmp = root / f".{SIZE_DIRS[size]}.tmp-{os.getpid()}"
    rows = []
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            k = i % len(WNIDS)
            folder = tmp / split / WNIDS[k]
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{WNIDS[k]}_{i:06d}.JPEG"
            _image(rng, protos[k], SHORT_SIDE[size]).save(folder / name, quality=90)
            rows.append((f"{split}/{WNIDS[k]}/{name}", WNIDS[k], split == "val"))
    with open(tmp / "noisy_imagenette.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "noisy_labels_0", "is_valid"])
        writer.writerows(rows)
    tmp.rename(size_dir)  # complete or absent
    return Tree(root, size_dir, {"train": n_train, "val": n_val})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.imagenette_tree", description=__doc__)
    p.add_argument("root", help="folder to create imagenette2-<size>/ in (dataset.root)")
    p.add_argument("--train", type=int, default=FULL_COUNTS["train"], help="training images")
    p.add_argument("--val", type=int, default=FULL_COUNTS["val"], help="validation images")
    p.add_argument("--size", choices=list(SIZE_DIRS), default="160px")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    tree = make_imagenette_tree(args.root, args.train, args.val, args.size, args.seed)
    print(f"wrote {tree.counts['train']} train + {tree.counts['val']} val JPEGs to {tree.size_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
