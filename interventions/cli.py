"""``python -m interventions``: interventions on one run (and transplants into another)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch
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
from interventions.stream import Streamer, pick_device
from interventions.surgery import surgery_for
from latent_mi import contract as C
from latent_mi import outputs

OUTPUT_KIND = "latent_mi_output"  # attrs key marking this tool's outputs (value: kind below)
KINDS = ("interventions", "transplants")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m interventions",
        description=(
            "MI-ranked inference-time interventions on a run's best checkpoint: global knockouts "
            "(zero / energy-preserving), shuffles, Gaussian perturbations, class-targeted knockouts, "
            "cover vs redundant sets, skip gains; with --donor, transplants of the donor's ranked "
            "channels into this run instead. Streams the validation set in batches, one site at a time."
        ),
    )
    p.add_argument("run_dir", help="run directory (the recipient for transplants)")
    p.add_argument("--mi", required=True, help="the analyzer's MI Dataset of the ranked run (Zarr)")
    p.add_argument("--out", required=True, help="output Zarr path")
    p.add_argument("--donor", help="donor run directory: do transplants donor -> run_dir")
    p.add_argument(
        "--q", type=float, nargs="+", default=[0.1, 0.25, 0.5, 0.75], help="MI-mass levels"
    )
    p.add_argument(
        "--class-q",
        type=float,
        nargs="+",
        default=[0.25, 0.5],
        help="class-targeted MI-mass levels",
    )
    p.add_argument("--draws", type=int, default=3, help="random control draws")
    p.add_argument(
        "--noise",
        type=float,
        nargs="*",
        default=[0.5, 1.0],
        help="perturbation levels (x channel sd)",
    )
    p.add_argument("--layers", default="all", choices=["all", "last", "last-third"])
    p.add_argument(
        "--skip-gains",
        type=float,
        nargs="+",
        default=[0.0, 0.5, 1.0, 1.5],
        help="ResNets: identity-path gains g for the skip-gain sweep",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random controls")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:i]")
    p.add_argument("--batch-size", type=int, default=100, help="validation samples per batch")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument(
        "--edit-mb", type=int, default=256, help="MiB of site outputs edited per suffix forward"
    )
    p.add_argument("--threads", type=int, default=None)
    return p


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
        args.draws,
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
        args.draws,
        args.noise,
        args.seed,
    )
    klass = X.ClassKnockouts(
        chosen, ranking.klass, args.class_q, args.draws, args.seed, ranking.n_classes
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


def _is_old_output(path: Path) -> bool:
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.perf_counter()
    try:
        device = pick_device(args.device)
        # refuses what is not ours at ``out`` before any work; locks ``out`` while writing
        with outputs.safe_output(out, C.KIND_INTERVENTIONS, recognise=_is_old_output) as tmp:
            ds = compute(args, device)
            with warnings.catch_warnings():  # consolidated metadata is not in the v3 spec
                warnings.simplefilter("ignore", UserWarning)
                ds.to_zarr(tmp, mode="w-", consolidated=True, zarr_format=3)
    except (ValueError, FileNotFoundError, KeyError, outputs.OutputError) as e:
        print(f"intervene: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        line = outputs.write_failure(e, out)
        if line is None:
            raise
        print(f"intervene: error: {line}", file=sys.stderr)
        return 1
    print(f"wrote {out} in {time.perf_counter() - t0:.1f}s on {device}", file=sys.stderr)
    return 0
