"""Whole-analyzer cost and memory against reading the store, measured side by side in one run.

The store is built from the trainer's own output: one real epoch (plus epoch 0) of a width-1
VGG-16 (13 sites, 4,224 channels) or ResNet-50 (32 sites, 30,208 channels) on small synthetic
images, with the validation samples tiled to ``--samples`` (default 3,925) with multiplicative
jitter (ReLU zeros stay zero), and epochs cycling over the real ones with fresh jitter. For two
epoch counts E1 < E2 it prints:

* whole analyzer time / ``xr.open_zarr(store).load()`` time at E2 (target <= 3x);
* marginal per-epoch cost (t(E2) - t(E1)) / (E2 - E1) / per-epoch load (target <= 2x);
* peak RSS of the analyzer at E1 and E2 (target <= 2 GB, independent of E).

Each analyzer measurement is a fresh process (``ru_maxrss``) running the analysis twice, timed
from after its imports: the first run (``cold``) pays the process's first-use costs inside the
timing (numba's cache and target setup, xarray importing dask.array, zarr's codecs), the second
(``warm``, as when a Jupyter user reruns it) does not. The reference load is measured both
ways too: in a fresh process from after ``import xarray`` (``cold``), and repeated in this
process after a first, discarded load (``warm``). Ratios are printed cold/cold, cold analyzer
/ warm load (the strictest) and warm/warm. ``--repeats`` repeats every measurement: the
spread is printed (the machine is shared).

    python benchmarks/bench_analyzer.py --arch resnet50 [--epochs 3 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
ROOT = HERE.parent


def train_base(run_dir: Path, arch: str) -> None:
    """One real training epoch of a width-1 ``arch`` (in a child: torch stays out of this process)."""
    code = (
        "import sys; from pathlib import Path; from trainer.config import resolve_config; "
        "from trainer.train import run; "
        f"run(resolve_config(None, ['arch={arch}', 'width=1', 'dataset.name=synthetic', "
        "'dataset.image_size=32', 'dataset.n_train=64', 'dataset.n_val=128', 'train.epochs=1', "
        "'train.batch_size=32', 'train.progress=false']), Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(run_dir)], check=True, cwd=ROOT)


def make_store(base: Path, path: Path, n_epochs: int, n_samples: int, seed: int = 0) -> None:
    """Tile the base run's validation samples to n_samples with jitter; n_epochs epochs."""
    import xarray as xr

    from trainer import store

    src = xr.open_zarr(base)
    real = [
        src.activation.isel(epoch=e).values.astype(np.float32) for e in range(src.sizes["epoch"])
    ]
    n_base = real[0].shape[0]
    idx = np.arange(n_samples) % n_base
    rng = np.random.default_rng(seed)

    def jitter(x):
        return (x[idx] * np.exp(0.05 * rng.standard_normal((n_samples, x.shape[1])))).astype(
            np.float32
        )

    summary = src.input_summary.values[idx] + 0.01 * rng.standard_normal(
        (n_samples, src.sizes["input_feature"])
    )
    metrics = lambda e: {"val_acc": 0.1 + 0.8 * e / n_epochs, "val_loss": 1.0, "lr": 0.1}  # noqa: E731
    attrs = {
        k: src.attrs[k] for k in ("dataset", "arch", "activation", "regularizer", "seed", "classes")
    }
    store.create_store(
        path,
        activation=jitter(real[0]),
        metrics=metrics(0),
        labels=src.label.values[idx],
        input_summary=summary,
        input_features=[str(f) for f in src.input_feature.values],
        sites=json.loads(src.attrs["sites"]),
        attrs=attrs,
        dtype=str(src.activation.dtype),
        unit_chunk=int(src.activation.encoding["chunks"][2]),
    )
    for e in range(1, n_epochs):
        store.append_epoch(
            path, e, jitter(real[e % len(real)]), metrics(e), str(src.activation.dtype)
        )
    store.finalize_store(path, "complete", n_epochs)


CONFIGS = {  # name: (label permutations of the nulls, all-pairs channel MI at init/best/last)
    "default": (20, True),
    "no-null": (0, True),
    "no-null-no-cc": (0, False),
}

