"""kNN (Ross) per-channel MI against scikit-learn's own estimator on the same data."""

import numpy as np
import pytest
from sklearn.feature_selection import _mutual_info as sk_mi
from sklearn.feature_selection import mutual_info_classif

from analyzer.core.knn import knn_label_mi


def _case(rng, n, n_classes, kind):
    y = rng.integers(0, n_classes, n)
    x = rng.normal(size=(n, 5)) + 0.7 * y[:, None] * rng.random(5)
    if kind == "relu":  # ties at zero
        x = np.maximum(x - 0.5, 0)
    elif kind == "ties":
        x = np.round(x, 1)
    return x, y


@pytest.mark.parametrize("kind", ["normal", "relu", "ties"])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_equals_sklearn_compute_mi_cd_where_no_kth_distance_is_zero(kind, k):
    """Same estimator, same data (no noise): equal to rounding, before sklearn's clip, on
    every channel where no sample's k-th same-class neighbour is tied with it (there the
    tie rule departs from scikit-learn; see test_ties_follow_the_mixture_rule)."""
    rng = np.random.default_rng(k)
    for n, n_classes in [(40, 2), (359, 10), (500, 3)]:
        x, y = _case(rng, n, n_classes, kind)
        y[0] = n_classes + 5  # a singleton class: left out by both
        ours = knn_label_mi(x, y, k=k)
        ref = np.array([sk_mi._compute_mi_cd(x[:, j], y, k) for j in range(x.shape[1])])
        free = np.array([not _has_zero_kth(x[:, j], y, k) for j in range(x.shape[1])])
        np.testing.assert_allclose(np.maximum(ours, 0)[free], ref[free], atol=1e-9)
        brute = np.array([_brute_force_ross(x[:, j], y, k) for j in range(x.shape[1])])
        np.testing.assert_allclose(ours, brute, atol=1e-9)
        if kind == "normal":
            assert free.all()


def _has_zero_kth(v, y, k):
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if idx.size > 1:
            kk = min(k, idx.size - 1)
            if any(np.sort(np.abs(v[idx] - v[i]))[kk] == 0 for i in idx):
                return True
    return False


def test_close_to_mutual_info_classif_without_ties():
    """The public API adds 1e-10-scale noise and rescales: differs by < 1e-6 on tie-free data."""
    rng = np.random.default_rng(0)
    x, y = _case(rng, 1000, 4, "normal")
    ref = mutual_info_classif(x, y, n_neighbors=3, random_state=0)
    np.testing.assert_allclose(np.maximum(knn_label_mi(x, y, k=3), 0), ref, atol=1e-6)


def test_float32_input_and_nan_channel():
    rng = np.random.default_rng(1)
    x, y = _case(rng, 200, 3, "normal")
    x32 = x.astype(np.float32)
    x32[5, 2] = np.nan
    ours = knn_label_mi(x32, y)
    ref = knn_label_mi(x32.astype(np.float64)[:, [0, 1, 3, 4]], y)
    assert np.isnan(ours[2]) and np.isfinite(ours[[0, 1, 3, 4]]).all()
    np.testing.assert_array_equal(ours[[0, 1, 3, 4]], ref)


def test_gaussian_classes_near_truth_and_independent_near_zero():
    """Two unit Gaussians at +-1 (MI by quadrature) and an independent label (MI 0)."""
    from scipy import integrate
    from scipy.stats import norm

    def integrand(t):
        p0, p1 = norm.pdf(t, -1), norm.pdf(t, 1)
        m = 0.5 * (p0 + p1)
        return 0.5 * (p0 * np.log(p0 / m) + p1 * np.log(p1 / m))

    truth = integrate.quad(integrand, -12, 12, epsabs=1e-12)[0]
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 20000)
    x = np.stack([rng.normal(2.0 * y - 1.0), rng.normal(size=y.size)], axis=1)
    mi = knn_label_mi(x, y, k=3)
    assert abs(mi[0] - truth) < 0.02
    assert abs(mi[1]) < 0.01


