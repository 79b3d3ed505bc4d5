"""The experiments of the paper's §4.2 and appendices A-D, each returning an xarray Dataset.

* :class:`GlobalInterventions`: accuracy(layer, q, selection, variant, draw) after zero,
  energy-preserving zero, shuffle and noise edits of top / random / bottom channel sets;
* :class:`ClassKnockouts`: class_accuracy(layer, q, selection, label, draw): class k's
  samples scored after zeroing channels ranked by I(T_c; 1[Y=k]);
* :class:`CoverVsRedundant`: the minimal MI cover against a redundant MI-matched set;
* :func:`skip_gain_sweep` (ResNets) and :func:`transplants` (donor -> recipient).

Site experiments share one pass over the data per site (:func:`run_site_experiments`).
Seeds: random sets from (seed, layer depth index, selection, q, draw[, class]); shuffle
permutations from (seed, layer, SHUFFLE_TAG, draw); noise from the slot's keys, NOISE_TAG
and the level (:mod:`.selection`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from interventions import edits as E
from interventions.selection import (
    SELECTIONS,
    Ranking,
    choose,
    draw_rng,
    plan,
    q_key,
    redundant_set,
)
from interventions.stream import Job, Streamer
from interventions.surgery import Surgery, transplant
from trainer.sites import Site

SHUFFLE_TAG, NOISE_TAG = 102, 101


def names(items) -> np.ndarray:
    """String coords as object arrays (fixed-width numpy strings have no Zarr v3 spec)."""
    return np.array([str(i) for i in items], dtype=object)


class SiteExperiment:
    """Jobs per site, results stored per job key; ``dataset()`` assembles the output."""

    needs_sd = False

    def jobs(self, li: int, site: Site, depth: int) -> list[tuple[Job, tuple]]:
        raise NotImplementedError

    def perms(self, li: int, site: Site, depth: int, n: int) -> dict[int, np.ndarray]:
        return {}

    def store(self, key: tuple, value: float) -> None:
        self.acc[key] = value


def run_site_experiments(
    streamer: Streamer, sites: Sequence[Site], depth: dict[str, int], experiments
) -> None:
    """One pass over the data per site for all experiments' jobs; caches freed between sites."""
    for li, site in enumerate(sites):
        d = depth[site.name]
        work = [(exp, job, key) for exp in experiments for job, key in exp.jobs(li, site, d)]
        perms: dict[int, np.ndarray] = {}
        for exp in experiments:
            perms.update(exp.perms(li, site, d, streamer.n))
        sd = streamer.channel_sd(site) if any(e.needs_sd for e in experiments) else None
        acc = streamer.run_site(site, [w[1] for w in work], perms, sd)
        for (exp, _, key), value in zip(work, acc, strict=True):
            exp.store(key, float(value))
        del sd, perms, work
        if streamer.device.type == "cuda":
            torch.cuda.empty_cache()


