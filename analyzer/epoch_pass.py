"""One epoch of the analysis: read each stored chunk once, one fused pass, per-layer results.

:func:`analyze_epoch` is the unit of parallel work (a dask task on any scheduler: threads,
processes or a distributed cluster, which reads the store by path). It is single-threaded
inside (numba and BLAS), so its result is bit-identical whatever the worker count.

The epoch is read in *segments*: unit ranges that start and end on both a layer boundary
and a stored-chunk boundary, so each chunk is decompressed once and memory is bounded by
the largest segment, not by the epoch. Each segment gets one :func:`fused.fused_pass`
(codes and all counts of every channel) and one :func:`fused.channel_mi`; the per-layer
step (:func:`layer_step`) then derives the 'layer'-stage registry variables.

Where to plug in (issue-12 nulls, issue-13 whole-layer estimators): in :func:`layer_step`,
``lv`` (:class:`LayerView`) holds the layer's raw values (sample, channel), its bin
``codes`` (channel, sample) uint8, ``label_counts`` (channel, bin, class), ``finite``,
and the per-channel MIs; return new registry variables in the ``out`` dict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from analyzer import estimators as mi_estimators
from analyzer import layer_info, memory
from analyzer import variables as registry
from analyzer.activations import Layer
from analyzer.chunk_reader import UnitReader
from analyzer.core import all_pairs, metrics, nulls, pca
from analyzer.core import histogram as est
from analyzer.core.fused import channel_mi, fused_pass
from analyzer.core.kernels import all_pairs_mi, paired_mi, xlogx_table
from analyzer.core.null_mean import pair_null_means
from analyzer.options import Options


@dataclass(frozen=True)
class Plan:
    """Everything an epoch task needs (small, picklable; the values are read by path)."""

    store: str
    layers: tuple[Layer, ...]
    segments: tuple[tuple[int, int, tuple[int, ...]], ...]  # (start, stop, layer indices)
    labels: np.ndarray
    n_classes: int
    summary_codes: np.ndarray
    pairs: tuple[np.ndarray, ...]  # fixed channel sample of each layer for layer_mi
    pca_rows: np.ndarray
    perms: np.ndarray  # (P, N) label permutations of the nulls (analyzer/core/nulls.py)
    sizes: dict
    options: Options  # the analysis options, as given (bins, topk, seed, estimators, ...)
    layer_binning: object = None  # whole_layer.LayerBinning of the whole-layer estimators


SEGMENT_BYTES = 64 * 2**20  # float32 values of a segment past which any layer boundary cuts


def segments_of(
    layers: list[Layer], chunk: int, max_units: int | None = None
) -> list[tuple[int, int, tuple[int, ...]]]:
    """Unit ranges cut where a layer boundary meets a chunk boundary (chunk: units per chunk),
    and also at the first layer boundary past ``max_units`` units: where a store's chunks never
    align with its layers (written by another tool), a segment stays bounded instead of
    growing to the whole epoch; a chunk straddling such a cut is decoded by both segments."""
    out, start, members = [], 0, []
    for i, layer in enumerate(layers):
        members.append(i)
        stop = layer.start + layer.channels
        long = max_units is not None and stop - start >= max_units
        if stop % chunk == 0 or i == len(layers) - 1 or long:
            out.append((start, stop, tuple(members)))
            start, members = stop, []
    return out


def max_segment_units(chunk: int, n_samples: int) -> int:
    """The ``max_units`` of :func:`segments_of`: :data:`SEGMENT_BYTES` of float32 values, and
    never less than one stored chunk's width."""
    return max(chunk, SEGMENT_BYTES // (4 * max(1, n_samples)))


@dataclass
class LayerView:
    """One layer at one epoch: raw values and everything the fused pass made of them."""

    values: np.ndarray  # (sample, channel)
    codes: np.ndarray  # (channel, sample) uint8
    label_counts: np.ndarray  # (channel, bin, class) int32
    summary_counts: np.ndarray  # (channel, bin, summary code) int32
    finite: np.ndarray  # (channel,) bool
    mean: np.ndarray
    sd: np.ndarray
    label_mi: np.ndarray  # (channel,) float64
    entropy: np.ndarray
    indicator: np.ndarray  # (channel, class)
    summary_mi: np.ndarray


PAIR_CODES = "pair_layer_codes"  # analyze_epoch's private result: layer index -> pair_codes' tuple


def analyze_epoch(
    plan: Plan, epoch: int, pair_layers: tuple[int, ...] = ()
) -> dict[str, np.ndarray]:
    """All 'layer'- and 'epoch'-stage registry variables of one epoch (arrays with the epoch
    dim dropped). ``pair_layers``: layers whose all-pairs inputs (:func:`pair_codes`'s tuple,
    from this pass's codes: no second read) are returned under :data:`PAIR_CODES`."""
    memory.limit_arenas()  # once per process (a cluster's workers too)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)  # thread-local: dask (or the cluster) parallelizes across epochs
    try:
        with threadpool_limits(1):
            results: list[dict | None] = [None] * len(plan.layers)
            pairs = {}
            reader = UnitReader(plan.store)
            for start, stop, members in plan.segments:
                values = reader.read(epoch, start, stop)  # this thread's reused buffer
                views = _segment_views(plan, values, start, members)
                for i, view in zip(members, views, strict=True):
                    results[i] = layer_step(plan, i, view)
                    if i in pair_layers:
                        pairs[i] = _pair_inputs(plan, view.codes.copy(), view.finite.copy())
            stacked = registry.stack_layers(results, plan.sizes)
            stacked.update(epoch_step(plan, results))
            if pair_layers:
                stacked[PAIR_CODES] = pairs
            return stacked
    finally:
        numba.set_num_threads(previous)
        memory.release_free_memory()


def _segment_views(plan: Plan, values: np.ndarray, start: int, members) -> list[LayerView]:
    n_summary = int(plan.summary_codes.max()) + 1 if len(plan.summary_codes) else 1
    f = fused_pass(
        values, plan.labels, plan.n_classes, plan.summary_codes, n_summary, plan.options.bins,
        plan.options.binning, start,
    )  # fmt: skip
    xlogx = xlogx_table(len(plan.labels))
    label, entropy, indicator, summary = channel_mi(f.label_counts, f.summary_counts, xlogx)
    if plan.options.miller_madow:
        n = len(plan.labels)
        label = est.mi_from_joint(f.label_counts, True)
        entropy = est.entropy_from_counts(f.label_counts.sum(axis=2), n, True)
        indicator = est.indicator_mi(f.label_counts, True)
        summary = est.mi_from_joint(f.summary_counts, True)
    views = []
    for i in members:
        s = slice(
            plan.layers[i].start - start, plan.layers[i].start - start + plan.layers[i].channels
        )
        views.append(
            LayerView(
                values[:, s], f.codes[s], f.label_counts[s], f.summary_counts[s], f.finite[s],
                f.mean[s], f.sd[s], label[s], entropy[s], indicator[s], summary[s],
            )
        )  # fmt: skip
    return views


def layer_step(plan: Plan, index: int, lv: LayerView) -> dict:
    """Every 'layer'-stage registry variable of one (epoch, layer), channel axes unpadded.

    Also returns the private ``pair_codes`` / ``pc1_codes`` used by :func:`epoch_step`.
    """
    ok = bool(lv.finite.all())
    nan = math.nan
    label = np.where(lv.finite, lv.label_mi, np.nan)
    entropy = np.where(lv.finite, lv.entropy, np.nan)
    out = {
        "channel_label_mi": label,
        "channel_input_mi": entropy,
        "class_channel_mi": np.where(lv.finite[:, None], lv.indicator, np.nan),
        "label_mi": float(label.mean()) if ok else nan,
        "input_mi": float(entropy.mean()) if ok else nan,
        "input_summary_mi": float(lv.summary_mi.mean()) if ok else nan,
        "gini": metrics.gini(label) if ok else nan,
        "norm_entropy": metrics.norm_entropy(label) if ok else nan,
        "topk_share": np.array(
            [metrics.topk_share(label, k) if ok else nan for k in plan.options.topk]
        ),
        "nonfinite_channels": int((~lv.finite).sum()),
        "pair_codes": lv.codes[plan.pairs[index]] if ok else None,
        "pc1_codes": None,
        "label_mi_pca": nan,
        "input_mi_pca": nan,
    }
    out.update(
        layer_info.outputs(
            lv.values, plan.labels, plan.options.layer_info, plan.layer_binning, plan.options.seed
        )
    )
    out.update(mi_estimators.layer_outputs(lv.values, plan.labels, lv.mean, lv.sd, plan))
    out.update(
        nulls.null_outputs(
            lv.codes,
            plan.labels,
            plan.perms,
            plan.options.bins,
            plan.n_classes,
            lv.finite,
            lv.label_counts,
        )
    )
    if ok:
        k = plan.options.pca_components
        scores = pca.layer_scores(lv.values, lv.mean, lv.sd, k, plan.pca_rows, plan.options.seed)
        joint = est.joint_codes(scores, plan.options.bins)
        n = len(plan.labels)
        out["label_mi_pca"] = est.discrete_mi(joint, plan.labels, plan.options.miller_madow)
        out["input_mi_pca"] = float(
            est.entropy_from_counts(np.bincount(joint), n, plan.options.miller_madow)
        )
        out["pc1_codes"] = est.equal_width_codes(scores[:, 0], plan.options.bins)
    return out


def epoch_step(plan: Plan, results: list[dict]) -> dict[str, np.ndarray]:
    """The 'epoch'-stage variables: layer-layer MI from the sampled and PC1 codes, and the
    exact permutation-null mean of the sampled-pair layer-layer MI (its bias level)."""
    n_layers = len(results)
    layer_mi = np.full((n_layers, n_layers), np.nan, dtype=np.float32)
    layer_mi_null = np.full((n_layers, n_layers), np.nan, dtype=np.float32)
    layer_mi_pc1 = np.full((n_layers, n_layers), np.nan, dtype=np.float32)
    ok = [i for i, r in enumerate(results) if r["pc1_codes"] is not None]
    if ok:
        xlogx = xlogx_table(len(plan.labels))
        pc1 = np.stack([results[i]["pc1_codes"] for i in ok]).astype(np.uint8)
        layer_mi_pc1[np.ix_(ok, ok)] = all_pairs_mi(pc1, plan.options.bins, xlogx)
        sizes = {i: bin_sizes(results[i]["pair_codes"], plan.options.bins) for i in ok}
        for a in ok:
            for b in ok[ok.index(a) :]:
                ca, cb = results[a]["pair_codes"], results[b]["pair_codes"]
                sa, sb = sizes[a], sizes[b]
                if a == b:  # different channels of one layer: each with the next one
                    cb, sb = np.roll(ca, -1, axis=0), np.roll(sa, -1, axis=0)
                p = min(len(ca), len(cb))
                v = paired_mi(
                    np.ascontiguousarray(ca[:p]),
                    np.ascontiguousarray(cb[:p]),
                    plan.options.bins,
                    xlogx,
                )
                layer_mi[a, b] = layer_mi[b, a] = v.mean()
                null = pair_null_means(sa[:p], sb[:p])
                layer_mi_null[a, b] = layer_mi_null[b, a] = null.mean()
    return {"layer_mi": layer_mi, "layer_mi_null": layer_mi_null, "layer_mi_pc1": layer_mi_pc1}


def bin_sizes(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """(rows, n_bins) int64 samples per bin of each row of codes (rows, samples)."""
    rows = len(codes)
    flat = codes.astype(np.int64) + (np.arange(rows, dtype=np.int64) * n_bins)[:, None]
    return np.bincount(flat.ravel(), minlength=rows * n_bins).reshape(rows, n_bins)


def pair_codes(plan: Plan, epoch: int, layer_index: int) -> tuple:
    """(codes (C, N) uint8, finite (C,), all_pairs.Prep) of one layer at one epoch, for its
    pairs, read again from the store (only for an epoch that no epoch task of this run reads:
    one kept from an earlier analysis)."""
    layer = plan.layers[layer_index]
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        stop = layer.start + layer.channels
        values = UnitReader(plan.store).read(epoch, layer.start, stop)
        f = fused_pass(
            values, plan.labels, plan.n_classes, np.zeros(len(values), np.int64), 1, plan.options.bins,
            plan.options.binning, layer.start,
        )  # fmt: skip
        return _pair_inputs(plan, f.codes, f.finite)
    finally:
        numba.set_num_threads(previous)


def _pair_inputs(plan: Plan, codes: np.ndarray, finite: np.ndarray) -> tuple:
    return codes, finite, all_pairs.prepare(codes, plan.options.bins, xlogx_table(codes.shape[1]))


def pair_piece(plan: Plan, layer_codes: tuple, piece: int, n_pieces: int) -> np.ndarray:
    """The MIs of one piece of a layer's channel pairs (``all_pairs.positions``), nats."""
    codes, _, prep = layer_codes
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        pos = all_pairs.positions(len(codes), piece, n_pieces)
        return all_pairs.piece_values(
            codes, prep, pos, plan.options.bins, xlogx_table(codes.shape[1])
        )
    finally:
        numba.set_num_threads(previous)


def assemble_pairs(plan: Plan, layer_codes: tuple, pieces: list[np.ndarray]) -> np.ndarray:
    """All-pairs channel MI of one layer from its pieces, padded to (c_max, c_max) with NaN."""
    codes, finite, prep = layer_codes
    c, c_max = len(codes), plan.sizes["channel"]
    out = np.full((c_max, c_max), np.nan, dtype=np.float32)
    for piece, values in enumerate(pieces):
        all_pairs.fill(out[:c, :c], prep, all_pairs.positions(c, piece, len(pieces)), values)
    out[:c][~finite, :c] = np.nan
    out[:c, :c][:, ~finite] = np.nan
    return out