def test_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        knn_label_mi(np.zeros((4, 1)), np.array([0, 0, 1, 1]), k=0)


def _brute_force_ross(v, y, k):
    """The definition, O(N^2): I = psi(N) + <psi(k_i)> - <psi(N_y)> - <psi(m_i)>, with the
    tie rule (k-th distance 0: k_i = the same-class tie group, itself included)."""
    from scipy.special import digamma

    labels, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, labels[counts > 1])  # singleton classes are left out
    v, y = v[keep], y[keep]
    total = 0.0
    for label in np.unique(y):
        idx = np.where(y == label)[0]
        kk = min(k, idx.size - 1)
        for i in idx:
            d = np.sort(np.abs(v[idx] - v[i]))[kk]  # [0] is the sample itself
            m = (np.abs(v - v[i]) <= np.nextafter(d, 0)).sum()
            k_i = kk if d > 0 else (v[idx] == v[i]).sum()
            total += digamma(k_i) - digamma(idx.size) - digamma(m)
    return digamma(v.size) + total / v.size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sort_and_count_paths(dtype):
    """Heavy ties, tiny classes, skewed (bucket overflow -> radix) and negative values:
    every sort and count path of the kernel against the O(N^2) definition (exact) and
    _compute_mi_cd. scikit-learn's KD-tree compares squared distances, so in float64 a
    neighbour at exactly the k-th distance can be counted after rounding (one m_i off:
    a difference <= 1/N nats); float32 data have exact float64 differences and agree."""
    rng = np.random.default_rng(7)
    n = 300
    y = rng.integers(0, 12, n)
    y[:3] = 20  # a class of 3
    y[3] = 30  # a singleton
    cols = [
        np.round(rng.normal(size=n), 1),  # many tie groups
        np.maximum(rng.normal(size=n) + 0.4 * y, 0),  # ReLU zeros
        np.exp(3 * rng.normal(size=n)),  # heavy tail: overfull buckets
        -np.abs(rng.standard_cauchy(n)),  # negative, wide range
        np.where(rng.random(n) < 0.5, 1.0, rng.normal(size=n)),  # ties at the max
        rng.normal(size=n) * 1e-30 + 1.0,  # nearly constant
        np.where(rng.random(n) < 0.4, 0.0, 2.0),  # two values: the rest is one tie group
        1e6 + 1e-6 * rng.random(n),  # buckets narrower than the values' rounding (float64)
        np.exp(rng.normal(size=n)),  # skewed (lognormal)
        1e6 + 1e-8 * rng.random(n),  # buckets narrower than half a rounding step (float64)
    ]
    x = np.stack(cols, axis=1).astype(dtype)
    xd = x.astype(np.float64)
    for k in (1, 3, 5):
        ours = knn_label_mi(x, y, k=k)
        brute = np.array([_brute_force_ross(xd[:, j], y, k) for j in range(x.shape[1])])
        np.testing.assert_allclose(ours, brute, atol=1e-9)
        ref = np.array([sk_mi._compute_mi_cd(xd[:, j], y, k) for j in range(x.shape[1])])
        free = np.array([not _has_zero_kth(xd[:, j], y, k) for j in range(x.shape[1])])
        free[-1] = False  # below one rounding step: squared distances cannot resolve it
        tol = 1e-9 if dtype == np.float32 else 1.0 / n + 1e-9
        np.testing.assert_allclose(np.maximum(ours, 0)[free], ref[free], atol=tol)