class GlobalInterventions(SiteExperiment):
    """Knockouts (zero, energy), shuffles and perturbations of ranked channel sets."""

    def __init__(self, sites, rankings: dict[str, Ranking], qs, draws, noise_levels, seed):
        self.sites, self.rankings, self.qs, self.draws = sites, rankings, list(qs), draws
        self.noise, self.seed = list(noise_levels), seed
        self.variants = ["zero", "energy", "shuffle", *[f"noise-{v:g}" for v in self.noise]]
        self.needs_sd = bool(self.noise)
        shape = (len(sites), len(self.qs), len(SELECTIONS), len(self.variants), draws)
        self.acc = np.full(shape, np.nan)
        self.n_sel = np.zeros((len(sites), len(self.qs)), dtype=np.int32)

    def perms(self, li, site, depth, n):
        return {
            d: E.permutation(n, draw_rng(self.seed, depth, SHUFFLE_TAG, d))
            for d in range(self.draws)
        }

    def jobs(self, li, site, depth):
        out = []
        for c in choose(self.rankings[site.name], plan(self.qs, self.draws), self.seed, depth):
            s, ch = c.slot, c.channels
            self.n_sel[li, s.qi] = len(ch)
            options = [E.Zero(ch), E.Zero(ch, energy=True), E.Shuffle(ch, s.draw)]
            keys = (self.seed, depth, s.si, q_key(s.q), s.draw, NOISE_TAG)
            options += [E.Noise(ch, v, draw_rng(*keys, q_key(v))) for v in self.noise]
            out += [(Job(e), (li, s.qi, s.si, vi, s.draw)) for vi, e in enumerate(options)]
        return out

    def dataset(self, baseline: float) -> xr.Dataset:
        nonfinite = [self.rankings[s.name].n_nonfinite for s in self.sites]
        return xr.Dataset(
            {
                "accuracy": (
                    ("layer", "q", "selection", "variant", "draw"),
                    self.acc,
                    {"description": "validation accuracy after the intervention", "units": "1"},
                ),
                "n_selected": (
                    ("layer", "q"),
                    self.n_sel,
                    {"description": "channels in each selection (top, random, bottom alike)"},
                ),
                "n_nonfinite": (
                    ("layer",),
                    np.array(nonfinite, dtype=np.int32),
                    {"description": "channels left out of every selection: non-finite label MI"},
                ),
                "baseline_accuracy": ((), baseline, {"units": "1"}),
            },
            coords={
                "layer": names(s.name for s in self.sites),
                "q": self.qs,
                "selection": names(SELECTIONS),
                "variant": names(self.variants),
                "draw": np.arange(self.draws),
            },
        )


class ClassKnockouts(SiteExperiment):
    """For class k: zero the channels reaching MI mass q of I(T_c; 1[Y=k]); score class k only."""

    def __init__(self, sites, class_mi: dict[str, np.ndarray], qs, draws, seed, n_classes):
        self.sites, self.qs, self.draws, self.seed = sites, list(qs), draws, seed
        self.n_classes = n_classes
        self.rankings = {
            s.name: [Ranking.of(class_mi[s.name][:, k]) for k in range(n_classes)] for s in sites
        }
        shape = (len(sites), len(self.qs), len(SELECTIONS), n_classes, draws)
        self.acc = np.full(shape, np.nan)

    def jobs(self, li, site, depth):
        out = []
        for k, ranking in enumerate(self.rankings[site.name]):
            for c in choose(ranking, plan(self.qs, self.draws), self.seed, depth, k):
                s = c.slot
                out.append((Job(E.Zero(c.channels), label=k), (li, s.qi, s.si, k, s.draw)))
        return out

    def dataset(self, class_baseline: np.ndarray) -> xr.Dataset:
        nonfinite = [[r.n_nonfinite for r in self.rankings[s.name]] for s in self.sites]
        return xr.Dataset(
            {
                "class_accuracy": (
                    ("layer", "class_q", "selection", "label", "draw"),
                    self.acc,
                    {"description": "accuracy on class k's samples after the class-k knockout"},
                ),
                "class_baseline": (("label",), class_baseline, {"units": "1"}),
                "class_n_nonfinite": (
                    ("layer", "label"),
                    np.array(nonfinite, dtype=np.int32).reshape(len(self.sites), self.n_classes),
                    {"description": "channels left out: non-finite class-indicator MI"},
                ),
            },
            coords={
                "layer": names(s.name for s in self.sites),
                "class_q": self.qs,
                "selection": names(SELECTIONS),
                "label": np.arange(self.n_classes),
                "draw": np.arange(self.draws),
            },
        )


