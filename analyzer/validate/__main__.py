"""Ground-truth suite: bias and spread of each MI estimator on channels with known MI.

    python -m analyzer.validate [--sizes 359 3925] [--seeds 5] [--bins 20]

Prints a Markdown table: per task (family, K, transform, separation), the true MI
(quadrature) and for each estimator mean(estimate - truth) +- sd over seeds, per N.
"""

from __future__ import annotations

import argparse

import numpy as np

from analyzer.core.gaussian import gaussian_label_mi
from analyzer.core.histogram import channel_label_mi
from analyzer.core.knn import knn_label_mi
from analyzer.core.probe import probe_label_mi
from analyzer.validate.tasks import FAMILIES, sample, true_mi_quadrature

TASKS = [
    (family, k, sep, transform)
    for family in FAMILIES
    for k in (2, 10)
    for sep in ((0.0, 1.0) if family != "exponential" else (0.0, 0.5))
    for transform in ("identity", "tanh")
]


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
    args = parser.parse_args(argv)
    ests = estimators(args.bins)
    print("| task | N | true MI | " + " | ".join(ests) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in ests) + " |")
    for family, k, sep, transform in TASKS:
        truth = true_mi_quadrature(family, k, sep)
        for n in args.sizes:
            errs = {name: [] for name in ests}
            for seed in range(args.seeds):
                x, y = sample(family, k, sep, n, np.random.default_rng(seed), transform)
                for name, fn in ests.items():
                    errs[name].append(fn(x, y, k) - truth)
            cells = [f"{np.mean(e):+.3f} ± {np.std(e):.3f}" for e in errs.values()]
            task = f"{family} K={k} s={sep} {transform}"
            print(f"| {task} | {n} | {truth:.3f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
