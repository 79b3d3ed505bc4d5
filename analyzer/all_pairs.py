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


@nb.njit(cache=True, nogil=True)
def _table(cq, hist_q, o_rows, a_star, index, rows, cols, m, n_bins, joint):
    """Count the (bin of min(o, q), bin of max(o, q)) table of channels o and q over the m
    samples in ``index`` (those outside o's largest bin ``a_star``; ``rows`` / ``cols`` hold o's
    bins there, times n_bins / as is), then fill o's largest bin from q's bin sizes."""
    if o_rows:  # o indexes rows
        for s in range(m):
            joint[rows[s] + cq[index[s]]] += 1
        for b in range(n_bins):
            rest = hist_q[b]
            for a in range(n_bins):
                if a != a_star:
                    rest -= joint[a * n_bins + b]
            joint[a_star * n_bins + b] = rest
    else:  # o indexes columns
        for s in range(m):
            joint[cq[index[s]] * n_bins + cols[s]] += 1
        for a in range(n_bins):
            rest = hist_q[a]
            for b in range(n_bins):
                if b != a_star:
                    rest -= joint[a * n_bins + b]
            joint[a * n_bins + a_star] = rest


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
        cols = np.empty(m, dtype=np.int32)
        for s in range(m):
            cols[s] = row[index[s]]
            rows[s] = cols[s] * n_bins
        joint = np.zeros(n_bins * n_bins, dtype=np.int32)
        for v in range(u, c_total):
            q = order[v]
            _table(codes[q], hist[q], o < q, a_star, index, rows, cols, m, n_bins, joint)
            lo = min(o, q)
            hi = max(o, q)
            s = 0.0
            for x in range(n_occupied[lo]):  # canonical order: rows of lo, columns of hi
                a = occupied[lo, x]
                for y in range(n_occupied[hi]):
                    cell = a * n_bins + occupied[hi, y]
                    s += xlogx[joint[cell]]
                    joint[cell] = 0
            out[offsets[w] + v - u] = (s - marginal[lo] - marginal[hi]) / n + log_n
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
