"""The fused pass against the separate estimators, sklearn and the binning rules."""

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from analyzer.core import binning, pca
from analyzer.core import histogram as est
from analyzer.core.fused import Binning, channel_mi, fused_pass
from analyzer.core.kernels import bin_codes, xlogx_table


def _data(seed=0, n=500, c=45):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.normal(size=(n, c)).astype(np.float32) + y[:, None] * 0.3
    x[:, 3] = np.round(x[:, 3])  # heavy ties
    x[:, 5] = np.maximum(x[:, 5], 0)  # ReLU-like: many zeros
    x[:, 7] = 2.5  # constant
    x[11, 9] = np.nan  # NaN channel
    x[4, 20] = np.inf  # Inf channel
    s = rng.integers(0, 20, n)
    return x, y, s


def test_fused_counts_equal_the_separate_estimators_and_sklearn():
    x, y, s = _data()
    f = fused_pass(x, y, 10, s, 20, 20)
    codes, finite = bin_codes(x, 20)
    assert (f.finite == finite).all() and finite.sum() == x.shape[1] - 2
    assert (f.codes[finite] == codes[finite]).all()
    fin, counts = est.channel_counts(x, y, 20, 10)
    assert (f.label_counts[finite] == counts[finite]).all()
    _, s_counts = est.channel_counts(x, s, 20, 20)
    assert (f.summary_counts[finite] == s_counts[finite]).all()
    label, entropy, indicator, summary = channel_mi(
        f.label_counts, f.summary_counts, xlogx_table(len(y))
    )
    for c in np.flatnonzero(finite):
        assert label[c] == pytest.approx(mutual_info_score(y, f.codes[c]), abs=1e-12)
        assert summary[c] == pytest.approx(mutual_info_score(s, f.codes[c]), abs=1e-12)
        assert entropy[c] == pytest.approx(mutual_info_score(f.codes[c], f.codes[c]), abs=1e-12)
        assert indicator[c, 3] == pytest.approx(mutual_info_score(y == 3, f.codes[c]), abs=1e-12)
    assert label[7] == 0 and entropy[7] == 0  # constant channel: one bin
    np.testing.assert_allclose(f.mean[finite], x[:, finite].astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(f.sd[finite], x[:, finite].astype(np.float64).std(0), rtol=1e-9)


def test_fused_thread_count_does_not_change_results():
    import numba

    x, y, s = _data(1, c=70)
    ref = fused_pass(x, y, 10, s, 20, 12)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = fused_pass(x, y, 10, s, 20, 12)
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(vars(ref).values(), vars(one).values(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rule", ["quantile", "fixed"])
def test_fused_binning_rules_equal_analyzer_binning(rule):
    x, y, s = _data(2)
    lo, hi = np.full(x.shape[1], -1.0), np.linspace(0.5, 3, x.shape[1])
    bounds = (lo, hi) if rule == "fixed" else None
    ref, finite = binning.codes_for(x, 10, rule, bounds)
    rule_obj = Binning(rule, lo, hi) if rule == "fixed" else Binning(rule)
    f = fused_pass(x, y, 10, s, 20, 10, rule_obj)
    assert (f.codes[finite] == ref[finite]).all()
    for c in np.flatnonzero(finite)[:5]:
        assert (
            np.bincount(f.codes[c] * 10 + y, minlength=100).reshape(10, 10) == f.label_counts[c]
        ).all()
    with pytest.raises(ValueError, match="needs bounds"):
        Binning("fixed")


def test_fused_pass_refuses_bad_labels():
    x, y, s = _data(3)
    with pytest.raises(ValueError, match="labels"):
        fused_pass(x, y, 5, s, 20, 10)


def test_subsampled_randomized_pca_matches_the_exact_one():
    rng = np.random.default_rng(4)
    n, c = 3000, 300
    latent = rng.normal(size=(n, 2)) * [6.0, 3.0]
    mixing = rng.normal(size=(2, c))
    x = (latent @ mixing + rng.normal(size=(n, c)) + 5).astype(np.float32)
    mean, sd = x.astype(np.float64).mean(0), x.astype(np.float64).std(0)
    got = pca.layer_scores(x, mean, sd, 2, pca.subsample(n, 0), seed=0)
    ref = pca.exact_scores(x, 2)
    for k in range(2):
        corr = abs(np.corrcoef(got[:, k], ref[:, k])[0, 1])
        assert corr > 0.99, (k, corr)
    y = (latent[:, 0] > 0).astype(int) + 2 * (latent[:, 1] > 0)
    mi_got = est.discrete_mi(est.joint_codes(got, 10), y)
    mi_ref = est.discrete_mi(est.joint_codes(ref, 10), y)
    assert mi_got == pytest.approx(mi_ref, rel=0.05)  # binning of a slightly rotated plane
    # narrow layers and full subsamples: the exact rule
    narrow = x[:, :20]
    got = pca.layer_scores(narrow, mean[:20], sd[:20], 2, np.arange(n))
    ref = pca.exact_scores(narrow, 2)
    np.testing.assert_allclose(np.abs(got), np.abs(ref), rtol=1e-3, atol=1e-3)
