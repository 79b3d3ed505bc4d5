"""Permutation nulls: cost per permutation relative to the observed channel-label MI pass.

Paper-scale VGG-16 epoch: 4,224 channels x 3,925 samples, B = 20, K = 10, P = 20. Prints the
time of the compiled null (observed + P permutations from the bin codes), of binning once, of
the observed channel-label MI (``binned_counts`` + MI), and the ratio null / (P x observed).
Single-threaded numba, as in the analyzer's tasks.
"""

import time

import numba
import numpy as np

from analyzer.core.histogram import channel_label_mi
from analyzer.core.kernels import bin_codes
from analyzer.core.nulls import channel_null, permuted_labels


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, c, b, k, p = 3925, 4224, 20, 10, 20
    values = rng.standard_normal((n, c)).astype(np.float32)
    labels = rng.integers(0, k, n)
    perms = permuted_labels(labels, p, seed=0)
    codes, _ = bin_codes(values, b)
    channel_null(codes[:8], labels, perms, b, k)  # compile
    channel_label_mi(values[:, :8], labels, b, k)
    t_bin = best_of(lambda: bin_codes(values, b))
    t_obs = best_of(lambda: channel_label_mi(values, labels, b, k))
    t_null = best_of(lambda: channel_null(codes, labels, perms, b, k), repeat=1)
    print(f"bin codes            {t_bin:8.3f} s")
    print(f"observed MI          {t_obs:8.3f} s")
    print(f"null (P={p}) + obs    {t_null:8.3f} s  ({t_null / (p + 1):.3f} s per table pass)")
    print(f"ratio null / ((P + 1) x observed MI pass): {t_null / ((p + 1) * t_obs):.2f}")


if __name__ == "__main__":
    main()
