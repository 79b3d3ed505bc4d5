"""The trainer's epoch against a plain torchvision loop, side by side (interleaved) in one run.

Per architecture, three epochs (training pass + validation pass) are timed in turn,
``--reps`` times, and the best of each is kept:

* ``plain``: a plain loop written here: torchvision model, DataLoader, SGD, cross-entropy,
  the same autocast / memory layout; no hooks, no dump, no HSIC;
* ``dump``: the trainer's ``train_one_epoch`` + ``evaluate`` capturing every site's GAP
  values + the store append in a background thread (as ``trainer.train.run`` does);
* ``hsic``: the same with the HSIC regularizer on (CE - lambda * sum_l HSIC_l).

``dump`` and ``hsic`` are timed as blocks of ``--block`` consecutive epochs, as the trainer runs
them (each append overlaps the next epoch; the block's last append is waited for and counted),
and no append of one block ever runs inside another block's or the plain loop's timing.

Ratios printed: dump / plain (target <= 1.10) and hsic / plain (<= 1.20); and the extras'
own overheads: dump / (trainer epoch without the dump) (<= 1.05) and hsic / dump (<= 1.10).
Checkpoint saving is left out of both loops.

    # CPU (default): the embedded default's ResNet-18 at width 1/4 on digits
    python benchmarks/bench_trainer.py
    # GPU: VGG-16, ResNet-18, ResNet-50 at width 1 on a generated Imagenette-160 tree
    python benchmarks/bench_trainer.py --device cuda [--tree DIR] [--cores 16] [--amp off]

``--live-epochs N`` (``--live-only``) also (only) times whole trainer runs with ``train.live``
on / off side by side (benchmarks/live_overhead.py; target <= 1.05).

``--json PATH`` also writes the table's rows (seconds, ratios, images/s, peak GPU memory).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from trainer import store
from trainer.config import resolve_config
from trainer.data import INPUT_FEATURES
from trainer.datasets import load_dataset
from trainer.epoch import evaluate, train_one_epoch
from trainer.imagenette_tree import FULL_COUNTS, make_imagenette_tree
from trainer.loaders import granted_cores, make_loaders, resolve_workers
from trainer.models import build_model
from trainer.precision import resolve_precision
from trainer.sites import find_sites
from trainer.train import hsic_weights


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_epoch(model, train, val, opt, prec) -> float:
    """The loop a user would write; returns seconds."""
    device, fmt = (
        prec.device,
        (torch.channels_last if prec.channels_last else torch.contiguous_format),
    )
    t0 = time.perf_counter()
    model.train()
    for x, y in train:
        x = x.to(device, non_blocking=True, memory_format=fmt)
        y = y.to(device, non_blocking=True)
        with prec.autocast():
            loss = F.cross_entropy(model(x).float(), y)
        prec.backward_step(loss, opt)
    model.eval()
    correct = torch.zeros((), device=device)
    with torch.no_grad():
        for x, y in val:
            x = x.to(device, non_blocking=True, memory_format=fmt)
            y = y.to(device, non_blocking=True)
            with prec.autocast():
                correct += (model(x).argmax(1) == y).sum()
    correct.item()
    sync(device)
    return time.perf_counter() - t0


class TrainerEpochs:
    """The trainer's epoch with the dump (background append), with or without HSIC."""

    def __init__(self, model, loaders, opt, prec, cfg, path: Path):
        self.model, self.loaders, self.opt, self.prec, self.cfg = model, loaders, opt, prec, cfg
        self.sites = find_sites(model)
        self.weights = hsic_weights(cfg, self.sites)
        self.path, self.epoch, self.pending = path, 0, None
        self.writer = ThreadPoolExecutor(max_workers=1)
        ev = evaluate(model, loaders.val, prec, self.sites, with_summary=True)
        store.create_store(
            path,
            activation=ev.activation,
            metrics={},
            labels=ev.labels,
            input_summary=ev.summary,
            input_features=INPUT_FEATURES,
            sites=[s.describe() for s in self.sites],
            attrs={},
            dtype=cfg["dump"]["dtype"],
            unit_chunk=cfg["dump"]["unit_chunk"],
            clevel=cfg["dump"]["clevel"],
        )

    def block(self, n: int, hsic: bool, dump: bool = True) -> float:
        """Seconds per epoch of n consecutive epochs as the trainer runs them: each epoch's
        append overlaps the next epoch, the last one is waited for (counted)."""
        self.drain()  # another block's append never runs inside this block's timing
        t0 = time.perf_counter()
        for _ in range(n):
            self.run(hsic, dump)
        self.drain()
        return (time.perf_counter() - t0) / n

    def run(self, hsic: bool, dump: bool = True) -> float:
        t0 = time.perf_counter()
        self.epoch += 1
        self.loaders.sampler.set_epoch(self.epoch)
        weights = self.weights if hsic else {}
        train_one_epoch(
            self.model,
            self.loaders.train,
            self.opt,
            self.prec,
            self.sites,
            self.cfg["hsic"],
            weights,
        )
        if not dump:
            sync(self.prec.device)
            return time.perf_counter() - t0
        act = evaluate(self.model, self.loaders.val, self.prec, self.sites).activation
        self.drain()  # as the trainer: one append in flight at a time
        self.pending = self.writer.submit(
            store.append_epoch, self.path, self.epoch, act, {}, self.cfg["dump"]["dtype"]
        )
        sync(self.prec.device)
        return time.perf_counter() - t0

    def drain(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None

    def close(self) -> None:
        self.drain()
        self.writer.shutdown()


def bench_arch(
    cfg: dict, device: torch.device, cores: int, reps: int, tmp: Path, block: int = 3
) -> dict:
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    data = load_dataset(cfg["dataset"])
    prec = resolve_precision(cfg["train"], device)
    model = prec.model(build_model(cfg["arch"], data.n_classes, cfg["activation"], cfg["width"]))
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg["train"]["lr"], momentum=0.9, weight_decay=5e-4
    )
    workers = resolve_workers(cfg["train"]["num_workers"], data.train, device, cores)
    bs = cfg["train"]["batch_size"]
    extra = {"persistent_workers": True, "prefetch_factor": 4} if workers else {}
    pin = device.type == "cuda"
    plain_train = DataLoader(
        data.train, bs, shuffle=True, drop_last=True, num_workers=workers, pin_memory=pin, **extra
    )
    plain_val = DataLoader(data.val, 256, num_workers=workers, pin_memory=pin, **extra)
    loaders = make_loaders(data, bs, 0, workers, device)
    ours = TrainerEpochs(model, loaders, opt, prec, cfg, tmp / f"{cfg['arch']}.zarr")
    plain_epoch(model, plain_train, plain_val, opt, prec)  # warm-up: workers, cudnn autotune
    ours.run(hsic=True)
    times = {"plain": [], "no dump": [], "dump": [], "hsic": []}
    for _ in range(reps):
        times["plain"].append(plain_epoch(model, plain_train, plain_val, opt, prec))
        times["no dump"].append(ours.run(hsic=False, dump=False) + _plain_val(model, loaders, prec))
        times["dump"].append(ours.block(block, hsic=False))
        times["hsic"].append(ours.block(block, hsic=True))
    ours.close()
    best = {k: min(v) for k, v in times.items()}
    n_images = (len(data.train) // bs) * bs + len(data.val)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return {
        "best": best,
        "images_per_s": n_images / best["plain"],
        "n": n_images,
        "prec": prec,
        "workers": workers,
        "peak_gpu_bytes": peak,
    }