def test_layer_knn_in_one_dimension_equals_channel_knn_and_finds_2d_signal():
    from analyzer.core.knn import knn_layer_mi

    rng = np.random.default_rng(11)
    y = rng.integers(0, 4, 500)
    x = rng.normal(size=500) + 0.6 * y
    assert np.isclose(knn_layer_mi(x[:, None], y, 3), knn_label_mi(x[:, None], y, 3)[0])
    # the label lives in the angle of a 2-D point: no single coordinate carries all of it
    angle = y * np.pi / 2 + 0.2 * rng.normal(size=500)
    t = np.stack([np.cos(angle), np.sin(angle)], axis=1) + 0.05 * rng.normal(size=(500, 2))
    both = knn_layer_mi(t, y, 3)
    assert both > knn_label_mi(t, y, 3).max() + 0.3
    assert both <= np.log(4) + 0.05
    assert abs(knn_layer_mi(rng.normal(size=(500, 3)), y, 3)) < 0.05


def test_ties_follow_the_mixture_rule():
    """A ReLU channel (half zeros) against an independent label is ~0 (scikit-learn's
    _compute_mi_cd, which keeps k_i = k on ties, is far below 0 before its clip); a purely
    discrete channel gives the plug-in MI up to O(1/count) digamma-vs-log terms."""
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(3)
    n = 3925
    y = rng.integers(0, 10, n)
    x = np.maximum(rng.normal(size=(n, 8)), 0)
    mi = knn_label_mi(x, y, 3)  # sd ~0.008 per channel at this N, K (README table)
    assert abs(mi.mean()) < 0.01 and np.abs(mi).max() < 0.04
    assert sk_mi._compute_mi_cd(x[:, 0], y, 3) == 0.0  # clipped: its raw value is ~ -2
    # a discrete channel whose law depends on the label
    levels = (rng.random(n) < 0.05 + 0.1 * y).astype(int) + (rng.random(n) < 0.5)
    got = knn_label_mi(levels[:, None].astype(float), y, 3)[0]
    assert abs(got - mutual_info_score(levels, y)) < 0.01
    assert mutual_info_score(levels, y) > 0.05  # the check has teeth


@pytest.mark.parametrize("n_classes", [2, 10, 60])
def test_random_columns_equal_the_definition(n_classes):
    """Every count path of the kernel (short brackets walked, long ones binary-searched:
    many classes; ties at the k-th distance: rounded values; float64 rounding of the
    differences) against the O(N^2) definition, column by column."""
    rng = np.random.default_rng(n_classes)
    n = 400
    for trial in range(6):
        y = rng.integers(0, n_classes, n)
        base = rng.normal(size=(n, 4)) + 0.5 * rng.normal(size=(n_classes, 4))[y]
        x = np.stack(
            [
                base[:, 0],
                np.round(base[:, 1], 1),
                np.maximum(base[:, 2], 0),
                base[:, 3] * 10.0 ** rng.integers(-20, 20, n),  # wide range: rounding
            ],
            axis=1,
        )
        for k in (1, 3, 6):
            ours = knn_label_mi(x, y, k=k)
            brute = np.array([_brute_force_ross(x[:, j], y, k) for j in range(x.shape[1])])
            np.testing.assert_allclose(ours, brute, atol=1e-9, err_msg=f"trial {trial}, k {k}")


