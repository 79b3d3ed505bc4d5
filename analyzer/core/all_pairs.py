"""All-pairs channel MI of one layer (compiled; the channel-pair matrix of selected epochs).

``I(T_i; T_j)`` for every channel pair from bin codes (channel, sample) uint8, plug-in, nats;
the diagonal holds H(T_i). Exact integer (bin, bin) tables, so every value equals the plug-in
formula on the same bins (and the previous kernel, bit for bit: same table, same summation
order, zero cells skipped, which adds nothing).

Cost cut: a pair's table is counted over the samples outside the *largest bin* of one of its
channels only; that bin's row (or column) is the other channel's bin sizes minus the counted
rows. Channels are visited in order of increasing samples outside their largest bin, so each
pair is counted from the channel with the fewest (ReLU layers: most samples share the lowest
bin). Sums run over occupied bins only.

Work is split into *pieces* (sets of visiting positions in a snake order, balanced in pairs),
so a layer's pairs can be spread over several tasks; a pair's value does not depend on the
piece that computed it, so results are bit-identical whatever the number of pieces or threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from analyzer.core.plugin import mi_from_xlogx


@dataclass
class Prep:
    """Per-channel facts shared by every piece of one layer's pairs."""

    hist: np.ndarray  # (C, B) int64 samples per bin
    marginal: np.ndarray  # (C,) sum_b n_b log n_b
    top: np.ndarray  # (C,) the largest bin (the first one on ties)
    order: np.ndarray  # (C,) channels by increasing samples outside their largest bin
    occupied: np.ndarray  # (C, B) occupied bins first, in increasing order
    n_occupied: np.ndarray  # (C,)


@nb.njit(parallel=True, cache=True, nogil=True)
def _channel_facts(codes, n_bins, xlogx):
    c_total, n = codes.shape
    hist = np.zeros((c_total, n_bins), dtype=np.int64)
    marginal = np.zeros(c_total)
    top = np.zeros(c_total, dtype=np.int64)
    occupied = np.zeros((c_total, n_bins), dtype=np.int64)
    n_occupied = np.zeros(c_total, dtype=np.int64)
    for i in nb.prange(c_total):
        row = codes[i]
        h = hist[i]
        for t in range(n):
            h[row[t]] += 1
        s = 0.0
        for k in range(n_bins):
            s += xlogx[h[k]]
            if h[k] > h[top[i]]:
                top[i] = k
            if h[k] > 0:
                occupied[i, n_occupied[i]] = k
                n_occupied[i] += 1
        marginal[i] = s
    return hist, marginal, top, occupied, n_occupied


def prepare(codes: np.ndarray, n_bins: int, xlogx: np.ndarray) -> Prep:
    """Bin sizes, marginal terms, largest bins and the visiting order of a layer's channels."""
    hist, marginal, top, occupied, n_occupied = _channel_facts(codes, n_bins, xlogx)
    outside = codes.shape[1] - hist[np.arange(len(hist)), top]
    order = np.argsort(outside, kind="stable")
    return Prep(hist, marginal, top, order, occupied, n_occupied)


