"""Per-epoch cost of each MI estimator at VGG-16 width, as a ratio to the histogram pass.

VGG-16's 13 sites (4,224 channels) x 3,925 samples float32, 10 classes, B = 20, measured
side by side in one run: the per-channel rows alternate with the histogram pass, round after
round (--repeat rounds, best of each), so a load spike on a shared machine hits both.
"histogram pass" = the analyzer's fused pass (bin + count every channel) plus the plug-in
channel MIs from its counts. Three kinds of channel: "ReLU" (class-shifted Gaussians through
a ReLU: about half the values are exactly 0, a tie group), "dense" (the same before the
ReLU: no ties) and "skewed" (exp of the dense values: lognormal, crowded where the sort's
value buckets are of equal width in value). Targets (issue 22): kNN per channel <= 5x,
probe <= 10x.

    PYTHONPATH=. NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_estimators.py [--cpu-time]
"""

import argparse
import time

import numpy as np

from analyzer.core.fused import channel_mi, fused_pass
from analyzer.core.gaussian import gaussian_label_mi, gaussian_layer_mi
from analyzer.core.kernels import xlogx_table
from analyzer.core.knn import knn_label_mi, knn_layer_mi
from analyzer.core.pca import layer_scores, subsample
from analyzer.core.probe import probe_label_mi

VGG16_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


CLOCK = time.perf_counter  # --cpu-time: time.process_time


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3925)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--pcs", type=int, default=4, help="projection dimension of the layer estimators"
    )
    parser.add_argument(
        "--probe-layers", type=int, default=13, help="layers probed (the deepest ones)"
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time by this process's CPU time, not wall time: robust to other load on a shared"
        " machine, and the same measure for single-threaded runs (NUMBA_NUM_THREADS=1)",
    )
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    rng = np.random.default_rng(0)
    n, k, bins = args.samples, 10, 20
    y = rng.integers(0, k, n)
    c = sum(VGG16_WIDTHS)
    dense = (rng.normal(size=(n, c)) + 0.3 * rng.normal(size=(k, c))[y]).astype(np.float32)
    x = np.maximum(dense, 0)  # ReLU channels: the same values, negatives tied at 0
    skewed = np.exp(dense)  # lognormal channels
    summary = np.zeros(n, dtype=np.int64)
    xlogx = xlogx_table(n)
    edges = np.cumsum((0,) + VGG16_WIDTHS)
    rows = subsample(n, 0)
    layers = [x[:, a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def histogram_of(values):
        """The histogram pass over values (sample, channel), as a callable."""

        def histogram():
            f = fused_pass(values, y, k, summary, 1, bins)
            channel_mi(f.label_counts, f.summary_counts, xlogx)

        return histogram

    histogram, histogram_dense, histogram_skewed = map(histogram_of, (x, dense, skewed))

    def projections():
        out = []
        for v in layers:
            v64 = v.astype(np.float64)
            out.append(layer_scores(v, v64.mean(0), v64.std(0), args.pcs, rows, 0))
        return out

    histogram(), histogram_dense(), knn_label_mi(x[:50, :8], y[:50])  # compile
    alternating = {
        "histogram pass, ReLU channels (fused + channel MI)": histogram,
        "kNN per channel (k=3), ReLU channels": lambda: knn_label_mi(x, y, 3),
        "histogram pass, dense channels": histogram_dense,
        "kNN per channel (k=3), dense channels": lambda: knn_label_mi(dense, y, 3),
        "histogram pass, skewed channels": histogram_skewed,
        "kNN per channel (k=3), skewed channels": lambda: knn_label_mi(skewed, y, 3),
        "Gaussian per channel, ReLU channels": lambda: gaussian_label_mi(x, y),
    }
    best = dict.fromkeys(alternating, float("inf"))
    for _ in range(args.repeat):
        for name, fn in alternating.items():
            best[name] = min(best[name], best_of(fn, 1))
    proj = projections()
    rows = list(best.items()) + [
        (f"layer projections ({args.pcs} PCs, the analyzer's rule) x 13", best_of(projections, 1)),
        (
            f"kNN layer ({args.pcs} PCs, max-norm KD-tree) x 13",
            best_of(lambda: [knn_layer_mi(p, y) for p in proj], 1),
        ),
        (
            f"Gaussian layer ({args.pcs} PCs, Ledoit-Wolf) x 13",
            best_of(lambda: [gaussian_layer_mi(p, y) for p in proj], 1),
        ),
    ]
    deep = layers[-args.probe_layers :]
    rows.append(
        (
            f"probe on GAP vectors, {len(deep)} layer(s) of width {deep[0].shape[1]}",
            best_of(lambda: [probe_label_mi(v, y) for v in deep], 1),
        )
    )
    base = rows[0][1]
    clock = "CPU time" if args.cpu_time else "wall time"
    print(
        f"VGG-16 width: {c} channels x {n} samples, K={k}, B={bins}; best of {args.repeat}"
        f" alternating rounds, {clock}; ratios to the histogram pass on ReLU channels"
    )
    for name, t in rows:
        print(f"  {name:<58} {t * 1e3:9.1f} ms  {t / base:7.1f}x")
    for kind in ("dense", "skewed"):
        ratio = (
            best[f"kNN per channel (k=3), {kind} channels"]
            / best[f"histogram pass, {kind} channels"]
        )
        print(f"  kNN per channel on {kind} channels / histogram pass on them: {ratio:.1f}x")
    print("targets: kNN per channel <= 5x, probe <= 10x the histogram pass")


if __name__ == "__main__":
    main()