def test_channel_blocks_give_the_single_channel_values():
    """Channels are transposed and sorted in blocks of 16: 41 columns (a partial block, a
    NaN channel) give each column's value computed alone."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, 300)
    x = np.maximum(rng.normal(size=(300, 41)) + 0.3 * y[:, None], 0).astype(np.float32)
    x[7, 20] = np.inf
    ours = knn_label_mi(x, y, 3)
    alone = np.array([knn_label_mi(x[:, [j]], y, 3)[0] for j in range(41)])
    np.testing.assert_array_equal(ours, alone)
    assert np.isnan(ours[20]) and np.isfinite(np.delete(ours, 20)).all()


def _bucket_ends(v, low, scale, binary, n_buckets):
    """Where each value bucket of the sorted v ends, from the maps' definitions in numpy:
    int((x - low) * scale) (linear) or int((bits(x) - bits(low)) * scale) (binary)."""
    offset = v.view(np.int64) - np.float64(low).view(np.int64) if binary else v - low
    bucket = np.minimum(offset * scale, n_buckets - 1).astype(np.int64)
    return np.searchsorted(bucket, np.arange(n_buckets), "right")


@pytest.mark.parametrize("bucket_type", [np.uint16, np.int32])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sort_column_equals_numpy_sort_on_every_path(dtype, bucket_type):
    """The kernel's sort against np.sort (labels carried along) and its value buckets against
    their definition: few or many minima (split or not), a range that overflows float64 when
    subtracted (radix fallback, not a bucket index from NaN), heavy tails, ties, negative
    values, buckets of several values in reverse order (the insertion after the scatter),
    skewed columns (the binary map, tried first or after crowded linear buckets) and one
    whose linear buckets crowd less than its binary ones (the linear map counted again).
    Both types of the bucket work arrays (uint16 for columns of up to 16,383 values)."""
    from analyzer.core.knn_sort import BUCKETS_PER_VALUE, sort_column

    rng = np.random.default_rng(3)
    n = 500
    big = np.finfo(dtype).max
    bottom = rng.random(n) < 0.3  # 30% in the lowest 1/64 of [1e-300, 1]
    pile = rng.random(n) < 0.2
    columns = {
        "dense": (rng.normal(size=n), "linear"),
        "relu": (np.maximum(rng.normal(size=n), 0), "linear"),  # ~250 zeros: split off
        "overflow": (  # float32: the span fits float64
            np.where(rng.random(n) < 0.5, -big, big) * rng.random(n),
            "none" if dtype == np.float64 else "linear",
        ),
        "exp(5x)": (np.exp(5 * rng.normal(size=n)), "binary"),  # heavy tail
        "ties": (np.round(rng.normal(size=n), 1), "linear"),
        "constant": (np.full(n, 2.5), "none"),
        # 5 values per bucket, out of order: insertion runs across several descents
        "reversed": (
            np.repeat(np.arange(100.0), 5) + np.tile([4e-3, 3e-3, 1e-3, 2e-3, 0.0], 100),
            "linear",
        ),
        "lognormal": (np.exp(1.5 * rng.normal(size=n)), "binary"),  # binary tried first
        # 20% in [0.01, 0.02]: linear buckets crowd there (tried first: not bottom-heavy)
        "pile": (
            np.where(pile, 0.01 + 0.01 * rng.random(n), 0.02 + 9.98 * rng.random(n)),
            "binary",
        ),
        "bottom-heavy": (
            np.where(bottom, rng.random(n) / 64, 1 / 64 + rng.random(n) * 63 / 64),
            "linear",
        ),
    }
    columns["bottom-heavy"][0][0] = 1e-300  # binary buckets: ~1,000 powers of two
    for name, (col, expected_map) in columns.items():
        col = col.astype(dtype)
        lab = rng.integers(0, 7, n)
        v, lab_out = np.empty(n), np.empty(n, np.int64)
        count = np.empty(BUCKETS_PER_VALUE * n + 1, bucket_type)
        work = (np.empty(n), np.empty(n, np.int64), count)
        keys = (np.empty(n, bucket_type), np.empty(n, np.uint64), np.empty(n, np.uint64))
        n_low, offset, low, scale, binary, n_buckets = sort_column(
            col.copy(), lab, v, lab_out, *work, *keys
        )
        np.testing.assert_array_equal(v, np.sort(col.astype(np.float64)), err_msg=name)
        assert n_low == (col == col.min()).sum()
        kept = "none" if n_buckets == 0 else "binary" if binary else "linear"
        if dtype == np.float64 or name != "bottom-heavy":  # float32: 1e-300 is 0
            assert kept == expected_map, name
        if n_buckets:  # the value buckets the kNN edges are looked up in: where each ends
            assert n_buckets == BUCKETS_PER_VALUE * (n - offset)
            ends = _bucket_ends(v[offset:], low, scale, binary, n_buckets)
            np.testing.assert_array_equal(work[2][:n_buckets], ends, err_msg=name)
        for value in np.unique(col):  # each value keeps its own labels
            assert sorted(lab_out[v == value]) == sorted(lab[col == value])


def test_bucket_arrays_are_uint16_only_where_every_bucket_index_fits():
    """The sort's bucket arrays hold bucket indices < BUCKETS_PER_VALUE * n and counts <= n:
    uint16 (half the cache footprint) up to n = 16,383, int32 past it; and a column past it
    (n = 20,000, the int32 path end to end) equals scikit-learn's estimator."""
    from analyzer.core.knn_sort import BUCKETS_PER_VALUE, bucket_dtype

    for n in (2, 359, 3925, 16383, 16384, 20000, 10**6):
        assert np.iinfo(bucket_dtype(n)).max >= BUCKETS_PER_VALUE * n - 1
    assert bucket_dtype(3925) == np.uint16 and bucket_dtype(16383) == np.uint16
    assert bucket_dtype(20000) == np.int32
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 20000)
    x = rng.normal(size=(20000, 2)) + 0.5 * y[:, None]
    x[:, 1] = np.exp(x[:, 1])  # skewed: the binary map
    ref = [sk_mi._compute_mi_cd(x[:, j], y, 3) for j in range(2)]
    np.testing.assert_allclose(knn_label_mi(x, y, 3), ref, atol=1e-9)


