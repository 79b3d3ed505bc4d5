"""One invocation of ``python -m interventions``: interventions on a run's best checkpoint, or
transplants with a donor, as one result Dataset (the command line is :mod:`interventions.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

import xarray as xr

from interventions import experiments as X
from interventions.loading import (
    InputError,
    choose_layers,
    load_checkpoint,
    read_ranking,
    validation_set,
)
from interventions.selection import Ranking
from interventions.stream import Streamer
from interventions.surgery import surgery_for

OUTPUT_KIND = "latent_mi_output"  # attrs key marking this tool's outputs (value: kind below)
KINDS = ("interventions", "transplants")


def _streamer(ckpt, dataset, args, device) -> Streamer:
    return Streamer(
        surgery_for(ckpt.model),
        dataset,
        len(ckpt.classes),
        device,
        args.batch_size,
        args.workers,
        args.edit_mb * 2**20,
    )


def run_transplants(args, ckpt, ranking, device) -> xr.Dataset:
    donor = load_checkpoint(args.donor, device=device)
    if (donor.config["arch"], donor.config["width"]) != (ckpt.config["arch"], ckpt.config["width"]):
        raise InputError(f"donor {args.donor} and recipient {args.run_dir} differ in architecture")
    chosen = choose_layers(donor.sites, args.layers)
    depth = {s.name: i for i, s in enumerate(donor.sites)}
    recipient = _streamer(ckpt, validation_set(ckpt.config), args, device)
    ds = X.transplants(
        surgery_for(donor.model),
        recipient,
        {s.name: s for s in donor.sites},
        {s.name: s for s in ckpt.sites},
        {s.name: Ranking.of(ranking.channel[s.name]) for s in chosen},
        [s.name for s in chosen],
        depth,
        args.q,
        args.random_draws,
        args.seed,
    )
    ds.attrs.update(donor=str(args.donor), recipient=str(args.run_dir))
    return ds


def run_site_experiments(args, ckpt, ranking, device) -> xr.Dataset:
    streamer = _streamer(ckpt, validation_set(ckpt.config), args, device)
    chosen = choose_layers(ckpt.sites, args.layers)
    depth = {s.name: i for i, s in enumerate(ckpt.sites)}
    glob = X.GlobalInterventions(
        chosen,
        {s.name: Ranking.of(ranking.channel[s.name]) for s in chosen},
        args.q,
        args.random_draws,
        args.noise,
        args.seed,
    )
    klass = X.ClassKnockouts(
        chosen, ranking.klass, args.class_q, args.random_draws, args.seed, ranking.n_classes
    )
    covers = [  # appendix D where all-pairs channel MI was computed
        X.CoverVsRedundant(s, ranking.channel[s.name], ranking.pair[s.name], args.q)
        for s in chosen
        if s.name in ranking.pair
    ]
    X.run_site_experiments(streamer, chosen, depth, [glob, klass, *covers])
    correct, count = streamer.class_counts(ranking.n_classes)
    class_base = correct / count.clip(min=1)
    class_base[count == 0] = float("nan")
    baseline = float(correct.sum() / max(count.sum(), 1))
    check_baseline(ckpt, baseline, int(count.sum()))
    parts = [glob.dataset(baseline), klass.dataset(class_base)]
    parts += [c.dataset() for c in covers]
    if streamer.surgery.has_skips():
        parts.append(X.skip_gain_sweep(streamer, args.skip_gains))
    return xr.merge(parts)


def check_baseline(ckpt, baseline: float, n: int) -> None:
    """One line if the unedited accuracy disagrees with the checkpoint's recorded one (by more
    than 2 samples' worth, or 0.01: another device's kernels may flip a borderline sample)."""
    recorded = ckpt.recorded_acc
    if recorded is None:
        return
    if not abs(baseline - recorded) <= max(0.01, 2 / max(n, 1)):
        raise ValueError(
            f"checkpoint {ckpt.path}: baseline accuracy {baseline:.3f} on the validation set, but "
            f"the trainer recorded {recorded:.3f} for it: the checkpoint or the data changed; "
            "rerun the trainer on its run directory"
        )


def is_old_output(path: Path) -> bool:
    """An interventions output written before outputs carried a marker (by its root attrs)."""
    attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    return attrs.get(OUTPUT_KIND) in KINDS or "mass_rule" in attrs


def compute(args, device) -> xr.Dataset:
    """The result Dataset of one invocation (interventions, or transplants with --donor)."""
    ranked_dir = args.donor or args.run_dir
    ranked = load_checkpoint(ranked_dir, device=device)
    ranking = read_ranking(args.mi, ranked, ranked_dir)
    if args.donor:
        ckpt = load_checkpoint(args.run_dir, device=device)
        ds = run_transplants(args, ckpt, ranking, device)
    else:
        ckpt = ranked
        ds = run_site_experiments(args, ckpt, ranking, device)
    ds = ds.assign_coords({k: v for k, v in ranking.coords.items()})
    ds.attrs.update(
        {
            OUTPUT_KIND: "transplants" if args.donor else "interventions",
            "ranking": "channel-label MI I(T_lc;Y) (class: I(T_lc;1[Y=k])) at the "
            "best-accuracy epoch; channels with non-finite MI are never selected",
            "mass_rule": "top set = fewest highest-MI channels whose share of the layer's MI "
            "reaches q; random and bottom sets have the same size",
            "checkpoint": "best",
            "ranking_epoch": ranking.epoch,
            "mi_source": str(Path(args.mi).resolve()),
            "config": json.dumps(ckpt.config),
            "device": str(device),
        }
    )
    return ds