def positions(n_channels: int, piece: int = 0, n_pieces: int = 1) -> np.ndarray:
    """Visiting positions of one piece: position u (pairs with u..C-1) in snake order, so that
    pieces (and contiguous halves of a piece) hold about the same number of pairs."""
    snake = np.empty(n_channels, dtype=np.int64)
    snake[0::2] = np.arange((n_channels + 1) // 2)
    snake[1::2] = np.arange(n_channels - 1, (n_channels + 1) // 2 - 1, -1)
    return snake[piece::n_pieces]


_GROUP = 4  # channel pairs counted together: independent tables, no store-to-load chains


@nb.njit(cache=True, nogil=True)
def _count(codes, order, v0, n_group, index, rows, m, tables):
    """Tables (o bin, q bin) of the pairs (o, order[v0 + g]), g < n_group, over the m samples in
    ``index`` (``rows`` holds o's bin times n_bins there), counted together."""
    if n_group == _GROUP:
        c0, c1, c2, c3 = (
            codes[order[v0]],
            codes[order[v0 + 1]],
            codes[order[v0 + 2]],
            codes[order[v0 + 3]],
        )
        t0, t1, t2, t3 = tables[0], tables[1], tables[2], tables[3]
        for s in range(m):
            t = index[s]
            r = rows[s]
            t0[r + c0[t]] += 1
            t1[r + c1[t]] += 1
            t2[r + c2[t]] += 1
            t3[r + c3[t]] += 1
    else:
        for g in range(n_group):
            cq = codes[order[v0 + g]]
            tg = tables[g]
            for s in range(m):
                tg[rows[s] + cq[index[s]]] += 1


@nb.njit(cache=True, nogil=True)
def _mi(table, o, q, a_star, hist_q, n_bins, occupied, n_occupied, marginal, n, log_n, xlogx):
    """Fill o's largest bin a_star (q's bin sizes minus the counted rows), then the plug-in MI
    from the canonical table (bin of min(o, q), bin of max(o, q)); zeroes the table."""
    for b in range(n_occupied[q]):
        col = occupied[q, b]
        rest = hist_q[col]
        for a in range(n_occupied[o]):
            row = occupied[o, a]
            if row != a_star:
                rest -= table[row * n_bins + col]
        table[a_star * n_bins + col] = rest
    s = 0.0
    if o < q:  # canonical order: rows of min(o, q), columns of max(o, q)
        for x in range(n_occupied[o]):
            a = occupied[o, x] * n_bins
            for y in range(n_occupied[q]):
                cell = a + occupied[q, y]
                s += xlogx[table[cell]]
                table[cell] = 0
        return mi_from_xlogx(s - marginal[o] - marginal[q], n, log_n)
    for x in range(n_occupied[q]):
        b = occupied[q, x]
        for y in range(n_occupied[o]):
            cell = occupied[o, y] * n_bins + b
            s += xlogx[table[cell]]
            table[cell] = 0
    return mi_from_xlogx(s - marginal[q] - marginal[o], n, log_n)


@nb.njit(parallel=True, cache=True, nogil=True)
def _pairs(codes, n_bins, xlogx, pos, order, hist, marginal, top, occupied, n_occupied, offsets):
    c_total, n = codes.shape
    out = np.empty(offsets[-1])
    log_n = np.log(n)
    for w in nb.prange(len(pos)):
        u = pos[w]
        o = order[u]
        row = codes[o]
        a_star = top[o]
        index = np.empty(n, dtype=np.int32)
        m = 0
        for t in range(n):  # branch-free list of o's samples outside its largest bin
            index[m] = t
            m += np.int64(row[t] != a_star)
        rows = np.empty(m, dtype=np.int32)
        for s in range(m):
            rows[s] = row[index[s]] * n_bins
        tables = np.zeros((_GROUP, n_bins * n_bins), dtype=np.int32)
        for v0 in range(u, c_total, _GROUP):
            n_group = min(_GROUP, c_total - v0)
            _count(codes, order, v0, n_group, index, rows, m, tables)
            for g in range(n_group):
                q = order[v0 + g]
                out[offsets[w] + v0 + g - u] = _mi(
                    tables[g], o, q, a_star, hist[q], n_bins, occupied, n_occupied, marginal,
                    n, log_n, xlogx,
                )  # fmt: skip
    return out


def piece_values(codes: np.ndarray, prep: Prep, pos: np.ndarray, n_bins: int, xlogx: np.ndarray):
    """MIs of the pairs (order[u], order[v]), v >= u, for each u in pos, concatenated (nats)."""
    c = codes.shape[0]
    offsets = np.concatenate([[0], np.cumsum(c - pos)]).astype(np.int64)
    return _pairs(
        np.ascontiguousarray(codes), n_bins, xlogx, pos, prep.order, prep.hist, prep.marginal,
        prep.top, prep.occupied, prep.n_occupied, offsets,
    )  # fmt: skip


def fill(out: np.ndarray, prep: Prep, pos: np.ndarray, values: np.ndarray) -> None:
    """Write one piece's values into the symmetric (C, C) matrix ``out``."""
    c = len(prep.order)
    start = 0
    for u in pos:
        i, js = prep.order[u], prep.order[u:]
        out[i, js] = out[js, i] = values[start : start + c - u]
        start += c - u


def all_pairs_mi(codes: np.ndarray, n_bins: int, xlogx: np.ndarray) -> np.ndarray:
    """Symmetric (C, C) float64 MI matrix of all channel pairs; the diagonal holds H(channel)."""
    codes = np.ascontiguousarray(codes)
    prep = prepare(codes, n_bins, xlogx)
    pos = positions(codes.shape[0])
    out = np.empty((codes.shape[0], codes.shape[0]))
    fill(out, prep, pos, piece_values(codes, prep, pos, n_bins, xlogx))
    return out
