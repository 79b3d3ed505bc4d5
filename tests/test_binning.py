"""Binning rules of the robustness sweep against brute-force references."""

import numpy as np
import pytest

from analyzer.core.binning import codes_for, fixed_codes, quantile_codes, subsample


def brute_quantile(col, b):
    srt = sorted(col)
    n = len(col)
    edges = [srt[min(n - 1, (i * n) // b)] for i in range(1, b)]
    return [sum(1 for e in edges if e <= x) for x in col]


@pytest.mark.parametrize("n, b", [(100, 10), (37, 5), (359, 20), (10, 20)])
def test_quantile_rule_matches_brute_force(n, b):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[:, 2] = np.round(x[:, 2])  # heavy ties
    x[:, 3] = 1.5  # constant
    codes = quantile_codes(x, b)
    for j in range(4):
        assert codes[j].tolist() == brute_quantile(x[:, j].astype(np.float64), b)
    assert (codes[3] == codes[3][0]).all()


def test_quantile_bins_are_equally_filled_without_ties():
    x = np.random.default_rng(0).permutation(200).astype(np.float64)[:, None]
    assert np.array_equal(np.bincount(quantile_codes(x, 10)[0]), np.full(10, 20))


def test_fixed_and_range_rules():
    x = np.array([[-2.0, 0.0], [0.0, 1.0], [0.5, 2.0], [3.0, 4.0]])
    codes = fixed_codes(x, 4, lo=-1.0, hi=1.0)
    assert codes[0].tolist() == [0, 2, 3, 3]  # clipped below and above
    per_channel = fixed_codes(x, 2, lo=[0.0, 0.0], hi=[1.0, 4.0])
    assert per_channel[1].tolist() == [0, 0, 1, 1]
    rng_codes, finite = codes_for(x, 4, "range")
    assert finite.all() and rng_codes[1].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="needs bounds"):
        codes_for(x, 4, "fixed")
    with pytest.raises(ValueError, match="binning rule 'x'"):
        codes_for(x, 4, "x")


def test_subsample_is_seeded_and_stratified():
    labels = np.repeat(np.arange(4), 25)
    a = subsample(labels, 0.5, seed=1)
    assert np.array_equal(a, subsample(labels, 0.5, seed=1))
    assert not np.array_equal(a, subsample(labels, 0.5, seed=2))
    assert np.array_equal(np.bincount(labels[a]), [12, 12, 12, 12]) or np.array_equal(
        np.bincount(labels[a]), [13, 13, 13, 13]
    )
    assert len(subsample(labels, 1.0, seed=0)) == 100