CHILD = """
import resource, shutil, sys, time, dask
from analyzer.mi_tensors import Options, analyze
store, out, threads, perms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cc = ("init", "best", "last") if sys.argv[5] == "1" else ()
seconds = []
with dask.config.set(scheduler="threads", num_workers=threads):
    for _ in range(2):  # first run: pays first-use costs; second: libraries warm
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        analyze(store, out, Options(bins=20, permutations=perms, cc_epochs=cc))
        seconds.append(time.perf_counter() - t0)
print(*seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_analyzer(store: Path, out: Path, threads: int, config: str) -> tuple[float, float, float]:
    """(seconds of a first run, seconds of a second run, peak RSS in MB) of the analyzer on a
    store, both runs in one fresh process (which clears ``out`` before each)."""
    perms, cc = CONFIGS[config]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(store), str(out), str(threads), str(perms), str(int(cc))],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    first, second, rss_kb = proc.stdout.split()
    return float(first), float(second), float(rss_kb) / 1024


LOAD_CHILD = """
import sys, time
import xarray as xr
t0 = time.perf_counter()
xr.open_zarr(sys.argv[1]).load()
print(time.perf_counter() - t0)
"""


def load_time(store: Path) -> float:
    """Warm: in this process (its first call pays first-use costs and is discarded by the caller)."""
    import xarray as xr

    t0 = time.perf_counter()
    xr.open_zarr(store).load()
    return time.perf_counter() - t0


def cold_load_time(store: Path) -> float:
    """``xr.open_zarr(store).load()`` in a fresh process, timed from after ``import xarray``."""
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_CHILD, str(store)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return float(proc.stdout.split()[-1])


def spread(values: list[float]) -> str:
    return f"{np.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=["vgg16", "resnet50"], default="vgg16")
    parser.add_argument("--samples", type=int, default=3925)
    parser.add_argument("--epochs", type=int, nargs=2, default=[3, 6], metavar=("E1", "E2"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(CONFIGS),
        choices=list(CONFIGS),
        help="analyzer settings: default (20-permutation nulls, channel pairs of the last layer "
        "at init/best/last), no-null (--permutations 0), no-null-no-cc (also no channel pairs)",
    )
    parser.add_argument("--tmp", default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    e1, e2 = args.epochs
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        train_base(tmp / "base", args.arch)
        base = tmp / "base" / "activations.zarr"
        stores = {}
        for n in (e1, e2):  # in children: a large parent would inflate the children's ru_maxrss
            stores[n] = tmp / f"e{n}" / "activations.zarr"
            code = (
                "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[4]); "
                "from bench_analyzer import make_store; "
                "make_store(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5]))"
            )
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    code,
                    str(base),
                    str(stores[n]),
                    str(n),
                    str(HERE),
                    str(args.samples),
                ],
                check=True,
                cwd=ROOT,
            )
        run_analyzer(stores[e1], tmp / "warm.zarr", args.threads, "no-null")  # numba cache
        t = {(c, n): [] for c in args.configs for n in (e1, e2)}
        t_warm = {(c, n): [] for c in args.configs for n in (e1, e2)}
        rss = {(c, n): [] for c in args.configs for n in (e1, e2)}
        cold = {e1: [], e2: []}
        for _ in range(args.repeats):
            for n in (e1, e2):
                cold[n].append(cold_load_time(stores[n]))  # interleaved with the analyzer runs
                for c in args.configs:
                    sec, warm, r = run_analyzer(stores[n], tmp / f"mi{n}.zarr", args.threads, c)
                    t[c, n].append(sec)
                    t_warm[c, n].append(warm)
                    rss[c, n].append(r)
        loads = {e1: [], e2: []}
        for _ in range(args.repeats + 1):
            for n in (e1, e2):
                loads[n].append(load_time(stores[n]))
        for n in (e1, e2):
            loads[n] = loads[n][1:]  # the first load pays zarr's first-use costs
        import xarray as xr

        sites = json.loads(xr.open_zarr(base).attrs["sites"])
        n_units = sum(site["channels"] for site in sites)
        mb = n_units * args.samples * 4 / 1e6
        print(
            f"store: {args.arch} width 1 from the trainer's output, {len(sites)} sites, {n_units} "
            f"units x {args.samples} samples ({mb:.0f} MB/epoch float32); threads {args.threads}; "
            f"{args.repeats} repeats: median (min, max)"
        )
        for name, ref in (("cold", cold), ("warm", loads)):
            print(
                f"open_zarr().load(), {name}: {e1} epochs {spread(ref[e1])} s; {e2} epochs "
                f"{spread(ref[e2])} s"
            )
        for c in args.configs:
            for name, runs in (("first run (cold)", t), ("second run (warm)", t_warm)):
                print(
                    f"[{c}] analyzer, {name}: {e1} epochs {spread(runs[c, e1])} s; {e2} epochs "
                    f"{spread(runs[c, e2])} s"
                )
            # analyzer run vs load: both cold, cold analyzer vs warm load, both warm
            for a_name, runs, l_name, ref in (
                ("cold", t, "cold", cold),
                ("cold", t, "warm", loads),
                ("warm", t_warm, "warm", loads),
            ):
                whole = [a / b for a, b in zip(runs[c, e2], ref[e2], strict=True)]
                # per-epoch load: the difference of the two loads (first-use costs cancel)
                per_epoch = (np.median(ref[e2]) - np.median(ref[e1])) / (e2 - e1)
                marg = [
                    ((a2 - a1) / (e2 - e1)) / per_epoch
                    for a1, a2 in zip(runs[c, e1], runs[c, e2], strict=True)
                ]
                print(
                    f"[{c}] {a_name} analyzer vs {l_name} load: whole analyzer / load at {e2} "
                    f"epochs {spread(whole)} x (target <= 3); marginal per-epoch cost / per-epoch "
                    f"load {spread(marg)} x (target <= 2)"
                )
            print(
                f"[{c}] peak RSS: {e1} epochs {spread(rss[c, e1])} MB, {e2} epochs "
                f"{spread(rss[c, e2])} MB (target <= 2048, independent of the epoch count)"
            )


if __name__ == "__main__":
    main()
