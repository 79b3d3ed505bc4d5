"""Ground-truth suite: bias and spread of each MI estimator on channels and layers with known MI.

    python -m analyzer.validate [--sizes 359 3925] [--seeds 5] [--bins 20] [--layer-dims 16 128 512]

Prints two Markdown tables of mean(estimate - truth) +- sd over seeds, per N: one channel
against the label (``tasks``: per family, K, transform, separation; every channel
estimator), and a d-dimensional layer against the label (``layer_tasks``: class means on a
random 1- or 2-dim subspace plus isotropic noise; the layer estimators: kNN and Gaussian on
the leading principal components, the probe on the whole layer). The true MI is by
quadrature (checked against Monte Carlo in tests/test_estimators_validate.py).
"""

from __future__ import annotations

import argparse

import numpy as np

from analyzer.core.gaussian import gaussian_label_mi
from analyzer.core.histogram import channel_label_mi
from analyzer.core.knn import knn_label_mi
from analyzer.core.probe import probe_label_mi
from analyzer.validate.layer_tasks import LayerTask, layer_estimates
from analyzer.validate.tasks import FAMILIES, sample, true_mi_quadrature

TASKS = [
    (family, k, sep, transform)
    for family in FAMILIES
    for k in (2, 10)
    for sep in ((0.0, 1.0) if family != "exponential" else (0.0, 0.5))
    for transform in ("identity", "tanh")
]

LAYER_TASKS = (  # (K, rank, separation, transform) for each d of --layer-dims
    (10, 1, 0.5, "identity"),
    (10, 2, 2.0, "tanh"),
)


def estimators(bins):
    return {
        f"histogram B={bins}": lambda x, y, k: channel_label_mi(x, y, bins, k)[0],
        "kNN k=3": lambda x, y, k: knn_label_mi(x, y, 3)[0],
        "Gaussian": lambda x, y, k: gaussian_label_mi(x, y)[0],
        "probe": lambda x, y, k: probe_label_mi(x, y),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[359, 3925])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--bins", type=int, default=20)
    parser.add_argument(
        "--layer-dims",
        type=int,
        nargs="*",
        default=[16, 128, 512],
        help="layer widths d of the layer tasks (none: no layer table)",
    )
    args = parser.parse_args(argv)
    channel_table(estimators(args.bins), args.sizes, args.seeds)
    if args.layer_dims:
        print()
        layer_table(args.layer_dims, args.sizes, args.seeds)


def _cells(errs):
    return [f"{np.mean(e):+.3f} ± {np.std(e):.3f}" for e in errs.values()]


def channel_table(ests, sizes, seeds):
    print("| task | N | true MI | " + " | ".join(ests) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in ests) + " |")
    for family, k, sep, transform in TASKS:
        truth = true_mi_quadrature(family, k, sep)
        for n in sizes:
            errs = {name: [] for name in ests}
            for seed in range(seeds):
                x, y = sample(family, k, sep, n, np.random.default_rng(seed), transform)
                for name, fn in ests.items():
                    errs[name].append(fn(x, y, k) - truth)
            task = f"{family} K={k} s={sep} {transform}"
            print(f"| {task} | {n} | {truth:.3f} | " + " | ".join(_cells(errs)) + " |", flush=True)


def layer_table(dims, sizes, seeds):
    header = None
    for d in dims:
        for k, rank, sep, transform in LAYER_TASKS:
            task = LayerTask(d, k, rank, sep, transform)
            truth = task.true_mi_quadrature()
            for n in sizes:
                errs = {}
                for seed in range(seeds):
                    x, y = task.sample(n, np.random.default_rng(seed))
                    for name, value in layer_estimates(x, y, seed=seed).items():
                        errs.setdefault(name, []).append(value - truth)
                if header is None:
                    header = list(errs)
                    print("| layer task | N | true MI | " + " | ".join(header) + " |")
                    print("| --- | --- | --- | " + " | ".join("---" for _ in header) + " |")
                row = f"| {task.name()} | {n} | {truth:.3f} | " + " | ".join(_cells(errs)) + " |"
                print(row, flush=True)


if __name__ == "__main__":
    main()
