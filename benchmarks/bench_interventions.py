"""Interventions: peak memory against the validation-set size, and seconds per edit.

Builds generated data in Imagenette's on-disk layout (64 px JPEGs, read lazily as at paper
scale), a VGG-16 (width 1/16) checkpoint and a matching MI Dataset, then runs
``python -m interventions --layers all`` at two validation-set sizes, each in a fresh
child process that reports its own peak RSS. Target: RSS(large) / RSS(small) <= 1.25.

    python benchmarks/bench_interventions.py [--sizes 400 3200] [--device cpu] [--arch vgg16] [--width 0.0625]

Seconds per edit = the run's wall time / the edits it scored (each edit over the whole
validation set; a class-targeted edit counts as its class's share of the set).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WNIDS = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"]  # fmt: skip
IV_ARGS = ["--q", "0.5", "--class-q", "0.5", "--draws", "1", "--noise", "1.0"]


def make_images(root: Path, n_val: int, size: int) -> None:
    """``root/imagenette2-160/{train,val}/<wnid>/*.JPEG``: smooth class patterns + noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    protos = rng.random((len(WNIDS), 4, 4, 3))
    for split, n in (("train", len(WNIDS)), ("val", n_val)):
        for i in range(n):
            k = i % len(WNIDS)
            d = root / "imagenette2-160" / split / WNIDS[k]
            d.mkdir(parents=True, exist_ok=True)
            base = np.kron(protos[k], np.ones((size // 4, size // 4, 1)))
            img = np.clip(base + 0.3 * rng.standard_normal(base.shape), 0, 1)
            Image.fromarray((img * 255).astype(np.uint8)).save(d / f"{i:05d}.JPEG", quality=90)


def make_run(work: Path, data_root: Path, n_val: int, arch: str, width: float) -> tuple[Path, Path]:
    """A run directory with ``checkpoints/best.pt`` and its MI Dataset (random ranking)."""
    import torch
    import xarray as xr

    from latent_mi import contract as C
    from trainer.config import config_json, resolve_config
    from trainer.models import build_model
    from trainer.sites import find_sites

    cfg = resolve_config(
        None,
        [f"arch={arch}", f"width={width}", "dataset.name=imagenette", f"dataset.root={data_root}",
         "dataset.size=160px", "dataset.image_size=64", "train.progress=false"],
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model(arch, len(WNIDS), cfg["activation"], width)
    sites = find_sites(model)
    run_dir = work / f"runs/bench-n{n_val}"
    ckpt = C.checkpoint_path(run_dir, "best")
    ckpt.parent.mkdir(parents=True)
    classes = WNIDS
    torch.save({"epoch": 1, "model": model.state_dict(), "config": config_json(cfg),
                "classes": classes}, ckpt)  # fmt: skip
    rng = np.random.default_rng(1)
    c_max = max(s.channels for s in sites)
    chan = rng.random((2, len(sites), c_max))
    klass = rng.random((2, len(sites), c_max, len(WNIDS)))
    for i, s in enumerate(sites):
        chan[:, i, s.channels :] = np.nan
        klass[:, i, s.channels :] = np.nan
    ds = xr.Dataset(
        {
            C.CHANNEL_LABEL_MI: (("epoch", "layer", "channel"), chan),
            C.CLASS_CHANNEL_MI: (("epoch", "layer", "channel", "label"), klass),
            C.VAL_ACC: (("epoch",), np.array([0.1, 0.5])),
        },
        coords={
            "epoch": [0, 1],
            "layer": np.array([s.name for s in sites], dtype=object),
            "label": np.arange(len(WNIDS)),
            C.N_CHANNELS: ("layer", np.array([s.channels for s in sites])),
            "arch": np.array(arch, dtype=object),
            "run": np.array(run_dir.name, dtype=object),
            "seed": cfg["seed"],
        },
        attrs={C.ATTR_BEST_EPOCH: 1},
    )
    mi = work / f"mi-n{n_val}.zarr"
    ds.to_zarr(mi, mode="w", zarr_format=3)
    return run_dir, mi


def child(args) -> None:
    """One measurement: run the CLI in this process, then print its peak RSS and timings."""
    import xarray as xr

    from interventions.cli import main

    out = Path(args.out)
    argv = [args.run_dir, "--mi", args.mi, "--out", str(out), "--layers", "all", *IV_ARGS]
    t0 = time.perf_counter()
    rc = main([*argv, "--device", args.device, "--batch-size", str(args.batch_size)])
    seconds = time.perf_counter() - t0
    if rc:
        raise SystemExit(rc)
    ds = xr.open_zarr(out)
    n_edits = int(np.isfinite(ds.accuracy.values).sum())
    n_edits += int(np.isfinite(ds.class_accuracy.values).sum()) / ds.sizes["label"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak_mb, "seconds": seconds, "edits": n_edits}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs=2, default=[400, 3200])
    p.add_argument("--device", default="cpu")
    p.add_argument("--arch", default="vgg16")
    p.add_argument("--width", type=float, default=0.0625)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    p.add_argument("--mi", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            work = Path(tmp) / f"n{n}"
            make_images(work / "data", n, 64)
            run_dir, mi = make_run(work, work / "data", n, args.arch, args.width)
            cmd = [sys.executable, __file__, "--child", "--run-dir", str(run_dir), "--mi", str(mi),
                   "--out", str(work / "iv.zarr"), "--device", args.device,
                   "--batch-size", str(args.batch_size)]  # fmt: skip
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"child for n={n} failed:\n{res.stderr[-2000:]}")
            rows[n] = json.loads(res.stdout.strip().splitlines()[-1])
            r = rows[n]
            print(
                f"n_val={n:5d}  peak RSS {r['peak_rss_mb']:7.0f} MB  {r['seconds']:7.1f} s  "
                f"{r['edits']:.0f} edits  {r['seconds'] / r['edits']:.3f} s/edit "
                f"({r['seconds'] / r['edits'] / n * 1000:.3f} ms per edit per sample)"
            )
    small, large = (rows[n] for n in args.sizes)
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    print(f"peak RSS ratio n={args.sizes[1]} / n={args.sizes[0]}: {ratio:.2f} (target <= 1.25)")


if __name__ == "__main__":
    main()
