"""Trainer overheads, measured side by side (interleaved repetitions) in one run.

* dump cost: epoch with the GAP capture and the Zarr append (in a background thread that
  overlaps the next epoch, as the trainer does) / epoch with a plain validation pass
  (target <= 1.05);
* HSIC cost: CE + HSIC training epoch / CE epoch (target <= 1.10).

Default: the embedded default's model (ResNet-18 width 1/4) on digits, on CPU.

    python benchmarks/bench_trainer.py [--arch resnet18] [--width 0.25] [--reps 3] [--device cpu]
"""

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from trainer import store
from trainer.config import resolve_config
from trainer.data import INPUT_FEATURES, load_dataset
from trainer.models import build_model
from trainer.sites import find_sites
from trainer.train import evaluate, hsic_weights, train_one_epoch


@torch.no_grad()
def plain_eval(model, loader, device):
    model.eval()
    correct = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        F.cross_entropy(logits, y)
        correct += (logits.argmax(1) == y).sum().item()
    return correct


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--image-size", type=int, default=32)
    args = p.parse_args()
    cfg = resolve_config(
        None,
        [
            f"arch={args.arch}",
            f"width={args.width}",
            f"dataset.name={args.dataset}",
            f"dataset.image_size={args.image_size}",
            "regularizer=hsic",
        ],
    )
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = load_dataset(cfg["dataset"])
    model = build_model(cfg["arch"], data.n_classes, cfg["activation"], cfg["width"]).to(device)
    sites = find_sites(model)
    weights = hsic_weights(cfg, sites)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train = DataLoader(data.train, batch_size=64, shuffle=True, drop_last=True)
    val = DataLoader(data.val, batch_size=256)
    no_hsic = {}
    times = {"ce": [], "ce+hsic": [], "epoch+dump": [], "epoch plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "activations.zarr"
        _, _, act, labels, summary = evaluate(model, val, device, sites, with_summary=True)
        store.create_store(
            path,
            activation=act,
            metrics={},
            labels=labels,
            input_summary=summary,
            input_features=INPUT_FEATURES,
            sites=[s.describe() for s in sites],
            attrs={},
            dtype="float32",
            unit_chunk=1024,
        )
        epoch = 1
        writer, pending = ThreadPoolExecutor(max_workers=1), None
        for _ in range(args.reps):
            t0 = time.perf_counter()
            train_one_epoch(model, train, opt, device, sites, cfg["hsic"], no_hsic, False, "")
            t_train = time.perf_counter() - t0
            times["ce"].append(t_train)

            t0 = time.perf_counter()
            plain_eval(model, val, device)
            times["epoch plain"].append(t_train + time.perf_counter() - t0)

            t0 = time.perf_counter()  # as the trainer does: capture, then a background append
            _, _, act, _, _ = evaluate(model, val, device, sites)
            if pending is not None:
                pending.result()
            pending = writer.submit(store.append_epoch, path, epoch, act, {}, "float32")
            epoch += 1
            times["epoch+dump"].append(t_train + time.perf_counter() - t0)

            t0 = time.perf_counter()
            train_one_epoch(model, train, opt, device, sites, cfg["hsic"], weights, False, "")
            times["ce+hsic"].append(time.perf_counter() - t0)
        pending.result()
        writer.shutdown()
    best = {k: min(v) for k, v in times.items()}
    print(f"{args.arch} width {args.width} on {args.dataset} ({device}), best of {args.reps}:")
    for k, v in best.items():
        print(f"  {k:12s} {v:.3f} s")
    print(
        f"dump cost: epoch with dump / without = {best['epoch+dump'] / best['epoch plain']:.3f} (target <= 1.05)"
    )
    print(f"HSIC cost: CE+HSIC / CE epoch = {best['ce+hsic'] / best['ce']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
