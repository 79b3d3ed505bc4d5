"""The analyzer on stores it did not write: trainer layout vs ``xr.to_zarr`` layouts, side by side.

One set of generated activations (VGG-16 site widths: 13 sites, 4,224 channels; ReLU values
with a class signal growing over the epochs) is written twice or more:

* ``trainer``: by ``trainer.store`` (Blosc-zstd + crc32c, chunks [1, N, 1024]): the analyzer's
  own chunk reader (``analyzer/chunk_reader.py``) decodes it;
* ``to_zarr``: the same Dataset re-saved by ``xr.Dataset.to_zarr`` with zarr's default codecs
  (``bytes`` + ``zstd``) and chunks [1, N, 1024]: read through zarr (the general path);
* ``float16`` / ``epochs4`` (with ``--layouts``): float16 values, or chunks spanning 4 epochs.

For each layout and each of two epoch counts E1 < E2 it prints the analyzer's time (a fresh
process, first run, after imports, numba cache warm), ``xr.open_zarr(store).load()`` time
(a fresh process), their ratio, and the analyzer's peak RSS (``ru_maxrss``): peak memory must
not grow with the epoch count, whatever the layout.

Default size (fits a shared 2-core machine in ~3 min): 4,224 channels x 1,000 samples,
E = 4 and 12 epochs, 1 thread, no nulls, no channel pairs (the read path is what differs).
The issue's VGG-16 figures (4,224 channels x 3,949 samples x 24 epochs, 2 threads) need a
bigger machine:

Measured on the shared 2-core machine (2026-12-05; timings noisy under other jobs' load):
3,949 samples, 8 threads (8 epochs in flight), peak RSS trainer layout 1,130 MB at 8 epochs,
1,148 at 16; to_zarr 1,141 / 1,155 (flat: per worker one segment and one chunk); ratios
0.9-1.9 for both layouts. Before this change (``--baseline`` at main d7a3767) stores with
chunks spanning epochs (``epochs4``, ``zarr_auto``) were refused as "damaged".

    python benchmarks/bench_foreign_store.py                       # small, ~3 min
    python benchmarks/bench_foreign_store.py --samples 3949 --epochs 8 24 --threads 2 \\
        --layouts trainer to_zarr float16 epochs4 zarr_auto        # paper width
    git worktree add /tmp/main main && python benchmarks/bench_foreign_store.py \\
        --baseline /tmp/main                                       # side by side with main
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VGG16 = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]  # channels per site
LAYOUTS = ("trainer", "to_zarr", "float16", "epochs4", "zarr_auto")


def epoch_values(e: int, n_epochs: int, labels: np.ndarray, n_units: int) -> np.ndarray:
    """(sample, unit) float32 ReLU values of epoch ``e`` (deterministic in e)."""
    signal = np.random.default_rng(1).normal(size=(labels.max() + 1, n_units)).astype(np.float32)
    noise = np.random.default_rng([2, e]).normal(size=(len(labels), n_units)).astype(np.float32)
    return np.maximum(noise + np.float32(e / n_epochs) * signal[labels], 0)


def write_trainer_store(path: Path, n_epochs: int, n_samples: int) -> None:
    """The trainer's own writer (``trainer.store``), as a run would leave it."""
    from trainer import store

    store.versions = lambda: {}  # library versions only: keeps torch out of this benchmark
    labels = np.random.default_rng(0).integers(0, 10, n_samples)
    n_units = sum(VGG16)
    sites = [{"name": f"conv{i}", "kind": "conv-relu", "channels": c} for i, c in enumerate(VGG16)]
    metrics = lambda e: {"val_acc": 0.1 + 0.8 * e / n_epochs, "val_loss": 1.0, "lr": 0.1}  # noqa: E731
    store.create_store(
        path,
        activation=epoch_values(0, n_epochs, labels, n_units),
        metrics=metrics(0),
        labels=labels,
        input_summary=np.random.default_rng(3).normal(size=(n_samples, 4)),
        input_features=[f"f{i}" for i in range(4)],
        sites=sites,
        attrs={"dataset": "generated", "arch": "vgg16", "activation": "relu",
               "regularizer": "none", "seed": 0, "classes": json.dumps(list("abcdefghij"))},
        dtype="float32",
        unit_chunk=1024,
    )  # fmt: skip
    for e in range(1, n_epochs):
        store.append_epoch(
            path, e, epoch_values(e, n_epochs, labels, n_units), metrics(e), "float32"
        )
    store.finalize_store(path, "complete", n_epochs)