def _plain_val(model, loaders, prec) -> float:
    """The trainer's validation pass without the capture (the ``no dump`` epoch's second half):
    validation loss and accuracy, which the trainer computes with or without a dump."""
    t0 = time.perf_counter()
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=prec.device)
    with torch.no_grad():
        for x, y in loaders.val:
            x, y = prec.inputs(x, y)
            with prec.autocast():
                logits = model(x).float()
            loss = F.cross_entropy(logits, y, reduction="sum")
            sums += torch.stack([loss, (logits.argmax(1) == y).sum().float()]).double()
    sums.tolist()
    sync(prec.device)
    return time.perf_counter() - t0


def configs(args, tree: Path | None) -> list[dict]:
    if args.device == "cpu" and tree is None:
        base = [f"dataset.name={args.dataset}", f"dataset.image_size={args.image_size}"]
        archs, width = [args.arch or "resnet18"], args.width or 0.25
    else:
        size = args.image_size if args.device == "cpu" else 128
        base = ["dataset.name=imagenette", f"dataset.root={tree}", f"dataset.image_size={size}"]
        archs, width = (
            ([args.arch] if args.arch else ["vgg16", "resnet18", "resnet50"]),
            args.width or 1.0,
        )
    common = ["regularizer=hsic", "train.batch_size=64", "train.lr=0.01", f"width={width}"]
    common.append(f"train.amp={args.amp}")
    return [resolve_config(None, [*base, *common, f"arch={a}"]) for a in archs]


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--arch", help="one arch (default: resnet18 on CPU, all three on CUDA)")
    p.add_argument("--width", type=float, help="default: 0.25 on CPU, 1 on CUDA")
    p.add_argument("--dataset", default="digits", help="CPU dataset unless --tree is given")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--tree", type=Path, help="Imagenette root to use (default: generate one)")
    p.add_argument("--n-train", type=int, default=FULL_COUNTS["train"])
    p.add_argument("--n-val", type=int, default=FULL_COUNTS["val"])
    p.add_argument("--cores", type=int, help="cores granted (auto workers); default: affinity")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"])
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    p.add_argument(
        "--block", type=int, default=3, help="consecutive dump / HSIC epochs timed together"
    )
    p.add_argument(
        "--live-epochs",
        type=int,
        default=0,
        help="also time the trainer with train.live on / off for this many epochs (0: skip)",
    )
    p.add_argument("--live-only", action="store_true", help="only the live on / off comparison")
    args = p.parse_args()
    device = torch.device(args.device)
    if args.live_epochs or args.live_only:
        from live_overhead import bench_live  # benchmarks/ is on sys.path (this script's folder)

        with tempfile.TemporaryDirectory() as tmp:
            width = args.width or (0.25 if device.type == "cpu" else 1.0)
            bench_live(width, args.live_epochs or 5, args.reps, Path(tmp))
        if args.live_only:
            return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tree = args.tree
        if tree is None and device.type == "cuda":
            tree = tmp / "imagenette"
            t0 = time.perf_counter()
            make_imagenette_tree(tree, args.n_train, args.n_val)
            print(
                f"generated {args.n_train}+{args.n_val} JPEGs in {time.perf_counter() - t0:.0f} s"
            )
        rows = []
        for cfg in configs(args, tree):
            r = bench_arch(cfg, device, granted_cores(args.cores), args.reps, tmp, args.block)
            rows.append((cfg, r))
            report(cfg, r, device, args.reps)
    if args.json:
        args.json.write_text(json.dumps([row_json(cfg, r) for cfg, r in rows], indent=2))
    print(
        "\n| arch | width | plain s | dump s | hsic s | dump/plain | hsic/plain | img/s plain | img/s dump | img/s hsic |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cfg, r in rows:
        b, n = r["best"], r["n"]
        print(
            f"| {cfg['arch']} | {cfg['width']} | {b['plain']:.2f} | {b['dump']:.2f} | {b['hsic']:.2f} "
            f"| {b['dump'] / b['plain']:.3f} | {b['hsic'] / b['plain']:.3f} "
            f"| {n / b['plain']:.0f} | {n / b['dump']:.0f} | {n / b['hsic']:.0f} |"
        )


def row_json(cfg: dict, r: dict) -> dict:
    """One arch's result as plain JSON (seconds per epoch, ratios, images/s, peak GPU MiB)."""
    b, n = r["best"], r["n"]
    return {
        "arch": cfg["arch"],
        "width": cfg["width"],
        "amp": r["prec"].amp,
        "channels_last": bool(r["prec"].channels_last),
        "workers": r["workers"],
        "images_per_epoch": n,
        "seconds": b,
        "dump_over_plain": b["dump"] / b["plain"],
        "hsic_over_plain": b["hsic"] / b["plain"],
        "dump_over_no_dump": b["dump"] / b["no dump"],
        "images_per_s": {k: n / v for k, v in b.items()},
        "peak_gpu_mib": r["peak_gpu_bytes"] / 2**20,
    }


def report(cfg, r, device, reps) -> None:
    b, prec = r["best"], r["prec"]
    print(
        f"{cfg['arch']} width {cfg['width']} on {cfg['dataset']['name']} ({device}, amp {prec.amp}, "
        f"channels_last {prec.channels_last}, {r['workers']} workers), best of {reps}:"
    )
    for k, v in b.items():
        print(f"  {k:8s} {v:7.3f} s  {r['n'] / v:8.0f} images/s")
    print(f"  trainer with dump / plain loop = {b['dump'] / b['plain']:.3f} (target <= 1.10)")
    print(f"  trainer with HSIC / plain loop = {b['hsic'] / b['plain']:.3f} (target <= 1.20)")
    print(f"  dump overhead: with / without  = {b['dump'] / b['no dump']:.3f} (target <= 1.05)")
    print(f"  HSIC overhead: with / without  = {b['hsic'] / b['dump']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
