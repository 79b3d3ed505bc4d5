"""All-pairs channel MI: bit-identical to the previous kernel, sklearn, pieces and threads."""

import numba as nb
import numpy as np
from sklearn.metrics import mutual_info_score

from analyzer.core import all_pairs
from analyzer.core.kernels import xlogx_table


@nb.njit
def _previous_kernel(codes, n_bins, xlogx):
    """The kernel this module replaced (one full pass over the samples per pair)."""
    c_total, n = codes.shape
    out = np.empty((c_total, c_total))
    marginal = np.zeros(c_total)
    for i in range(c_total):
        h = np.zeros(n_bins, dtype=np.int32)
        for t in range(n):
            h[codes[i, t]] += 1
        s = 0.0
        for k in range(n_bins):
            s += xlogx[h[k]]
        marginal[i] = s
    for i in range(c_total):
        joint = np.zeros(n_bins * n_bins, dtype=np.int32)
        for j in range(i, c_total):
            for t in range(n):
                joint[codes[i, t] * n_bins + codes[j, t]] += 1
            s = 0.0
            for k in range(n_bins * n_bins):
                s += xlogx[joint[k]]
                joint[k] = 0
            v = (s - marginal[i] - marginal[j]) / n + np.log(n)
            out[i, j] = v
            out[j, i] = v
    return out


def _codes(seed=0, c=23, n=500, b=9):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, b, (c, n)).astype(np.uint8)
    codes[0] = np.where(rng.random(n) < 0.9, 0, codes[0])  # ReLU-like: one dominant bin
    codes[1] = np.where(rng.random(n) < 0.6, 3, codes[1])
    codes[2] = 5  # constant
    codes[3, : n // 2], codes[3, n // 2 :] = 2, 7  # two bins tied for the largest
    codes[4] = codes[0]  # a copy
    codes[5] = np.minimum(rng.exponential(1.0, n) * 2, b - 1).astype(np.uint8)
    return codes, b, xlogx_table(n)


def test_all_pairs_is_bit_identical_to_the_previous_kernel_and_matches_sklearn():
    codes, b, xlogx = _codes()
    got = all_pairs.all_pairs_mi(codes, b, xlogx)
    assert np.array_equal(got, _previous_kernel(codes, b, xlogx))
    for i in range(0, len(codes), 3):
        for j in range(len(codes)):
            assert abs(got[i, j] - mutual_info_score(codes[i], codes[j])) < 1e-12


def test_pieces_and_threads_do_not_change_the_pairs():
    codes, b, xlogx = _codes(seed=1, c=31)
    whole = all_pairs.all_pairs_mi(codes, b, xlogx)
    prep = all_pairs.prepare(codes, b, xlogx)
    for n_pieces in (2, 3, 5):
        out = np.full_like(whole, np.nan)
        pieces = [all_pairs.positions(len(codes), r, n_pieces) for r in range(n_pieces)]
        assert sorted(np.concatenate(pieces)) == list(range(len(codes)))
        for pos in pieces:
            all_pairs.fill(out, prep, pos, all_pairs.piece_values(codes, prep, pos, b, xlogx))
        assert np.array_equal(out, whole)
    previous = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        assert np.array_equal(all_pairs.all_pairs_mi(codes, b, xlogx), whole)
    finally:
        nb.set_num_threads(previous)