class CoverVsRedundant(SiteExperiment):
    """Appendix D: zero the minimal MI cover (fewest top-MI channels reaching q) against a
    redundant MI-matched set (channels most redundant with the cover, same MI mass)."""

    def __init__(self, site: Site, mi: np.ndarray, pair_mi: np.ndarray, qs):
        self.site, self.qs = site, list(qs)
        self.acc = np.full((len(self.qs), 2), np.nan)
        ranking = Ranking.of(mi)
        self.sets = []
        for q in self.qs:
            cover = ranking.select(q, "top")
            self.sets.append((cover, redundant_set(mi, pair_mi, cover, q)))
        finite = np.where(np.isfinite(mi), np.clip(mi, 0, None), 0.0)
        self.red_mass = np.array(
            [finite[r].sum() / max(finite.sum(), 1e-300) for _, r in self.sets]
        )

    def jobs(self, li, site, depth):
        if site.name != self.site.name:
            return []
        return [
            (Job(E.Zero(chans)), (qi, which))
            for qi, pair in enumerate(self.sets)
            for which, chans in enumerate(pair)
        ]

    def dataset(self) -> xr.Dataset:
        return xr.Dataset(
            {
                "cover_accuracy": (
                    ("cover_q",),
                    self.acc[:, 0],
                    {"description": "accuracy without the minimal MI cover"},
                ),
                "redundant_accuracy": (
                    ("cover_q",),
                    self.acc[:, 1],
                    {"description": "accuracy without the redundant MI-matched set"},
                ),
                "cover_size": (("cover_q",), np.array([len(c) for c, _ in self.sets])),
                "redundant_size": (("cover_q",), np.array([len(r) for _, r in self.sets])),
                "redundant_mass": (
                    ("cover_q",),
                    self.red_mass,
                    {"description": "label-MI share of the redundant set"},
                ),
            },
            coords={"cover_q": self.qs},
        ).expand_dims(cover_layer=names([self.site.name]))


def skip_gain_sweep(streamer: Streamer, gains) -> xr.Dataset:
    """Appendix A: accuracy with every residual identity path scaled by g (ResNets only)."""
    acc = []
    for g in gains:
        with streamer.surgery.skip_gain(g):
            acc.append(streamer.accuracy())
    return xr.Dataset(
        {
            "skip_gain_accuracy": (
                ("gain",),
                np.array(acc),
                {"description": "accuracy with identity paths scaled by g", "units": "1"},
            )
        },
        coords={"gain": list(gains)},
    )


def transplants(
    donor: Surgery,
    recipient: Streamer,
    d_sites: dict[str, Site],
    r_sites: dict[str, Site],
    rankings: dict[str, Ranking],
    layers: list[str],
    depth: dict[str, int],
    qs,
    draws,
    seed,
) -> xr.Dataset:
    """transplant_accuracy(layer, q, selection, draw) of the recipient after each transplant."""
    model = recipient.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    acc = np.full((len(layers), len(qs), len(SELECTIONS), draws), np.nan)
    n_sel = np.zeros((len(layers), len(qs)), dtype=np.int32)
    for li, name in enumerate(layers):
        for c in choose(rankings[name], plan(qs, draws), seed, depth[name]):
            s = c.slot
            n_sel[li, s.qi] = len(c.channels)
            transplant(donor, recipient.surgery, d_sites[name], r_sites[name], c.channels)
            acc[li, s.qi, s.si, s.draw] = recipient.accuracy()
            model.load_state_dict(state)
    return xr.Dataset(
        {
            "transplant_accuracy": (
                ("layer", "q", "selection", "draw"),
                acc,
                {"description": "recipient accuracy after copying the donor's channels"},
            ),
            "n_selected": (("layer", "q"), n_sel, {"description": "channels transplanted"}),
            "n_nonfinite": (
                ("layer",),
                np.array([rankings[n].n_nonfinite for n in layers], dtype=np.int32),
                {"description": "channels left out: non-finite donor label MI"},
            ),
            "recipient_baseline": ((), recipient.accuracy(), {"units": "1"}),
        },
        coords={
            "layer": names(layers),
            "q": list(qs),
            "selection": names(SELECTIONS),
            "draw": np.arange(draws),
        },
    )
