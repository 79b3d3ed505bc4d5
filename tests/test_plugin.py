"""The plug-in entropy / MI formula (analyzer/core/plugin.py) against scipy and sklearn, and
its being the only copy in the analyzer's kernels."""

import re
from pathlib import Path

import numba as nb
import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import mutual_info_score

from analyzer.core import plugin
from analyzer.core.fused import channel_mi, fused_pass
from analyzer.core.kernels import indicator_mi_from_counts, paired_mi
from analyzer.core.nulls import channel_null

CORE = Path(plugin.__file__).parent


def _table(rng, n_x, n_y, n):
    x = rng.integers(0, n_x, n)
    y = (x + rng.integers(0, 2, n) * rng.integers(0, n_y, n)) % n_y  # dependent, some zero cells
    return x, y, np.bincount(x * n_y + y, minlength=n_x * n_y).reshape(n_x, n_y)


@nb.njit
def _compiled_mi(table, xlogx):
    """The plug-in MI of a (X, Y) table through the compiled helpers."""
    n_x, n_y = table.shape
    n = table.sum()
    s = 0.0
    for i in range(n_x):
        for j in range(n_y):
            s += xlogx[table[i, j]]
    for i in range(n_x):
        s -= xlogx[table[i].sum()]
    for j in range(n_y):
        s -= xlogx[table[:, j].sum()]
    return plugin.mi_from_xlogx(s, n, np.log(n))


@pytest.mark.parametrize("shape", [(2, 2), (7, 3), (30, 10)])
def test_mi_and_entropy_formula_match_sklearn_and_scipy(shape):
    rng = np.random.default_rng(shape[0])
    x, y, table = _table(rng, *shape, 500)
    t = plugin.xlogx_table(500)
    reference = mutual_info_score(x, y)
    signed = t[table].sum() - t[table.sum(1)].sum() - t[table.sum(0)].sum()
    assert plugin.mi_from_xlogx.py_func(signed, 500, np.log(500)) == pytest.approx(
        reference, abs=1e-12
    )
    assert _compiled_mi(table, t) == pytest.approx(reference, abs=1e-12)
    h = plugin.entropy_from_xlogx.py_func(t[np.bincount(x)].sum(), 500, np.log(500))
    assert h == pytest.approx(scipy_entropy(np.bincount(x)), abs=1e-12)


def test_xlogx_table_and_clipping():
    t = plugin.xlogx_table(5)
    assert t[0] == 0.0 and t[1] == 0.0
    assert t[5] == pytest.approx(5 * np.log(5), rel=1e-15)
    assert plugin.at_least_zero.py_func(-1e-17) == 0.0
    assert plugin.at_least_zero.py_func(0.25) == 0.25


@nb.njit
def _indicators(table, xlogx):
    bin_sizes = table.sum(axis=1)
    class_sizes = table.sum(axis=0)
    n = class_sizes.sum()
    marginal = 0.0
    for b in range(table.shape[0]):
        marginal += xlogx[bin_sizes[b]]
    out = np.empty((1, table.shape[1]))
    tables = table.reshape((1, *table.shape))
    plugin.indicator_mis(tables, 0, bin_sizes, class_sizes, marginal, n, np.log(n), xlogx, out, 0)
    return out[0]


def test_indicator_mis_match_sklearn_on_the_indicator():
    rng = np.random.default_rng(3)
    x, y, table = _table(rng, 6, 4, 400)
    got = _indicators(table, plugin.xlogx_table(400))
    for k in range(4):
        assert got[k] == pytest.approx(mutual_info_score(x, y == k), abs=1e-12)


def test_every_kernel_agrees_with_sklearn_through_the_one_formula():
    """The fused, label-count, paired and null kernels (each its own table layout) against sklearn."""
    rng = np.random.default_rng(5)
    n, c, k = 600, 5, 3
    y = rng.integers(0, k, n)
    values = (rng.standard_normal((n, c)) + y[:, None]).astype(np.float32)
    f = fused_pass(values, y, k, y, k, 8)
    t = plugin.xlogx_table(n)
    label, entropy, indicator, summary = channel_mi(f.label_counts, f.summary_counts, t)
    nul = channel_null(f.codes, y, np.zeros((0, n), dtype=np.int64), 8, k)
    by_indicator = indicator_mi_from_counts(f.label_counts, t)
    paired = paired_mi(f.codes, np.repeat(y[None].astype(np.uint8), c, axis=0), 8, t)
    for ch in range(c):
        ref = mutual_info_score(f.codes[ch], y)
        for got in (label[ch], summary[ch], nul.observed[ch], paired[ch]):
            assert got == pytest.approx(ref, abs=1e-12)
        assert entropy[ch] == pytest.approx(scipy_entropy(np.bincount(f.codes[ch])), abs=1e-12)
        for j in range(k):
            ref_j = mutual_info_score(f.codes[ch], y == j)
            assert indicator[ch, j] == pytest.approx(ref_j, abs=1e-12)
            assert by_indicator[ch, j] == indicator[ch, j] == nul.class_observed[ch, j]


# "(...) / n + log n" and "log n - (...) / n" written out: only plugin.py may hold them
# (noisy_mi.py's Kolchinsky-Tracey bounds are log N minus a mean of log-sums, not of counts)
_NOT_COUNTS = ("plugin.py", "noisy_mi.py")
_COPIES = re.compile(r"/\s*n\s*\+\s*(np\.|math\.)?log(_n|\(n\))|log(_n|\(n\))\s*-.*/\s*n\b")


def test_the_formula_is_written_once():
    copies = [
        f"{src.name}:{i}"
        for src in sorted(CORE.glob("*.py"))
        if src.name not in _NOT_COUNTS
        for i, line in enumerate(src.read_text().splitlines(), 1)
        if _COPIES.search(line)
    ]
    assert copies == []
    assert _COPIES.search("    mi = (s - marg - cls) / n + log_n")  # the pattern finds a copy
    assert _COPIES.search("        entropy[c] = log_n - marginal / n")