def write_foreign_store(src: Path, path: Path, layout: str) -> None:
    """``src`` re-saved by ``xr.Dataset.to_zarr`` with zarr's default codecs (bytes + zstd):
    chunks [1, N, 1024] (``to_zarr``, ``float16``), [4, N, 1024] (``epochs4``), or, for an
    in-memory Dataset saved with no encoding, zarr's own guess (``zarr_auto``)."""
    import xarray as xr

    ds = xr.open_zarr(src)
    for var in ds.variables.values():
        var.encoding = {}
    if layout == "zarr_auto":
        ds.load().to_zarr(path, mode="w")
        return
    epochs_per_chunk = 4 if layout == "epochs4" else 1
    if layout == "float16":
        ds["activation"] = ds.activation.astype(np.float16)
    ds = ds.chunk({"epoch": epochs_per_chunk, "sample": -1, "unit": 1024})
    n = ds.sizes["sample"]
    ds.to_zarr(path, mode="w", encoding={"activation": {"chunks": (epochs_per_chunk, n, 1024)}})


ANALYZE = """
import resource, sys, time, dask
from analyzer.mi_tensors import Options, analyze
store, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
with dask.config.set(scheduler="threads", num_workers=threads):
    t0 = time.perf_counter()
    analyze(store, out, Options(bins=20, permutations=0, cc_epochs=()))
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

LOAD = """
import resource, sys, time
import xarray as xr
t0 = time.perf_counter()
xr.open_zarr(sys.argv[1]).load()
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def child(code: str, *args, cwd: Path = ROOT) -> list[float]:
    """Run ``code`` in a fresh interpreter (its own ru_maxrss) whose imports come first from
    ``cwd`` (a checkout); the numbers it prints."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return [float(x) for x in proc.stdout.split()]


def build(tmp: Path, layouts, n_epochs: int, n_samples: int) -> dict[str, Path]:
    """Every layout's store of ``n_epochs`` epochs (written in children: small parent)."""
    stores = {name: tmp / f"{name}-e{n_epochs}" / "activations.zarr" for name in layouts}
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "import bench_foreign_store as b; "
        "b.write_trainer_store(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))"
    )
    trainer = tmp / f"trainer-e{n_epochs}" / "activations.zarr"
    child(code + "; print(0)", Path(__file__).parent, trainer, n_epochs, n_samples)
    for name in layouts:
        if name != "trainer":
            code = (
                "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
                "import bench_foreign_store as b; "
                "b.write_foreign_store(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]); print(0)"
            )
            child(code, Path(__file__).parent, trainer, stores[name], name)
    return stores


def chunk_shape(store: Path) -> str:
    doc = json.loads((store / "activation" / "zarr.json").read_text())
    return "x".join(map(str, doc["chunk_grid"]["configuration"]["chunk_shape"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--epochs", type=int, nargs=2, default=[4, 12], metavar=("E1", "E2"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layouts", nargs="+", default=["trainer", "to_zarr"], choices=LAYOUTS)
    parser.add_argument("--repeats", type=int, default=1, help="analyzer runs per cell (median)")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout's analyzer, run side by side (e.g. main)"
    )
    parser.add_argument("--tmp", default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    layouts = ["trainer", *[n for n in args.layouts if n != "trainer"]]
    trees = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        stores = {e: build(tmp, layouts, e, args.samples) for e in args.epochs}
        for tree in trees.values():  # numba caches, page cache
            child(ANALYZE, stores[args.epochs[0]]["trainer"], tmp / "warm.zarr", 1, cwd=tree)
        rows = {}
        for e in args.epochs:
            for name in layouts:
                load, load_rss = child(LOAD, stores[e][name])
                for tag, tree in trees.items():
                    try:
                        runs = [
                            child(ANALYZE, stores[e][name], tmp / "mi.zarr", args.threads, cwd=tree)
                            for _ in range(args.repeats)
                        ]
                    except RuntimeError as err:  # e.g. a baseline that refuses the layout
                        print(
                            f"{name}, {e} epochs, {tag}: failed: {str(err).strip().splitlines()[-1]}"
                        )
                        runs = [(np.nan, np.nan)]
                    sec, rss = np.median(runs, axis=0)
                    rows[name, e, tag] = (sec, load, load_rss, rss)
        mb = sum(VGG16) * args.samples * 4 / 1e6
        print(
            f"VGG-16 widths: {sum(VGG16)} channels x {args.samples} samples ({mb:.0f} MB/epoch "
            f"float32), epochs {args.epochs}, {args.threads} analyzer thread(s), median of "
            f"{args.repeats}; analyzer: --permutations 0, no channel pairs; ratio = analyzer s / "
            "open_zarr().load() s (fresh processes)"
        )
        print(f"{'layout':<10}{'chunks':>16}{'analyzer':>9}{'epochs':>7}{'analyzer s':>11}"
              f"{'load s':>8}{'ratio':>7}{'peak RSS MB':>12}{'load RSS MB':>12}")  # fmt: skip
        for name in layouts:
            for e in args.epochs:
                for tag in trees:
                    sec, load, load_rss, rss = rows[name, e, tag]
                    print(
                        f"{name:<10}{chunk_shape(stores[e][name]):>16}{tag:>9}{e:>7}{sec:>11.2f}"
                        f"{load:>8.2f}{sec / load:>7.2f}{rss:>12.0f}{load_rss:>12.0f}"
                    )


if __name__ == "__main__":
    main()