@pytest.mark.parametrize("value_map", ["linear", "binary"])
@pytest.mark.parametrize("moved", [-40, -9, 0, 9, 40])
def test_edge_window_finds_the_edges_from_any_bucket_start(moved, value_map):
    """The window of _edges_near (where the bucket lookup failed) reaches the ball's edges
    from a start on either side of them: bucket ends moved by `moved` values against the
    O(N) definition (last j with v[j] - x < d, first j with x - v[j] < d), on both maps."""
    from analyzer.core.knn import _GAP, _edges_near

    rng = np.random.default_rng(11)
    n = 400
    v = np.sort(np.exp(rng.normal(size=n)))  # skewed: many values per linear bucket
    padded = np.concatenate([np.full(_GAP, -np.inf), v, np.full(_GAP, np.inf)])
    n_buckets = 4 * n
    binary = value_map == "binary"
    span = v[-1:].view(np.int64)[0] - v[:1].view(np.int64)[0] if binary else v[-1] - v[0]
    scale = (n_buckets - 1) / span
    ends = _bucket_ends(v, v[0], scale, binary, n_buckets)
    ends = np.clip(ends + moved, 0, n).astype(np.int32)
    for i in rng.integers(0, n, 200):
        x, d = v[i], rng.exponential(0.3) + 1e-12
        right = np.flatnonzero(v - x < d).max()
        left = np.flatnonzero(x - v < d).min()
        buckets = (0, v[0], scale, binary, n_buckets, ends)
        assert _edges_near(padded, x, d, buckets) == right - left


def test_skewed_channels_try_the_binary_map_first():
    """The sort's shortcut for skewed channels (binary buckets counted first, linear ones
    only if those crowd): more than a quarter of the values in the lowest 1/64 of the
    range, counted against a numpy count either side of the border."""
    from analyzer.core.knn_sort import _bottom_heavy

    rng = np.random.default_rng(2)
    n = 400
    for share, expected in ((0.2475, False), (0.2525, True), (0.0, False), (0.9, True)):
        n_bottom = int(round(share * n))
        values = np.concatenate([rng.uniform(1.0, 1.0 + 0.9 / 64, n_bottom), [1.0, 2.0]])
        values = np.concatenate([values, rng.uniform(1.0 + 1.1 / 64, 2.0, n - values.size)])
        span = values.max() - values.min()
        assert (values < 1.0 + span / 64).sum() == n_bottom + 1  # the minimum is one of them
        assert _bottom_heavy(values, n, 1.0, span) == ((n_bottom + 1) > n // 4)
        assert _bottom_heavy(values, n, 1.0, span) == expected
