"""Whole-analyzer cost and memory, measured side by side in one run.

* time of ``analyze`` on a store against ``xr.open_zarr(store).load()`` (target <= 3x);
* peak resident memory of the analyzer at 40 epochs against 10 (target <= 1.2).

The stores are written with the trainer's own writer (VGG-16 layout: 13 sites, 4,224
channels) from generated ReLU-like values, so no training is needed.

    python benchmarks/bench_analyzer.py [--samples 1000] [--threads 2]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

VGG_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]


def make_store(path: Path, n_epochs: int, n_samples: int, seed: int = 0) -> None:
    from trainer import store

    sites = [
        {"name": f"conv{i + 1}", "kind": "conv-relu", "channels": c}
        for i, c in enumerate(VGG_WIDTHS)
    ]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n_samples)
    units = sum(VGG_WIDTHS)
    signal = rng.normal(size=(10, units)).astype(np.float32)

    def epoch_values(e):
        noise = rng.normal(size=(n_samples, units)).astype(np.float32)
        return np.maximum(noise + (e / n_epochs) * signal[labels], 0)

    metrics = lambda e: {"val_acc": 0.1 + 0.8 * e / n_epochs, "val_loss": 1.0, "lr": 0.1}  # noqa: E731
    store.create_store(
        path,
        activation=epoch_values(0),
        metrics=metrics(0),
        labels=labels,
        input_summary=rng.normal(size=(n_samples, 22)),
        input_features=[f"f{i}" for i in range(22)],
        sites=sites,
        attrs={
            "dataset": "generated",
            "arch": "vgg16",
            "activation": "relu",
            "regularizer": "none",
            "seed": 0,
            "classes": json.dumps([str(k) for k in range(10)]),
        },
        dtype="float32",
        unit_chunk=1024,
    )
    for e in range(1, n_epochs):
        store.append_epoch(path, e, epoch_values(e), metrics(e), "float32")
    store.finalize_store(path, "complete", n_epochs)


CHILD = """
import resource, sys, time, dask
from analyzer.mi_tensors import Options, analyze
store, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
with dask.config.set(scheduler="threads", num_workers=threads):
    t0 = time.perf_counter()
    analyze(store, out, Options(bins=20))
    print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_analyzer(store: Path, out: Path, threads: int) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of the analyzer on a store, in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(store), str(out), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, rss_kb = proc.stdout.split()
    return float(seconds), float(rss_kb) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in (10, 40):  # in a child process: a large parent would inflate the children's
            # ru_maxrss, which counts the forked image before exec
            code = (
                f"from bench_analyzer import make_store; from pathlib import Path; "
                f"make_store(Path({str(tmp / f'e{n}' / 'activations.zarr')!r}), {n}, {args.samples})"
            )
            subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)
        store10 = tmp / "e10" / "activations.zarr"
        run_analyzer(store10, tmp / "warm.zarr", args.threads)  # numba cache warm-up
        t_an, rss10 = run_analyzer(store10, tmp / "mi10.zarr", args.threads)
        t_an40, rss40 = run_analyzer(
            tmp / "e40" / "activations.zarr", tmp / "mi40.zarr", args.threads
        )
        # the load is timed after the children: a parent holding the loaded store would
        # inflate their ru_maxrss; the first load also pays zarr's first-use costs
        t_load = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            xr.open_zarr(store10).load()
            t_load = min(t_load, time.perf_counter() - t0)
        mb = sum(VGG_WIDTHS) * args.samples * 4 / 1e6
        print(
            f"store: VGG-16 layout, 4224 channels x {args.samples} samples ({mb:.0f} MB/epoch float32)"
        )
        print(
            f"analyzer, 10 epochs: {t_an:.2f} s; xr.open_zarr(store).load(): {t_load:.2f} s "
            f"-> ratio {t_an / t_load:.2f}x (target <= 3x)"
        )
        print(f"analyzer, 40 epochs: {t_an40:.2f} s ({t_an40 / t_an:.2f}x the 10-epoch time)")
        print(
            f"peak RSS: 10 epochs {rss10:.0f} MB, 40 epochs {rss40:.0f} MB -> ratio {rss40 / rss10:.2f} "
            "(target <= 1.2)"
        )


if __name__ == "__main__":
    main()
